import { afterEach, describe, expect, it, vi } from "vitest";
import { createConsoleLogger } from "#local/logger";

afterEach(() => vi.restoreAllMocks());

describe("the local console logger", () => {
  it("prints an Error with its stack and cause, not as {}", () => {
    const printed = vi.spyOn(console, "error").mockImplementation(() => {});
    const error = new Error("delivery failed", { cause: new Error("socket hang up") });

    createConsoleLogger("info").error("event delivery failed", { eventId: "e-1", error });

    const line = String(printed.mock.calls[0]?.[0]);
    expect(line).toContain('event delivery failed {"eventId":"e-1"}');
    expect(line).toContain("error: Error: delivery failed");
    expect(line).toContain("caused by: Error: socket hang up");
    expect(line).toMatch(/at .*local-logger\.test\.ts/);
    expect(line).not.toContain("{}");
  });

  it("leaves out entries below its level", () => {
    const printed = vi.spyOn(console, "log").mockImplementation(() => {});

    createConsoleLogger("warn").info("not shown");

    expect(printed).not.toHaveBeenCalled();
  });
});
