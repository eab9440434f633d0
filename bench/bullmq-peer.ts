import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What the peer measured: same shape as the embedded runtime's row. */
export interface PeerThroughput {
  readonly tasks: number;
  readonly seconds: number;
  readonly tasksPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
  /** CPU time per job: this Node process (client + worker) plus redis-server. */
  readonly cpuMicrosPerTask: number;
}

export interface LocalRedis {
  readonly port: number;
  /** CPU time redis-server has used so far, in microseconds (from /proc; 10 ms resolution). */
  cpuMicros(): number;
  stop(): Promise<void>;
}

/** How to get the peer's server when it is missing (printed by the bench, which then skips the peer). */
export const REDIS_INSTALL_HINT = "apt-get update && apt-get install -y redis-server";

/** The path of `redis-server`, or undefined when it is not installed. */
export function findRedisServer(): string | undefined {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * A throwaway redis-server on a free port in a temp dir: no persistence (the embedded runtime it is
 * compared with keeps everything in memory too), stopped and its dir removed by `stop()`.
 */
export async function startRedis(binary: string): Promise<LocalRedis> {
  const dir = mkdtempSync(join(tmpdir(), "agentry-bench-redis-"));
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}): ${output}`));
      });
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  child.stdout?.resume();
  child.stderr?.resume();
  const pid = child.pid;
  const cpuMicros = () => {
    if (pid === undefined) return 0;
    // /proc/<pid>/stat: utime and stime are fields 14 and 15, in clock ticks (100 per second).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  };
  return { port, cpuMicros, stop };
}

/**
 * The embedded runtime's workload on BullMQ 5: `tasks` echo jobs added with `addBulk` in batches of
 * 100 (each batch awaited before the next, as the HTTP client awaits each POST), one worker of
 * `concurrency` (the echo worker's `maxConcurrentTasks`), timed from the first add to the last
 * `completed`. BullMQ keeps completed jobs and their results (its default), as the task store does.
 */
export async function measureBullmq(
  redis: LocalRedis,
  tasks: number,
  concurrency: number,
): Promise<PeerThroughput> {
  const port = redis.port;
  const { Queue, Worker } = await import("bullmq");
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const name = `bench-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const addedAt = new Map<string, number>();
  const latencies: number[] = [];
  let finished = 0;
  let failed = 0;
  let resolveAll: () => void = () => {};
  const allDone = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  const worker = new Worker(name, async (job) => ({ value: job.data.value, attempt: job.attemptsMade + 1 }), {
    connection,
    concurrency,
    autorun: false,
  });
  const settle = (id: string | undefined) => {
    const start = id === undefined ? undefined : addedAt.get(id);
    if (start !== undefined) latencies.push(performance.now() - start);
    if (++finished === tasks) resolveAll();
  };
  worker.on("completed", (job) => settle(job.id));
  worker.on("failed", (job) => {
    failed++;
    settle(job?.id);
  });
  try {
    await queue.waitUntilReady();
    await worker.waitUntilReady();
    void worker.run();
    const cpuBefore = process.cpuUsage();
    const redisCpuBefore = redis.cpuMicros();
    const started = performance.now();
    for (let sent = 0; sent < tasks; sent += 100) {
      const size = Math.min(100, tasks - sent);
      const before = performance.now();
      const jobs = await queue.addBulk(
        Array.from({ length: size }, (_, i) => ({ name: "echo", data: { value: { n: sent + i } } })),
      );
      for (const job of jobs) if (job.id !== undefined) addedAt.set(job.id, before);
    }
    const timeout = setTimeout(() => resolveAll(), 300_000);
    await allDone;
    clearTimeout(timeout);
    if (finished < tasks) throw new Error(`bullmq: only ${finished} of ${tasks} jobs finished`);
    if (failed > 0) throw new Error(`bullmq: ${failed} jobs failed`);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMicros = cpu.user + cpu.system + redis.cpuMicros() - redisCpuBefore;
    return {
      tasks,
      seconds,
      tasksPerSecond: tasks / seconds,
      latencyMs: percentiles(latencies),
      cpuMicrosPerTask: cpuMicros / tasks,
    };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}

/** p50/p95/p99 of `values` in whole milliseconds (sorts in place). */
export function percentiles(values: number[]): { p50: number; p95: number; p99: number } {
  const sorted = values.sort((a, b) => a - b);
  const pct = (p: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);
  return { p50: pct(50), p95: pct(95), p99: pct(99) };
}
