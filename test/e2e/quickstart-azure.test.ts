import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient } from "./api-client.ts";

/**
 * The README's "Running on Azure Service Bus": `npm start -- --azure` as a user runs it (on the local
 * Service Bus peer), the banner's curl answered by a worker reading a Service Bus queue, Ctrl-C.
 */
describe("quick start on Azure Service Bus (npm start -- --azure)", () => {
  let child: ChildProcess;
  let url: string;
  let output = "";

  beforeAll(async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: "0" };
    delete env.AZURE_SERVICE_BUS_CONNECTION_STRING;
    child = spawn("npm", ["start", "--", "--azure"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stderr?.on("data", collect);
    child.stdout?.on("data", collect);
    url = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const match = /Agentry is running at (http:\/\/\S+)/.exec(output);
        if (match?.[1]) {
          clearInterval(timer);
          resolve(match[1]);
        }
      }, 50);
      setTimeout(() => {
        clearInterval(timer);
        reject(new Error(`no banner within 45 s:\n${output}`));
      }, 45_000);
      child.once("exit", (code) => reject(new Error(`npm start -- --azure exited with ${code}:\n${output}`)));
    });
  }, 60_000);

  afterAll(async () => {
    // Only if a test failed before the clean stop: leave no process behind.
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = once(child, "exit");
      process.kill(-child.pid, "SIGKILL");
      await exited;
    }
  });

  it("says it runs on the local Service Bus peer", () => {
    expect(output).toContain("Azure Service Bus local peer for tasks and messages");
  });

  it("completes the banner's example task through a Service Bus queue", async () => {
    const api = apiClient(url);
    const taskId = await api.submit({
      taskType: "analyze_text",
      input: { text: "Agents talk. Workers work." },
    });
    const task = await api.waitForStatus(taskId, ["completed", "failed"], 15_000);
    expect(task.status).toBe("completed");
    expect(task.result.output).toEqual({ words: 4, characters: 26, sentences: 2 });
  });

  it("stops cleanly on Ctrl-C (SIGINT)", async () => {
    const exited = once(child, "exit");
    process.kill(-(child.pid ?? 0), "SIGINT");
    const [code] = await exited;
    expect(output).toContain("stopping");
    expect([0, 130, null]).toContain(code);
  });
});
