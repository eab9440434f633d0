import type { RuntimeMode } from "#local/runtime";
import { startLocalRuntime } from "#local/runtime";
import { TERMINAL_TASK_DETAIL_TYPES } from "#shared/domain/events";
import { percentiles } from "./bullmq-peer.ts";

export interface Throughput {
  readonly mode: RuntimeMode;
  readonly tasks: number;
  readonly seconds: number;
  readonly tasksPerSecond: number;
  /** Milliseconds from submission to the terminal event, by percentile. */
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
  /** CPU time of this process per task (HTTP client, server, workers: everything runs in it). */
  readonly cpuMicrosPerTask: number;
}

/**
 * End-to-end throughput of one process: submit `tasks` echo tasks over HTTP in batches of 100 (each
 * POST awaited before the next), as fast as the API takes them, and time until every task's terminal
 * event. The echo worker (diagnostics) runs up to its `maxConcurrentTasks` (8) tasks at a time.
 */
export async function measureThroughput(mode: RuntimeMode, tasks: number): Promise<Throughput> {
  const runtime = await startLocalRuntime({ mode, port: 0, logLevel: "silent", sweepIntervalMs: 3_600_000 });
  try {
    const submittedAt = new Map<string, number>();
    const latencies: number[] = [];
    let finished = 0;
    let notCompleted = 0;
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    runtime.bus.subscribe(
      { source: ["agentry"], "detail-type": [...TERMINAL_TASK_DETAIL_TYPES] },
      (event) => {
        const start = submittedAt.get(String(event.detail.taskId));
        if (start !== undefined) latencies.push(performance.now() - start);
        if (event["detail-type"] !== "Task Completed") notCompleted++;
        if (++finished === tasks) allDone();
      },
    );
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let sent = 0; sent < tasks; sent += 100) {
      const size = Math.min(100, tasks - sent);
      const before = performance.now();
      const response = await fetch(`${runtime.url}/tasks`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          tasks: Array.from({ length: size }, (_, i) => ({
            taskType: "echo",
            input: { value: { n: sent + i } },
          })),
        }),
      });
      if (response.status !== 202) throw new Error(`POST /tasks answered ${response.status}`);
      const body = (await response.json()) as { tasks: { taskId: string }[] };
      for (const t of body.tasks) submittedAt.set(t.taskId, before);
    }
    const timeout = setTimeout(allDone, 300_000);
    await done;
    clearTimeout(timeout);
    if (finished < tasks) throw new Error(`only ${finished} of ${tasks} tasks finished`);
    if (notCompleted > 0) throw new Error(`${notCompleted} tasks did not complete`);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    return {
      mode,
      tasks,
      seconds,
      tasksPerSecond: tasks / seconds,
      latencyMs: percentiles(latencies),
      cpuMicrosPerTask: (cpu.user + cpu.system) / tasks,
    };
  } finally {
    await runtime.stop();
  }
}
