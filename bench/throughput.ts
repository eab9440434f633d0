import type { RuntimeMode } from "#local/runtime";
import { startLocalRuntime } from "#local/runtime";

const TERMINAL = ["Task Completed", "Task Failed", "Task Canceled", "Task Rejected"];

export interface Throughput {
  readonly mode: RuntimeMode;
  readonly tasks: number;
  readonly seconds: number;
  readonly tasksPerSecond: number;
  /** Milliseconds from submission to the terminal event, by percentile. */
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
}

/**
 * End-to-end throughput of one process: submit `tasks` analyze_text tasks over HTTP in batches of
 * 100, as fast as the API takes them, and time until every task's terminal event.
 */
export async function measureThroughput(mode: RuntimeMode, tasks: number): Promise<Throughput> {
  const runtime = await startLocalRuntime({ mode, port: 0, logLevel: "silent", sweepIntervalMs: 3_600_000 });
  try {
    const submittedAt = new Map<string, number>();
    const latencies: number[] = [];
    let finished = 0;
    runtime.bus.subscribe({ source: ["agentry"], "detail-type": TERMINAL }, (event) => {
      const start = submittedAt.get(String(event.detail.taskId));
      if (start !== undefined) latencies.push(performance.now() - start);
      finished++;
    });
    const started = performance.now();
    for (let sent = 0; sent < tasks; sent += 100) {
      const size = Math.min(100, tasks - sent);
      const before = performance.now();
      const response = await fetch(`${runtime.url}/tasks`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          tasks: Array.from({ length: size }, (_, i) => ({
            taskType: "analyze_text",
            input: { text: `Task ${sent + i}. Done.` },
          })),
        }),
      });
      const body = (await response.json()) as { tasks: { taskId: string }[] };
      for (const t of body.tasks) submittedAt.set(t.taskId, before);
    }
    const deadline = Date.now() + 300_000;
    while (finished < tasks) {
      if (Date.now() > deadline) throw new Error(`only ${finished} of ${tasks} tasks finished`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const seconds = (performance.now() - started) / 1000;
    const sorted = latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);
    return {
      mode,
      tasks,
      seconds,
      tasksPerSecond: tasks / seconds,
      latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99) },
    };
  } finally {
    await runtime.stop();
  }
}
