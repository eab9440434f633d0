import { describe, expect, it } from "vitest";
import { defaultPlatformConfig, loadPlatformConfig } from "#shared/config/platform";

describe("loadPlatformConfig", () => {
  it("uses the default configuration when PLATFORM_CONFIG is not set", () => {
    expect(loadPlatformConfig({})).toBe(defaultPlatformConfig);
  });

  it("reads the configuration the stack serialized into PLATFORM_CONFIG", () => {
    const deployed = { ...defaultPlatformConfig, highPriorityThreshold: 9, taskTypes: { ocr: "vision" } };
    expect(loadPlatformConfig({ PLATFORM_CONFIG: JSON.stringify(deployed) })).toEqual(deployed);
  });

  it("refuses PLATFORM_CONFIG that is not JSON", () => {
    expect(() => loadPlatformConfig({ PLATFORM_CONFIG: "{" })).toThrow("PLATFORM_CONFIG is not valid JSON");
  });

  it("refuses PLATFORM_CONFIG that does not match the schema, naming the field", () => {
    const broken = { ...defaultPlatformConfig, shards: 0 };
    expect(() => loadPlatformConfig({ PLATFORM_CONFIG: JSON.stringify(broken) })).toThrow(/shards/);
  });

  it("refuses a backoff that can outlast the stuck-submission threshold", () => {
    const broken = {
      ...defaultPlatformConfig,
      retry: { ...defaultPlatformConfig.retry, maxDelaySeconds: 300 },
    };
    expect(() => loadPlatformConfig({ PLATFORM_CONFIG: JSON.stringify(broken) })).toThrow(
      /stuckSubmittedSeconds/,
    );
  });
});
