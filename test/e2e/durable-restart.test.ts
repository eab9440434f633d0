import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { apiClient } from "./api-client.ts";

/** Starts the durable emulated runtime in a child process and resolves with its URL. */
async function startChild(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/durable-runtime.ts"], {
    env: { ...process.env, DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runtime did not start:\n${output}`)), 120_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const ready = /READY (\S+)/.exec(output);
      if (ready?.[1]) {
        clearTimeout(timer);
        resolve(ready[1]);
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`runtime exited with ${code}:\n${output}`));
    });
  });
  return { child, url };
}

describe("durable local mode (--emulated --data-dir)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "agentry-durable-"));
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it("finishes every accepted task exactly once after a kill -9 mid-run and a restart on the same data", async () => {
    const first = await startChild(dataDir);
    children.push(first.child);
    const api = apiClient(first.url);
    const submitted = await api.post("/tasks", {
      tasks: Array.from({ length: 20 }, (_, i) => ({
        taskType: "echo",
        input: { value: i, delayMs: 1_500 },
        timeoutSeconds: 5,
      })),
    });
    expect(submitted.status).toBe(202);
    const taskIds: string[] = submitted.body.tasks.map((t: { taskId: string }) => t.taskId);
    await sleep(500);

    // kill -9: no shutdown, queue messages and leases die with the process and its SQS emulator.
    first.child.kill("SIGKILL");
    await once(first.child, "exit");
    // DynamoDB Local's watchdog notices the dead parent within a second and releases the data files.
    await sleep(3_000);

    const second = await startChild(dataDir);
    children.push(second.child);
    const restarted = apiClient(second.url);
    const finished = await Promise.all(
      taskIds.map((taskId) => restarted.waitForStatus(taskId, ["completed", "failed", "canceled"], 90_000)),
    );

    expect(finished.map((t) => t.status)).toEqual(taskIds.map(() => "completed"));
    expect(finished.map((t) => t.result.output.value)).toEqual(taskIds.map((_, i) => i));
    const settled = { totalTasksSubmitted: 20, tasksCompleted: 20, tasksPending: 0, tasksInProgress: 0 };
    // Statistics follow the table's stream (ADR 0007): after the restart its poller reads the stream
    // again from the start, so they are exact once it has caught up, which is bounded.
    await expect
      .poll(async () => (await restarted.get("/stats")).body, { timeout: 30_000, interval: 250 })
      .toMatchObject(settled);
    // ...and stay exact: nothing the stream delivers again later counts a task twice.
    await sleep(2_500);
    expect((await restarted.get("/stats")).body).toMatchObject(settled);
  }, 240_000);
});
