import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { startLocalRuntime } from "#local/runtime";
import { AgentryClient } from "#shared/client/client";
import { launchChromium } from "./chromium.ts";

/**
 * `npm run screenshot:dashboard`: docs/dashboard.png, the README's picture, taken from a local
 * runtime given some work — a fan-out job, tasks that fail, tasks still running.
 */
async function main(): Promise<void> {
  const runtime = await startLocalRuntime({ port: 0, logLevel: "error" });
  const browser = await launchChromium();
  try {
    const client = new AgentryClient({ baseUrl: runtime.url });
    const job = JSON.parse(await readFile(new URL("../../examples/fan-out.json", import.meta.url), "utf8"));
    await client.submitJob(job);
    for (let i = 0; i < 12; i++) {
      await client.submitTask({ taskType: "analyze_text", input: { text: `Agents talk. Round ${i}.` } });
    }
    await client.submitTask({ taskType: "echo", input: { value: 1, failAttempts: 5 }, maxAttempts: 1 });
    await client.submitTask({ taskType: "echo", input: { value: "long", delayMs: 30_000 } });
    await client.submitJob({
      tasks: Array.from({ length: 8 }, (_, i) => ({
        taskType: "echo",
        input: { value: i, delayMs: 1_000 * (i + 1) },
      })),
      aggregation: { policy: "all", reducer: "collect" },
    });
    const page = await browser.context.newPage();
    await page.goto(`${runtime.url}/`);
    await sleep(4_000);
    await page.screenshot({ path: "docs/dashboard.png", fullPage: true });
    console.log("wrote docs/dashboard.png");
  } finally {
    await browser.close();
    await runtime.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
