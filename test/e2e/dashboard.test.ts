import { readFile } from "node:fs/promises";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalRuntime, startLocalRuntime } from "#local/runtime";
import { platformConfig, workers } from "#shared/agents/workers";
import { type Chromium, launchChromium } from "#test/support/chromium";
import { apiClient } from "./api-client.ts";

/** The dashboard in headless Chromium, served by the local runtime at `/`, as a person opens it. */
describe("dashboard in Chromium", () => {
  let runtime: LocalRuntime;
  let browser: Chromium | undefined;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    runtime = await startLocalRuntime({ port: 0, logLevel: "error" });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(`page error: ${error.message}`));
    await page.goto(`${runtime.url}/`);
    await page.waitForSelector("body[data-refreshed]", { timeout: 20_000 });
  }, 90_000);

  afterAll(async () => {
    const leftovers = (await browser?.close()) ?? [];
    await runtime?.stop();
    expect(leftovers, "chromium processes still running after close").toEqual([]);
  });

  it("serves the page at / and leaves the API on its paths", async () => {
    const api = apiClient(runtime.url);

    expect(await page.title()).toBe("Agentry dashboard");
    expect((await api.get("/health")).body).toEqual({ status: "ok" });
    expect((await api.get("/no-such-path")).status).toBe(404);
  });

  it("shows each agent with its status and last heartbeat", { timeout: 30_000 }, async () => {
    const rows = page.locator("#agent-rows tr");
    await rows.nth(workers.length - 1).waitFor({ timeout: 20_000 });

    expect(await rows.count()).toBe(workers.length);
    const agents = await runtime.registry.list({});
    for (const agent of agents) {
      const row = page.locator(`#agent-rows tr[data-agent-id="${agent.agentId}"]`);
      expect(await row.locator(".agent-status").textContent()).toBe("available");
      expect(await row.locator("td").nth(3).textContent()).toMatch(/ago$/);
    }
  });

  it("shows a task submitted through the API appear and turn completed", { timeout: 45_000 }, async () => {
    const api = apiClient(runtime.url);
    // Long enough to be seen running at a one-second refresh, even on a loaded machine.
    const taskId = await api.submit({
      taskType: "echo",
      input: { value: "from the browser test", delayMs: 4_000 },
    });
    const status = page.locator(`#task-rows tr[data-task-id="${taskId}"] .task-status`);

    await status.waitFor({ timeout: 20_000 });
    const firstSeen = await status.textContent();
    await page
      .locator(`#task-rows tr[data-task-id="${taskId}"] .task-status`, { hasText: "completed" })
      .waitFor({ timeout: 30_000 });

    expect(["submitted", "working"]).toContain(firstSeen);
    expect(await page.locator('#status-counts li[data-status="completed"] .value').textContent()).toMatch(
      /^[1-9]/,
    );
  });

  it("opens a task's detail from the keyboard: input, result, attempts, timeline; Escape closes it", {
    timeout: 30_000,
  }, async () => {
    const api = apiClient(runtime.url);
    const taskId = await api.submit({
      taskType: "analyze_text",
      input: { text: "Agents talk. Workers work." },
    });
    await api.waitForStatus(taskId, ["completed"]);
    const open = page.getByRole("button", { name: `Task ${taskId}` });
    await open.waitFor({ timeout: 20_000 });

    await open.focus();
    await page.keyboard.press("Enter");
    const dialog = page.locator("#task-detail");
    await dialog.locator("#detail-heading", { hasText: taskId }).waitFor({ timeout: 10_000 });

    expect(await dialog.isVisible()).toBe(true);
    expect(JSON.parse((await dialog.locator("#detail-input").textContent()) ?? "")).toEqual({
      text: "Agents talk. Workers work.",
    });
    expect(JSON.parse((await dialog.locator("#detail-result").textContent()) ?? "").output).toEqual({
      words: 4,
      characters: 26,
      sentences: 2,
    });
    expect(await dialog.locator("#detail-fields").textContent()).toContain("1 of 3");
    expect(await dialog.locator("#detail-timeline li").allTextContents()).toEqual([
      expect.stringMatching(/^submitted: /),
      expect.stringMatching(/^started: /),
      expect.stringMatching(/^completed: /),
      expect.stringMatching(/^last update: /),
    ]);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden", timeout: 5_000 });
  });

  it("shows a job's progress reaching 100 %", { timeout: 45_000 }, async () => {
    const api = apiClient(runtime.url);
    const job = JSON.parse(await readFile(new URL("../../examples/fan-out.json", import.meta.url), "utf8"));
    const submitted = await api.post("/jobs", job);
    expect(submitted.status).toBe(202);
    const jobId: string = submitted.body.jobId;
    const item = page.locator(`#jobs li[data-job-id="${jobId}"]`);

    await item.locator(".job-progress", { hasText: "100 %" }).waitFor({ timeout: 30_000 });

    expect(await item.locator(".job-progress").textContent()).toBe("100 % · 6/6");
    expect(await item.locator(".status").textContent()).toBe("completed");
    expect(await item.locator("progress").getAttribute("value")).toBe("6");
  });

  it("shows queue depth and dead letters per capability, and the throughput chart", async () => {
    await page.locator("#chart svg rect.bar").first().waitFor({ timeout: 20_000 });

    expect(
      await page
        .locator("#queue-rows tr")
        .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-capability"))),
    ).toEqual(platformConfig.capabilities.map((c) => c.name));
    expect(await page.locator("#chart-summary").textContent()).toMatch(
      /^\d+ tasks ended in the last 10 minutes/,
    );
  });

  it("keeps the contrast of every visible text at 4.5:1 or more (WCAG AA)", async () => {
    const failures = await page.evaluate(LOW_CONTRAST_TEXTS);

    expect(failures).toEqual([]);
  });

  it("logged no console error or warning while all of this happened", () => {
    expect(consoleErrors).toEqual([]);
  });
});

/**
 * Run in the page: every element with its own visible text whose colour has less than 4.5:1 contrast
 * (WCAG 2 relative luminance) with the first opaque background behind it. A string, since this
 * project's TypeScript has no DOM types.
 */
const LOW_CONTRAST_TEXTS = `(() => {
  const channels = (color) => (color.match(/[\\d.]+/g) || []).map(Number);
  const linear = (c) => { const s = c / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const c = channels(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const element of document.querySelectorAll("body *")) {
    const ownText = [...element.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!ownText || element.getClientRects().length === 0) continue;
    const fg = luminance(channels(getComputedStyle(element).color));
    const bg = luminance(background(element));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) problems.push(element.tagName + "." + element.className + " " + JSON.stringify(element.textContent.trim().slice(0, 24)) + ": " + ratio.toFixed(2));
  }
  return problems;
})()`;
