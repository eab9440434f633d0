import { type LocalRuntime, startLocalRuntime } from "#local/runtime";
import type { IoTracker } from "#shared/adapters/aws/request-accounting";
import type { BusEvent } from "#shared/domain/events";
import { TERMINAL_TASK_DETAIL_TYPES } from "#shared/domain/events";
import { assumedLatencyMs, FUNCTION_MEMORY_MB, PRICES } from "./prices.ts";

/** One way of submitting tasks the bench prices. */
export type CostWorkloadName = "batch10" | "single" | "job10";

export interface LambdaUse {
  readonly invocationsPerTask: number;
  readonly gbSecondsPerTask: number;
  readonly memoryMb: number;
}

export interface CostResult {
  readonly workload: CostWorkloadName;
  readonly tasks: number;
  /** AWS's figure: index writes inside transactions counted once (DynamoDB Local reports them twice). */
  readonly wruPerTask: number;
  readonly rruPerTask: number;
  /** As DynamoDB Local reported it, for comparison. */
  readonly reportedWruPerTask: number;
  readonly wruByOperation: Readonly<Record<string, number>>;
  readonly wruByTarget: Readonly<Record<string, number>>;
  readonly rruByOperation: Readonly<Record<string, number>>;
  readonly rruByTarget: Readonly<Record<string, number>>;
  /** SQS requests per task by operation (empty long polls left out: they follow idle time, not tasks). */
  readonly sqsByOperation: Readonly<Record<string, number>>;
  readonly sqsPerTask: number;
  /** EventBridge events per task (each well under one 64 KB chunk). */
  readonly eventsPerTask: number;
  /**
   * Task events handed to job fan-in (`Aggregator.onTaskEvent`) per task: the stream consumer
   * reaches it only for tasks that belong to a job, so plain tasks show 0.
   */
  readonly jobFanInPerTask: number;
  readonly lambda: Readonly<Record<string, LambdaUse>>;
  readonly usdPerMillionByService: {
    readonly dynamodb: number;
    readonly sqs: number;
    readonly eventbridge: number;
    readonly lambda: number;
  };
  readonly usdPerMillion: number;
}

/**
 * `npm run bench -- cost`: what one noop task costs on AWS, measured on the emulated stack (DynamoDB
 * Local + fauxqs, the workers as their Lambda handlers, every DynamoDB request asking for
 * ReturnConsumedCapacity INDEXES). Prices come from bench/prices.ts; API Gateway and CloudWatch Logs
 * are left out.
 */
export async function measureCost(tasksPerWorkload = 200): Promise<CostResult[]> {
  const invocations = new Map<string, number[]>();
  const onInvocation = (name: string, ms: number, io: IoTracker) => {
    const list = invocations.get(name) ?? [];
    list.push(awsDurationMs(ms, io));
    invocations.set(name, list);
  };
  const runtime = await startLocalRuntime({
    mode: "emulated",
    port: 0,
    logLevel: "silent",
    sweepIntervalMs: 3_600_000,
    onInvocation,
  });
  try {
    const published = countPublished(runtime);
    const fanIn = countFanIn(runtime);
    const finished = new Set<string>();
    const jobsDone = new Set<string>();
    runtime.bus.subscribe(
      { source: ["agentry"], "detail-type": [...TERMINAL_TASK_DETAIL_TYPES] },
      (event) => {
        finished.add(String(event.detail.taskId));
      },
    );
    runtime.bus.subscribe({ source: ["agentry"], "detail-type": ["Job Completed"] }, (event) => {
      jobsDone.add(String(event.detail.jobId));
    });
    // Warm-up: clients, queues, the worker agents' registration.
    await submitTasks(runtime.url, 10, 10);
    await waitFor(() => finished.size >= 10, 60_000);
    await settle(runtime);

    const results: CostResult[] = [];
    for (const workload of ["batch10", "single", "job10"] as const) {
      finished.clear();
      jobsDone.clear();
      invocations.clear();
      runtime.requests?.reset();
      runtime.capacity?.reset();
      published.reset();
      fanIn.reset();
      if (workload === "job10") {
        const jobs = Math.ceil(tasksPerWorkload / 10);
        for (let j = 0; j < jobs; j++) await submitJob(runtime.url, 10);
        await waitFor(() => jobsDone.size >= jobs, 180_000);
      } else {
        await submitTasks(runtime.url, tasksPerWorkload, workload === "batch10" ? 10 : 1);
        await waitFor(() => finished.size >= tasksPerWorkload, 180_000);
      }
      await settle(runtime);
      results.push(price(workload, tasksPerWorkload, runtime, published.count(), fanIn.count(), invocations));
    }
    return results;
  } finally {
    await runtime.stop();
  }
}

function price(
  workload: CostWorkloadName,
  tasks: number,
  runtime: LocalRuntime,
  events: number,
  fanIn: number,
  invocations: ReadonlyMap<string, readonly number[]>,
): CostResult {
  const capacity = runtime.capacity?.reading();
  const requests = runtime.requests?.snapshot();
  if (!capacity || !requests) throw new Error("the emulated runtime has no meters");
  const perTask = (n: number) => round(n / tasks);
  const perTaskMap = (map: Readonly<Record<string, number>>) =>
    Object.fromEntries(Object.entries(map).map(([k, v]) => [k, perTask(v)]));
  const wru = Object.values(capacity.wruByOperation).reduce((a, b) => a + b, 0);
  const rru = Object.values(capacity.rruByOperation).reduce((a, b) => a + b, 0);
  const sqsByOperation = Object.fromEntries(
    Object.entries(requests.byOperation)
      .filter(([op]) => op.startsWith("SQS.") && op !== "SQS.ReceiveMessage(empty)")
      .map(([op, n]) => [op.slice(4), n]),
  );
  const sqs = Object.values(sqsByOperation).reduce((a, b) => a + b, 0);
  const lambda: Record<string, LambdaUse> = {};
  let lambdaUsd = 0;
  for (const [name, durations] of invocations) {
    const memoryMb = FUNCTION_MEMORY_MB[name.startsWith("worker:") ? "worker" : name] ?? 512;
    // Billed per started millisecond.
    const gbSeconds = durations.reduce((sum, ms) => sum + (Math.ceil(ms) / 1000) * (memoryMb / 1024), 0);
    lambda[name] = {
      invocationsPerTask: perTask(durations.length),
      gbSecondsPerTask: round(gbSeconds / tasks, 6),
      memoryMb,
    };
    lambdaUsd += durations.length * PRICES.lambda.request + gbSeconds * PRICES.lambda.gbSecondArm64;
  }
  const million = 1e6 / tasks;
  const byService = {
    dynamodb: round(
      (wru * PRICES.dynamodb.writeRequestUnit + rru * PRICES.dynamodb.readRequestUnit) * million,
    ),
    sqs: round(sqs * PRICES.sqs.request * million),
    eventbridge: round(events * PRICES.eventbridge.customEvent * million),
    lambda: round(lambdaUsd * million),
  };
  return {
    workload,
    tasks,
    wruPerTask: perTask(wru),
    rruPerTask: perTask(rru),
    reportedWruPerTask: perTask(capacity.reportedWru),
    wruByOperation: perTaskMap(capacity.wruByOperation),
    wruByTarget: perTaskMap(capacity.wruByTarget),
    rruByOperation: perTaskMap(capacity.rruByOperation),
    rruByTarget: perTaskMap(capacity.rruByTarget),
    sqsByOperation: perTaskMap(sqsByOperation),
    sqsPerTask: perTask(sqs),
    eventsPerTask: perTask(events),
    jobFanInPerTask: perTask(fanIn),
    lambda,
    usdPerMillionByService: byService,
    usdPerMillion: round(byService.dynamodb + byService.sqs + byService.eventbridge + byService.lambda),
  };
}

interface CallCounter {
  count(): number;
  reset(): void;
}

/** Wraps `target[method]` to add `weigh(argument)` to a count on every call. */
function countCalls<T, A>(target: T, method: keyof T, weigh: (argument: A) => number): CallCounter {
  let n = 0;
  const original = (target[method] as (argument: A) => Promise<unknown>).bind(target);
  (target as Record<keyof T, unknown>)[method] = async (argument: A) => {
    n += weigh(argument);
    return original(argument);
  };
  return {
    count: () => n,
    reset: () => {
      n = 0;
    },
  };
}

/**
 * Counts the events the platform would publish to EventBridge. The local runtime puts every task
 * lifecycle event on its in-process bus (free); the deployed stream consumer publishes none by
 * default (infra/constructs/aggregation.ts, `publishTaskEvents: "none"`), so only the others count.
 */
function countPublished(runtime: LocalRuntime): CallCounter {
  return countCalls(
    runtime.bus,
    "publish",
    (events: readonly BusEvent[]) => events.filter((e) => !e["detail-type"].startsWith("Task ")).length,
  );
}

/** Counts the task events the stream consumer hands to job fan-in. */
function countFanIn(runtime: LocalRuntime): CallCounter {
  return countCalls(runtime.aggregator, "onTaskEvent", () => 1);
}

/** Waits until no request has been made for a while: the tail of the work (counters, clean-up) is in. */
async function settle(runtime: LocalRuntime): Promise<void> {
  const busy = () => {
    const snapshot = runtime.requests?.snapshot();
    // Idle polling (empty long polls, the stream poller's reads) goes on whatever the load.
    const idle = Object.entries(snapshot?.byOperation ?? {})
      .filter(([op]) => op === "SQS.ReceiveMessage(empty)" || op.startsWith("DynamoDBStreams."))
      .reduce((sum, [, n]) => sum + n, 0);
    return (snapshot?.total ?? 0) - idle;
  };
  let last = -1;
  for (;;) {
    const now = busy();
    if (now === last) return;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
  }
}

async function submitTasks(url: string, count: number, batchSize: number): Promise<void> {
  for (let sent = 0; sent < count; sent += batchSize) {
    const size = Math.min(batchSize, count - sent);
    const tasks = Array.from({ length: size }, (_, i) => ({ taskType: "echo", input: { value: sent + i } }));
    const body = size === 1 ? tasks[0] : { tasks };
    const response = await fetch(`${url}/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (response.status !== 202)
      throw new Error(`submit answered ${response.status}: ${await response.text()}`);
  }
}

async function submitJob(url: string, size: number): Promise<void> {
  const response = await fetch(`${url}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      tasks: Array.from({ length: size }, (_, i) => ({ taskType: "echo", input: { value: i } })),
      aggregation: { policy: "all", reducer: "collect" },
    }),
  });
  if (response.status !== 202)
    throw new Error(`job submit answered ${response.status}: ${await response.text()}`);
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("tasks did not finish in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * An invocation's duration on AWS: its time minus the time it waited on the emulators, plus that wait
 * scaled to AWS's latency (bench/prices.ts), so parallel requests still overlap.
 */
function awsDurationMs(measuredMs: number, io: IoTracker): number {
  const measured = io.requests.reduce((sum, r) => sum + r.ms, 0);
  if (measured <= 0) return measuredMs;
  const assumed = io.requests.reduce((sum, r) => sum + assumedLatencyMs(r.operation), 0);
  return Math.max(1, measuredMs - io.ioMs + io.ioMs * Math.min(1, assumed / measured));
}

function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The README's table: one column per workload. */
export function costTable(results: readonly CostResult[]): string {
  const lines: string[] = [];
  const cols = results.map((r) => r.workload);
  lines.push(`| per task | ${cols.join(" | ")} |`);
  lines.push(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
  const row = (label: string, f: (r: CostResult) => string) =>
    lines.push(`| ${label} | ${results.map(f).join(" | ")} |`);
  const keys = (f: (r: CostResult) => Readonly<Record<string, unknown>>) =>
    [...new Set(results.flatMap((r) => Object.keys(f(r))))].sort();
  row("**DynamoDB WRU** (AWS figure)", (r) => `**${r.wruPerTask}**`);
  for (const op of keys((r) => r.wruByOperation))
    row(`  WRU ${op}`, (r) => String(r.wruByOperation[op] ?? 0));
  for (const t of keys((r) => r.wruByTarget)) row(`  WRU on ${t}`, (r) => String(r.wruByTarget[t] ?? 0));
  row("DynamoDB WRU as DynamoDB Local reports it", (r) => String(r.reportedWruPerTask));
  row("**DynamoDB RRU**", (r) => `**${r.rruPerTask}**`);
  for (const op of keys((r) => r.rruByOperation))
    row(`  RRU ${op}`, (r) => String(r.rruByOperation[op] ?? 0));
  row("**SQS requests**", (r) => `**${r.sqsPerTask}**`);
  for (const op of keys((r) => r.sqsByOperation))
    row(`  SQS ${op}`, (r) => String(r.sqsByOperation[op] ?? 0));
  row("**EventBridge events**", (r) => `**${r.eventsPerTask}**`);
  row("Task events to job fan-in (Aggregator.onTaskEvent)", (r) => String(r.jobFanInPerTask));
  for (const fn of keys((r) => r.lambda)) {
    row(`Lambda ${fn} invocations`, (r) => String(r.lambda[fn]?.invocationsPerTask ?? 0));
    row(`Lambda ${fn} GB-s`, (r) => String(r.lambda[fn]?.gbSecondsPerTask ?? 0));
  }
  for (const service of ["dynamodb", "sqs", "eventbridge", "lambda"] as const) {
    row(`$ per 1M tasks: ${service}`, (r) => r.usdPerMillionByService[service].toFixed(2));
  }
  row("**$ per 1M tasks**", (r) => `**${r.usdPerMillion.toFixed(2)}**`);
  return lines.join("\n");
}
