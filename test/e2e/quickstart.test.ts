import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient } from "./api-client.ts";

/**
 * The README's quick start, exactly as a user runs it: `npm start`, `npm start -- --emulated` and
 * `npm start -- --azure` (on the local Service Bus peer: a worker reads a Service Bus queue), then the
 * banner's curl and Ctrl-C. All run on the pinned Node.js, so the AWS SDK's warning about old Node.js
 * versions never appears.
 */
describe.each([
  { command: "npm start", args: ["start"], budgetMs: 2_000, adapters: "embedded adapters" },
  // DynamoDB Local and the SQS emulator start first; a cold JVM answers the first task slowly.
  {
    command: "npm start -- --emulated",
    args: ["start", "--", "--emulated"],
    budgetMs: 15_000,
    adapters: "AWS adapters on DynamoDB Local + SQS emulator",
  },
  {
    command: "npm start -- --azure",
    args: ["start", "--", "--azure"],
    budgetMs: 15_000,
    adapters: "Azure Service Bus local peer for tasks and messages",
  },
])("quick start ($command)", ({ args, budgetMs, adapters }) => {
  let child: ChildProcess;
  let url: string;
  let output = "";

  beforeAll(async () => {
    // `--azure` uses a real namespace when this is set; the test runs on the local peer.
    const { AZURE_SERVICE_BUS_CONNECTION_STRING: _realNamespace, ...env } = process.env;
    child = spawn("npm", args, {
      env: { ...env, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 60 s:\n${output}`)), 60_000);
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = /Agentry is running at (http:\/\/\S+)/.exec(output);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
    });
  }, 90_000);

  afterAll(async () => {
    // Only if a test failed before the clean stop: leave no process behind.
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = once(child, "exit");
      process.kill(-child.pid, "SIGKILL");
      await exited;
    }
  });

  it("prints the curl example with the URL it serves, and the adapters it runs on", () => {
    expect(output).toContain(`curl -s -X POST ${url}/tasks`);
    expect(output).toContain(adapters);
  });

  it("completes the banner's example task within its budget", async () => {
    const api = apiClient(url);
    const started = Date.now();
    const taskId = await api.submit({
      taskType: "analyze_text",
      input: { text: "Agents talk. Workers work." },
    });
    const task = await api.waitForStatus(taskId, ["completed", "failed"], budgetMs);
    expect(Date.now() - started).toBeLessThan(budgetMs);
    expect(task.result.output).toEqual({ words: 4, characters: 26, sentences: 2 });
  });

  it("prints no Node.js version warning (it runs on the pinned Node.js)", () => {
    expect(output).not.toMatch(/NodeVersionSupportWarning|require node >=/);
  });

  it("stops cleanly on Ctrl-C (SIGINT)", async () => {
    // npm forwards the signal to the runtime; the whole process group gets it, as from a terminal.
    // "close", not "exit": npm may exit before the runtime it started has written its last lines;
    // the pipe closes only once every process holding it (npm, tsx, the runtime) has exited.
    const closed = once(child, "close");
    process.kill(-(child.pid ?? 0), "SIGINT");
    const [code] = await closed;
    expect(output).toContain("stopping");
    expect([0, 130, null]).toContain(code);
  });
});
