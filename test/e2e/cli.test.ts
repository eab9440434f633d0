import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalRuntime, startLocalRuntime } from "#local/runtime";
import { workers } from "#shared/agents/workers";

const root = fileURLToPath(new URL("../..", import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the CLI as a user does, in a child process: `npx agentry …` from the repository (its `bin`),
 * against the local runtime through AGENTRY_API_URL.
 */
function agentry(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["--no", "--", "agentry", ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const show = (run: Run) => `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;

describe("agentry CLI against the local runtime", () => {
  let runtime: LocalRuntime;
  let api: Record<string, string>;

  beforeAll(async () => {
    runtime = await startLocalRuntime({ port: 0, logLevel: "error" });
    api = { AGENTRY_API_URL: runtime.url };
  });

  afterAll(async () => {
    await runtime?.stop();
  });

  // Each run starts npx, Node and tsx (5-20 s each on a loaded 2-core machine): budgets have room for that.
  it("submit --wait prints the result and exits 0", { timeout: 120_000 }, async () => {
    const run = await agentry(
      ["submit", "analyze_text", "--input", '{"text":"Agents talk."}', "--wait"],
      api,
    );

    expect(run.code, show(run)).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ words: 2, characters: 12, sentences: 1 });
    expect(run.stderr).toMatch(/task \S+ completed in \d/);
  });

  it("submit --wait exits 1 for a failed task and for a rejected one, naming why", {
    timeout: 120_000,
  }, async () => {
    const [failed, rejected] = await Promise.all([
      agentry(
        ["submit", "echo", "--input", '{"value":1,"failAttempts":3}', "--max-attempts", "1", "--wait"],
        api,
      ),
      agentry(["submit", "no_such_type", "--input", "{}", "--wait"], api),
    ]);

    expect(failed.code, show(failed)).toBe(1);
    expect(failed.stderr).toMatch(/task \S+ failed: handler_error: echo: failing attempt 1 of 3 on purpose/);
    expect(failed.stdout).toBe("");
    expect(rejected.code, show(rejected)).toBe(1);
    expect(rejected.stderr).toMatch(/task \S+ rejected: no_route: .*no_such_type/);
  });

  it("job submit --watch shows progress and ends with the aggregated result", {
    timeout: 120_000,
  }, async () => {
    const run = await agentry(["job", "submit", "@examples/fan-out.json", "--watch"], api);

    expect(run.code, show(run)).toBe(0);
    const progress = run.stderr
      .split("\n")
      .map((line) => /^\[[#-]{20}\]\s+(\d+) %\s+(\d+)\/6 done · (\d+) failed/.exec(line))
      .filter((match) => match !== null)
      .map((match) => Number(match[2]));
    expect(progress.length, run.stderr).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b)); // never goes back
    expect(progress.at(-1)).toBe(6);
    expect(run.stderr).toContain("[####################] 100 %  6/6 done · 0 failed");
    expect(run.stderr).toMatch(/job \S+ completed in .*: 6 of 6 tasks succeeded/);
    const result = JSON.parse(run.stdout);
    expect(result).toHaveLength(6);
    expect(result[0]).toEqual({ words: 4, characters: 26, sentences: 2 });
    expect(result[4]).toEqual({ summary: "Fan-out splits a job into tasks." });
    expect(result[5]).toEqual({ value: "slow one", attempt: 1 });
  });

  it("--json prints the API's objects for scripts", { timeout: 120_000 }, async () => {
    const submitted = await agentry(
      ["--json", "submit", "summarize", "--input", '{"text":"One. Two.","maxSentences":1}', "--wait"],
      api,
    );
    expect(submitted.code, show(submitted)).toBe(0);
    const task = JSON.parse(submitted.stdout);
    expect(task).toMatchObject({ taskType: "summarize", status: "completed", attempts: 1 });
    expect(task.result.output).toEqual({ summary: "One." });

    const [shown, listed, agents] = await Promise.all([
      agentry(["task", task.taskId, "--json"], api),
      agentry(["tasks", "--type", "summarize", "--limit", "5", "--json"], api),
      agentry(["agents", "--json"], api),
    ]);
    expect(JSON.parse(shown.stdout), show(shown)).toEqual(task);
    expect(
      JSON.parse(listed.stdout).items.map((t: { taskId: string }) => t.taskId),
      show(listed),
    ).toContain(task.taskId);
    const registered = JSON.parse(agents.stdout);
    expect(registered.map((a: { agentType: string }) => a.agentType).sort(), show(agents)).toEqual(
      workers.map((w) => w.agentType).sort(),
    );
    expect(registered.every((a: { status: string }) => a.status === "available")).toBe(true);
  });

  it("exits 2 on bad input without sending anything, 3 on an API error, 4 when the API is unreachable", {
    timeout: 120_000,
  }, async () => {
    const before = await runtime.supervisor.statistics();
    const [badJson, missingFile, notFound, unreachable] = await Promise.all([
      agentry(["submit", "analyze_text", "--input", "{not json"], api),
      agentry(["job", "submit", "@examples/no-such-file.json"], api),
      agentry(["task", "no-such-task"], api),
      // Port 9 (discard) is not listened on here; the client retries, then gives up.
      agentry(["stats"], { AGENTRY_API_URL: "http://127.0.0.1:9" }),
    ]);

    expect(badJson.code, show(badJson)).toBe(2);
    expect(badJson.stderr).toContain("--input is not valid JSON");
    expect(missingFile.code, show(missingFile)).toBe(2);
    expect(missingFile.stderr).toContain("cannot read examples/no-such-file.json: ENOENT");
    expect((await runtime.supervisor.statistics()).totalTasksSubmitted).toBe(before.totalTasksSubmitted);
    expect(notFound.code, show(notFound)).toBe(3);
    expect(notFound.stderr).toContain("404 not_found: task no-such-task not found");
    expect(unreachable.code, show(unreachable)).toBe(4);
    expect(unreachable.stderr).toContain("cannot reach http://127.0.0.1:9");
  });

  it("agentry dashboard serves the page on localhost and forwards its reads to --api", {
    timeout: 120_000,
  }, async () => {
    const child = spawn("npx", ["--no", "--", "agentry", "dashboard", "--port", "0", "--api", runtime.url], {
      cwd: root,
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    try {
      let output = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString();
          const match = /at (http:\/\/127\.0\.0\.1:\d+)\//.exec(output);
          if (match?.[1]) resolve(match[1]);
        });
        child.stderr.on("data", (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.once("close", (code) => reject(new Error(`agentry dashboard exited with ${code}:\n${output}`)));
      });

      const page = await fetch(`${url}/`);
      const stats = await fetch(`${url}/stats`);
      const write = await fetch(`${url}/tasks`, { method: "POST", body: "{}" });

      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<title>Agentry dashboard</title>");
      expect(stats.status).toBe(200);
      expect(await stats.json()).toEqual(await runtime.supervisor.statistics());
      expect(write.status).toBe(405);
    } finally {
      // The whole process group (npx, node): Ctrl-C, as from a terminal.
      const closed = new Promise((resolve) => child.once("close", resolve));
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGINT");
      await closed;
    }
  });

  it("documents the exit codes in --help", { timeout: 120_000 }, async () => {
    const run = await agentry(["--help"]);

    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toContain("Exit codes:");
    expect(run.stdout).toMatch(/submit \[options\] <taskType>/);
  });
});
