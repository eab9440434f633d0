import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { analyzeText } from "#shared/agents/demo";
import { TERMINAL_STATUSES } from "#shared/domain/lifecycle";
import { CHAOS_CAPABILITY, CHAOS_EVENT_BUS, chaosConfig } from "./config.ts";
import { type FaultSettings, hashLabel, seededRandom } from "./faults.ts";
import {
  bundleWorker,
  type RuntimeInfo,
  startRuntimeProcess,
  startWorkerProcess,
  stopChild,
} from "./processes.ts";

export interface ChaosOptions {
  /** Tasks to submit, about (jobs and pipelines round it). @default 1000 */
  readonly tasks?: number;
  /** Seeds the workload and every process's fault decisions. @default Date.now() */
  readonly seed?: number;
  /** Worker processes running at once. @default 3 */
  readonly workers?: number;
  /** A random worker process is SIGKILLed (and replaced) this often, on average. @default 5000 */
  readonly killEveryMs?: number;
  /** How long the run may take before the unfinished are reported. @default 300 s + 0.6 s a task */
  readonly timeoutMs?: number;
  /** Fault rates; see FaultSettings. @default DEFAULT_FAULT_RATES */
  readonly faults?: Partial<FaultRates>;
  /** Where DynamoDB Local keeps its data and the processes their logs. @default a temporary directory, removed after a run without violations */
  readonly dataDir?: string;
  /** Progress lines. @default none */
  readonly progress?: (line: string) => void;
}

export type FaultRates = Omit<FaultSettings, "seed" | "label" | "log">;

export const DEFAULT_FAULT_RATES: FaultRates = {
  throttle: 0.03,
  serverError: 0.02,
  serverErrorAfterApply: 0.005,
  redelivery: 0.1,
  duplicateSend: 0.05,
};

export interface ChaosReport {
  readonly seed: number;
  readonly tasks: {
    readonly accepted: number;
    /** Tasks in the table at the end, pipeline steps' tasks included. */
    readonly inTable: number;
    readonly byKind: Record<string, number>;
    readonly byStatus: Record<string, number>;
  };
  readonly jobs: {
    readonly accepted: number;
    readonly byKind: Record<string, number>;
    readonly byStatus: Record<string, number>;
  };
  /** Injected faults: kind → service → count. */
  readonly faults: Record<string, Record<string, number>>;
  readonly faultsTotal: number;
  readonly workerKills: number;
  readonly runtimeRestarts: number;
  /** API requests answered 5xx (a fault got past the SDK's retries) and sent again. */
  readonly apiRetries: number;
  readonly deadLetters: number;
  /** Tasks whose handler outlived its timeout and that failed with `timeout`. */
  readonly timeouts: number;
  /** Things that are allowed under chaos but worth knowing (a plain task that ran out of attempts). */
  readonly notes: readonly string[];
  readonly violations: readonly string[];
  readonly elapsedMs: number;
  readonly dataDir: string;
}

type Kind = "echo" | "echo-retry" | "echo-fail" | "echo-timeout" | "analyze";

interface PlainTask {
  readonly kind: Kind;
  readonly body: Record<string, unknown>;
}

interface JobUnit {
  readonly kind: string;
  readonly body: Record<string, unknown>;
  /** The status the job must end in, where the workload decides it. */
  readonly expect?: "completed" | "failed";
}

/**
 * The chaos run: the emulated platform in a runtime process and the echo workers in container-worker
 * processes, a seeded workload of plain tasks, jobs and pipelines, while worker processes are SIGKILLed
 * at random, the runtime is killed -9 once and restarted on its data, and every process's AWS clients
 * are throttled, answered 5xx (before and after applying the request) and SQS deliveries duplicated.
 * Then the invariants are checked from the table and the API; the report lists every violation.
 *
 * @example
 * const report = await runChaos({ tasks: 300 });
 * console.log(formatReport(report)); // violations: 0
 */
export async function runChaos(options: ChaosOptions = {}): Promise<ChaosReport> {
  const started = Date.now();
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const random = seededRandom(seed);
  const target = options.tasks ?? 1000;
  const workerCount = options.workers ?? 3;
  const killEveryMs = options.killEveryMs ?? 5000;
  const timeoutMs = options.timeoutMs ?? 300_000 + 600 * target;
  const say = options.progress ?? (() => undefined);
  const progress = (line: string) => say(`${((Date.now() - started) / 1000).toFixed(1)} s ${line}`);
  const root = options.dataDir ?? mkdtempSync(join(tmpdir(), "agentry-chaos-"));
  const dataDir = join(root, "dynamodb");
  const logs = join(root, "logs");
  mkdirSync(logs, { recursive: true });
  const faultLog = join(logs, "faults.log");
  writeFileSync(faultLog, "");
  const rates = { ...DEFAULT_FAULT_RATES, ...options.faults };
  const faultsFor = (label: string): FaultSettings => ({ ...rates, seed, label, log: faultLog });

  const { plain, jobs } = workload(target, random);
  const bundle = bundleWorker(join(root, "worker"));
  const violations: string[] = [];
  const notes: string[] = [];
  let runtime: { child: ChildProcess; info: RuntimeInfo } | undefined;
  const workers: ChildProcess[] = [];
  let workerSerial = 0;
  let workerKills = 0;
  let runtimeRestarts = 0;
  let restarting: Promise<void> | undefined;
  let apiRetries = 0;

  const startWorker = () => {
    if (runtime === undefined) throw new Error("no runtime");
    workerSerial++;
    const label = `chaos-worker-${workerSerial}`;
    workers.push(
      startWorkerProcess(
        bundle,
        runtime.info,
        {
          capability: CHAOS_CAPABILITY,
          eventBus: CHAOS_EVENT_BUS,
          config: chaosConfig,
          shards: chaosConfig.shards,
          label,
        },
        faultsFor(label),
        join(logs, `${label}.log`),
      ),
    );
  };
  const killWorker = async (index: number) => {
    const [victim] = workers.splice(index, 1);
    if (victim) await stopChild(victim, "SIGKILL");
    workerKills++;
  };
  const startRuntime = async () => {
    runtime = await startRuntimeProcess(
      dataDir,
      faultsFor(`runtime-${runtimeRestarts}`),
      join(logs, `runtime-${runtimeRestarts}.log`),
    );
  };
  const url = () => {
    if (runtime === undefined) throw new Error("no runtime");
    return runtime.info.url;
  };

  /** One API request, retried while the runtime restarts or answers 5xx (its own clients get faults too). */
  const call = async (
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: any }> => {
    for (let attempt = 1; ; attempt++) {
      await restarting;
      try {
        const response = await fetch(`${url()}${path}`, {
          method,
          headers: { "content-type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await response.text();
        const parsed = text.length > 0 ? JSON.parse(text) : undefined;
        if (response.status < 500 || attempt >= 30) return { status: response.status, body: parsed };
        apiRetries++;
        progress(`${method} ${path} answered ${response.status}: ${text.slice(0, 200)}`);
      } catch (error) {
        if (attempt >= 30) throw error;
      }
      await sleep(200 * Math.min(attempt, 10));
    }
  };

  const accepted: { id: string; task: PlainTask }[] = [];
  const acceptedJobs: { id: string; unit: JobUnit; taskIds: string[] }[] = [];
  let chaosRunning = true;
  let killLoop: Promise<void> | undefined;
  try {
    progress(`seed ${seed}; ${plain.length} plain tasks, ${jobs.length} jobs and pipelines; data in ${root}`);
    await startRuntime();
    for (let i = 0; i < workerCount; i++) startWorker();
    killLoop = (async () => {
      while (chaosRunning) {
        await sleep(killEveryMs * (0.5 + random()));
        if (!chaosRunning) break;
        await restarting;
        if (workers.length === 0) continue;
        await killWorker(Math.floor(random() * workers.length));
        startWorker();
      }
    })();

    // The workload, in rounds of batches; the runtime is killed -9 once, halfway through.
    const batches = chunk(plain, 50);
    const rounds = interleave(batches, jobs);
    const restartAt = Math.floor(rounds.length / 2);
    let submitted = 0;
    const submit = async (item: PlainTask[] | JobUnit) => {
      await submitItem(item);
      if (++submitted % 10 === 0) progress(`submitted ${submitted}/${rounds.length} batches and jobs`);
    };
    const submitItem = async (item: PlainTask[] | JobUnit) => {
      if (Array.isArray(item)) {
        const response = await call("POST", "/tasks", { tasks: item.map((t) => t.body) });
        if (response.status !== 202) {
          violations.push(
            `a batch submission was refused: ${response.status} ${JSON.stringify(response.body)}`,
          );
          return;
        }
        response.body.tasks.forEach((t: { taskId: string }, i: number) => {
          accepted.push({ id: t.taskId, task: item[i] as PlainTask });
        });
      } else {
        const response = await call("POST", "/jobs", item.body);
        if (response.status !== 202) {
          violations.push(
            `a job submission was refused: ${response.status} ${JSON.stringify(response.body)}`,
          );
          return;
        }
        acceptedJobs.push({ id: response.body.jobId, unit: item, taskIds: response.body.taskIds });
      }
    };
    await inParallel(rounds.slice(0, restartAt), 4, submit);
    progress(
      `killing the runtime process (-9) after ${accepted.length} tasks and ${acceptedJobs.length} jobs`,
    );
    restarting = (async () => {
      const old = runtime;
      // The worker processes lose their emulators with it: they are killed too and started again.
      await Promise.all(workers.splice(0).map((w) => stopChild(w, "SIGKILL")));
      if (old) await stopChild(old.child, "SIGKILL");
      // DynamoDB Local's watchdog notices the dead parent within a second and releases the files.
      await sleep(3_000);
      runtimeRestarts++;
      await startRuntime();
      for (let i = 0; i < workerCount; i++) startWorker();
      progress("runtime restarted on the same data");
    })();
    await restarting;
    restarting = undefined;
    await inParallel(rounds.slice(restartAt), 4, submit);
    progress(
      `all submitted: ${accepted.length} tasks, ${acceptedJobs.length} jobs; waiting for them to finish`,
    );

    // Done when the statistics say nothing is pending or running and no job works; the checks below
    // then read the table itself.
    const deadline = started + timeoutMs;
    for (;;) {
      const [stats, jobStats] = await Promise.all([call("GET", "/stats"), call("GET", "/stats/jobs")]);
      const open = Number(stats.body?.tasksPending ?? 1) + Number(stats.body?.tasksInProgress ?? 1);
      const running = Number(jobStats.body?.jobs?.running ?? 1);
      if (open === 0 && running === 0) {
        const unfinished = (await scanTable(runtime as { info: RuntimeInfo })).tasks.filter(
          (t) => !TERMINAL_STATUSES.includes(t.status),
        );
        if (unfinished.length === 0) break;
      }
      if (Date.now() > deadline) {
        notes.push(`gave up waiting after ${timeoutMs} ms (${open} tasks open, ${running} jobs running)`);
        break;
      }
      progress(`${open} tasks open, ${running} jobs running`);
      await sleep(2_000);
    }
    chaosRunning = false;
    await killLoop;

    const info = (runtime as { info: RuntimeInfo }).info;
    const table = await scanTable({ info });
    const deadLetters = await drainDeadLetters(info);
    await checkInvariants({ table, accepted, acceptedJobs, deadLetters, call, violations, notes });
    const faults = readFaults(faultLog);
    const report: ChaosReport = {
      seed,
      tasks: {
        accepted: accepted.length + acceptedJobs.reduce((n, j) => n + j.taskIds.length, 0),
        inTable: table.tasks.length,
        byKind: countBy([
          ...accepted.map((a) => a.task.kind),
          ...table.tasks.filter((t) => t.jobId !== undefined).map(() => "in a job or pipeline"),
        ]),
        byStatus: countBy(table.tasks.map((t) => t.status)),
      },
      jobs: {
        accepted: acceptedJobs.length,
        byKind: countBy(acceptedJobs.map((j) => j.unit.kind)),
        byStatus: countBy(table.jobs.map((j) => String(j.status))),
      },
      faults: faults.byKind,
      faultsTotal: faults.total,
      workerKills,
      runtimeRestarts,
      apiRetries,
      deadLetters: deadLetters.length,
      timeouts: table.tasks.filter((t) => t.status === "failed" && t.error?.code === "timeout").length,
      notes,
      violations,
      elapsedMs: Date.now() - started,
      dataDir: root,
    };
    return report;
  } finally {
    chaosRunning = false;
    await killLoop?.catch(() => undefined);
    await Promise.all(workers.splice(0).map((w) => stopChild(w, "SIGTERM", 10_000)));
    if (runtime) await stopChild(runtime.child, "SIGTERM", 20_000);
    if (options.dataDir === undefined && violations.length === 0 && existsSync(root)) {
      rmSync(root, { recursive: true, force: true });
    }
  }
}

/** The seeded workload: plain tasks of each kind, fan-out jobs under each policy, and pipelines. */
function workload(target: number, random: () => number): { plain: PlainTask[]; jobs: JobUnit[] } {
  const jobs: JobUnit[] = [];
  let jobTasks = 0;
  const echo = (value: string, extra: Record<string, unknown> = {}, task: Record<string, unknown> = {}) => ({
    taskType: "echo",
    input: { value, delayMs: Math.floor(random() * 150), ...extra },
    maxAttempts: 5,
    ...task,
  });
  // About a quarter of the tasks run in jobs (8 each) and pipelines (5 each).
  for (let n = 0; jobTasks < target * 0.25; n++) {
    const shape = n % 5;
    if (shape === 0) {
      jobs.push({
        kind: "all/collect",
        expect: "completed",
        body: {
          tasks: Array.from({ length: 8 }, (_, i) => echo(`j${n}-${i}`)),
          aggregation: { policy: "all", reducer: "collect" },
        },
      });
      jobTasks += 8;
    } else if (shape === 1) {
      jobs.push({
        kind: "all/fail-fast with a failing task",
        expect: "failed",
        body: {
          tasks: Array.from({ length: 8 }, (_, i) =>
            i === 3 ? echo(`j${n}-${i}`, { failAttempts: 99 }, { maxAttempts: 2 }) : echo(`j${n}-${i}`),
          ),
          aggregation: { policy: "all", reducer: "collect" },
        },
      });
      jobTasks += 8;
    } else if (shape === 2) {
      jobs.push({
        kind: "quorum 5 of 8, tolerate",
        expect: "completed",
        body: {
          tasks: Array.from({ length: 8 }, (_, i) =>
            i < 2 ? echo(`j${n}-${i}`, { failAttempts: 99 }, { maxAttempts: 2 }) : echo(`j${n}-${i}`),
          ),
          aggregation: { policy: "quorum", quorum: 5, reducer: "collect" },
          failurePolicy: { mode: "tolerate", maxFailures: 3 },
        },
      });
      jobTasks += 8;
    } else if (shape === 3) {
      jobs.push({
        kind: "first",
        expect: "completed",
        body: {
          tasks: Array.from({ length: 8 }, (_, i) => echo(`j${n}-${i}`, { delayMs: 200 * i })),
          aggregation: { policy: "first", reducer: "collect" },
        },
      });
      jobTasks += 8;
    } else {
      jobs.push({
        kind: "pipeline",
        expect: "completed",
        body: {
          steps: [
            {
              tasks: [
                { taskType: "analyze_text", input: { text: `Pipeline ${n}. Agents talk.` }, maxAttempts: 5 },
                {
                  taskType: "analyze_text",
                  input: { text: `Workers work. Jobs fan in ${n}.` },
                  maxAttempts: 5,
                },
              ],
              aggregation: { policy: "all", reducer: "collect" },
            },
            {
              tasks: {
                fromPrevious: {
                  taskType: "summarize",
                  forEach: "tasks",
                  input: { text: { $from: "item.input.text" }, maxSentences: 1 },
                },
              },
              aggregation: { policy: "all", reducer: "collect" },
            },
            {
              tasks: {
                fromPrevious: { taskType: "echo", input: { value: { summaries: { $from: "result" } } } },
              },
              aggregation: { policy: "all", reducer: "merge" },
            },
          ],
        },
      });
      jobTasks += 5;
    }
  }
  const plain: PlainTask[] = [];
  for (let i = 0; plain.length < target - jobTasks; i++) {
    const roll = random();
    const key = `chaos-${hashLabel(String(random()))}-${i}`;
    if (roll < 0.6) plain.push({ kind: "echo", body: { ...echo(`p${i}`), idempotencyKey: key } });
    else if (roll < 0.72)
      plain.push({
        kind: "echo-retry",
        body: { ...echo(`p${i}`, { failAttempts: 1 + Math.floor(random() * 2) }), idempotencyKey: key },
      });
    else if (roll < 0.78)
      plain.push({
        kind: "echo-fail",
        body: { ...echo(`p${i}`, { failAttempts: 99 }, { maxAttempts: 2 }), idempotencyKey: key },
      });
    else if (roll < 0.82)
      plain.push({
        kind: "echo-timeout",
        body: {
          ...echo(`p${i}`, { delayMs: 2_500 }, { maxAttempts: 2, timeoutSeconds: 1 }),
          idempotencyKey: key,
        },
      });
    else
      plain.push({
        kind: "analyze",
        body: {
          taskType: "analyze_text",
          input: { text: `Task ${i} of the chaos run. Agents talk!` },
          maxAttempts: 5,
          idempotencyKey: key,
        },
      });
  }
  return { plain, jobs };
}

interface TableView {
  readonly tasks: Record<string, any>[];
  readonly jobs: Record<string, any>[];
}

/** Every task and job item, read from DynamoDB Local directly (no fault injection in this process). */
async function scanTable(runtime: { info: RuntimeInfo }): Promise<TableView> {
  const client = new DynamoDBClient({
    endpoint: runtime.info.dynamoEndpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  const tasks: Record<string, any>[] = [];
  const jobs: Record<string, any>[] = [];
  try {
    let startKey: Record<string, any> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: runtime.info.tableName,
          FilterExpression: "entity IN (:task, :job)",
          ExpressionAttributeValues: { ":task": { S: "task" }, ":job": { S: "job" } },
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const raw of page.Items ?? []) {
        const item = unmarshall(raw);
        (item.entity === "task" ? tasks : jobs).push(item);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  } finally {
    client.destroy();
  }
  return { tasks, jobs };
}

/** Receives every message of every DLQ (nothing else consumes them now) and returns their task ids. */
async function drainDeadLetters(info: RuntimeInfo): Promise<{ queue: string; taskId: string | undefined }[]> {
  const sqs = new SQSClient({
    endpoint: info.sqsEndpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    useQueueUrlAsEndpoint: false,
  });
  const found: { queue: string; taskId: string | undefined }[] = [];
  try {
    for (const [queue, url] of Object.entries(info.dlqUrls)) {
      for (;;) {
        const page = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            VisibilityTimeout: 600,
          }),
        );
        const messages = page.Messages ?? [];
        if (messages.length === 0) break;
        for (const message of messages) {
          let taskId: string | undefined;
          try {
            taskId = JSON.parse(message.Body ?? "").taskId;
          } catch {
            taskId = undefined;
          }
          found.push({ queue, taskId });
        }
        // Received for good: the listing is over and the queues die with the emulator.
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: url,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" })),
          }),
        );
      }
    }
  } finally {
    sqs.destroy();
  }
  return found;
}

/** How long the statistics get to agree with the listing once everything finished. */
const STATS_SETTLE_MS = 30_000;
/** The emulated stream poller's batching window (local/emulated.ts). */
const STREAM_WINDOW_MS = 1_000;

async function checkInvariants(run: {
  table: TableView;
  accepted: readonly { id: string; task: PlainTask }[];
  acceptedJobs: readonly { id: string; unit: JobUnit; taskIds: string[] }[];
  deadLetters: readonly { queue: string; taskId: string | undefined }[];
  call: (method: string, path: string) => Promise<{ status: number; body: any }>;
  violations: string[];
  notes: string[];
}): Promise<void> {
  const { table, violations, notes } = run;
  const byId = new Map(table.tasks.map((t) => [String(t.taskId), t]));
  if (byId.size !== table.tasks.length) violations.push("the table holds two items for one task id");

  // 1. Every accepted task is in the table, in exactly one terminal state with exactly one outcome.
  for (const id of [...run.accepted.map((a) => a.id), ...run.acceptedJobs.flatMap((j) => j.taskIds)]) {
    if (!byId.has(id)) violations.push(`accepted task ${id} is not in the table`);
  }
  for (const task of table.tasks) {
    const id = task.taskId;
    if (!TERMINAL_STATUSES.includes(task.status)) {
      violations.push(`task ${id} ended ${task.status}, not in a terminal state`);
      continue;
    }
    // A completed task keeps the error of its last failed attempt, if it was retried: the result decides.
    const succeeded = task.result?.success === true;
    if (task.status === "completed" && (!succeeded || !("output" in task.result))) {
      violations.push(
        `task ${id} is completed without exactly one successful result: ${JSON.stringify(task)}`,
      );
    }
    if (task.status === "failed" && (succeeded || task.error?.code === undefined)) {
      violations.push(`task ${id} is failed without exactly one recorded error: ${JSON.stringify(task)}`);
    }
    if ((task.status === "canceled" || task.status === "rejected") && succeeded) {
      violations.push(`task ${id} is ${task.status} but carries a successful result`);
    }
  }

  // 2. What the workload decides: right outputs, and outcomes the handlers force.
  for (const { id, task } of run.accepted) {
    const stored = byId.get(id);
    if (stored === undefined) continue;
    const input = task.body.input as Record<string, any>;
    if (stored.status === "completed") {
      const output = stored.result?.output;
      const expected = task.kind === "analyze" ? analyzeText(String(input.text)) : undefined;
      if (
        task.kind === "analyze"
          ? JSON.stringify(output) !== JSON.stringify(expected)
          : output?.value !== input.value
      ) {
        violations.push(`task ${id} (${task.kind}) completed with a wrong output: ${JSON.stringify(output)}`);
      }
      if (task.kind === "echo-fail" || task.kind === "echo-timeout") {
        violations.push(`task ${id} (${task.kind}) completed, but its handler cannot succeed`);
      }
      if (task.kind === "echo-retry" && Number(output?.attempt) <= Number(input.failAttempts)) {
        violations.push(`task ${id} completed on attempt ${output?.attempt}, which its handler fails`);
      }
    } else if (
      task.kind === "echo-timeout" &&
      stored.status === "failed" &&
      stored.error?.code !== "timeout"
    ) {
      notes.push(`task ${id} (echo-timeout) failed with ${stored.error?.code}, not timeout`);
    } else if (task.kind !== "echo-fail" && task.kind !== "echo-timeout") {
      notes.push(`task ${id} (${task.kind}) ended ${stored.status}: ${JSON.stringify(stored.error)}`);
    }
  }

  // 3. No job is left working, in the table or the API; the workload decides some jobs' outcome.
  for (const job of table.jobs) {
    if (job.status === "working") violations.push(`job ${job.jobId} is still working in the table`);
  }
  for (const { id, unit } of run.acceptedJobs) {
    const response = await run.call("GET", `/jobs/${id}`);
    if (response.status !== 200) {
      violations.push(`GET /jobs/${id} answered ${response.status}`);
      continue;
    }
    const job = response.body;
    if (job.status === "working") violations.push(`job ${id} (${unit.kind}) is still working`);
    else if (unit.expect !== undefined && job.status !== unit.expect) {
      const tasks = job.taskIds.map((t: string) => byId.get(t)?.status);
      const forced = unit.expect === "failed" || tasks.every((s: string) => s === "completed");
      (forced ? violations : notes).push(
        `job ${id} (${unit.kind}) ended ${job.status}, expected ${unit.expect}; its tasks: ${tasks.join(",")}`,
      );
    }
  }

  // 4. The listing lists every task once, and the statistics agree with it.
  const listed: Record<string, any>[] = [];
  let cursor: string | undefined;
  do {
    const page = await run.call(
      "GET",
      `/tasks?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    if (page.status !== 200) {
      violations.push(`GET /tasks answered ${page.status}: ${JSON.stringify(page.body)}`);
      break;
    }
    listed.push(...page.body.items);
    cursor = page.body.nextCursor;
  } while (cursor);
  const listedIds = new Set(listed.map((t) => String(t.taskId)));
  if (listedIds.size !== listed.length)
    violations.push(`the listing repeats ${listed.length - listedIds.size} tasks`);
  for (const id of byId.keys())
    if (!listedIds.has(id)) violations.push(`task ${id} is missing from the listing`);
  for (const id of listedIds)
    if (!byId.has(id)) violations.push(`the listing shows task ${id}, not in the table`);
  const listedBy = countBy(listed.map((t) => String(t.status)));
  const expected: Record<string, number> = {
    totalTasksSubmitted: listed.length,
    tasksCompleted: listedBy.completed ?? 0,
    tasksFailed: listedBy.failed ?? 0,
    tasksCanceled: listedBy.canceled ?? 0,
    tasksRejected: listedBy.rejected ?? 0,
    tasksPending: listedBy.submitted ?? 0,
    tasksInProgress: listedBy.working ?? 0,
  };
  // The statistics follow the table's stream (ADR 0007): they lag the last writes by the stream's
  // batching window and may be read again from the start after the restart, so they get a bounded
  // time to agree; once they do they must stay so (a change counted twice would show next read).
  const disagreements = (stats: any) =>
    Object.entries(expected).flatMap(([name, value]) =>
      stats?.[name] === value ? [] : [`GET /stats ${name} is ${stats?.[name]}, the listing counts ${value}`],
    );
  let mismatched = disagreements((await run.call("GET", "/stats")).body);
  for (const settleBy = Date.now() + STATS_SETTLE_MS; mismatched.length > 0 && Date.now() < settleBy; ) {
    await sleep(500);
    mismatched = disagreements((await run.call("GET", "/stats")).body);
  }
  if (mismatched.length === 0) {
    await sleep(STREAM_WINDOW_MS * 2);
    mismatched = disagreements((await run.call("GET", "/stats")).body);
  }
  violations.push(...mismatched);

  // 5. A message in a dead-letter queue belongs to a task that failed with a recorded error.
  for (const letter of run.deadLetters) {
    const task = letter.taskId === undefined ? undefined : byId.get(letter.taskId);
    if (task === undefined || task.status !== "failed" || task.error?.code === undefined) {
      violations.push(
        `dead letter in ${letter.queue} for task ${letter.taskId} without a recorded failure (${task?.status ?? "no task"})`,
      );
    }
  }
}

function readFaults(file: string): { byKind: Record<string, Record<string, number>>; total: number } {
  const byKind: Record<string, Record<string, number>> = {};
  let total = 0;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const [kind, service] = line.split(" ");
    if (!kind || !service) continue;
    byKind[kind] ??= {};
    byKind[kind][service] = (byKind[kind][service] ?? 0) + 1;
    total++;
  }
  return { byKind, total };
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

async function inParallel<T>(
  items: readonly T[],
  width: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** Batches and jobs spread evenly over the submission, so both run before and after the restart. */
function interleave<A, B>(as: readonly A[], bs: readonly B[]): (A | B)[] {
  const out: (A | B)[] = [];
  const total = as.length + bs.length;
  let a = 0;
  let b = 0;
  for (let i = 0; i < total; i++) {
    const wantA =
      b >= bs.length || (a < as.length && a / Math.max(as.length, 1) <= b / Math.max(bs.length, 1));
    if (wantA) out.push(as[a++] as A);
    else out.push(bs[b++] as B);
  }
  return out;
}

/** The report, as `npm run chaos` prints it. */
export function formatReport(report: ChaosReport): string {
  const lines = [
    "chaos run report",
    `  seed                 ${report.seed}`,
    `  tasks accepted       ${report.tasks.accepted} (in the table at the end: ${report.tasks.inTable})`,
    `    plain by kind      ${format(report.tasks.byKind)}`,
    `    by final status    ${format(report.tasks.byStatus)}`,
    `  jobs accepted        ${report.jobs.accepted}: ${format(report.jobs.byKind)}`,
    `    by final status    ${format(report.jobs.byStatus)}`,
    `  faults injected      ${report.faultsTotal}`,
    ...Object.entries(report.faults).map(([kind, services]) => `    ${kind.padEnd(19)}${format(services)}`),
    `  worker kills (-9)    ${report.workerKills}`,
    `  runtime restarts     ${report.runtimeRestarts} (kill -9, restarted on the same data)`,
    `  API 5xx, retried     ${report.apiRetries}`,
    `  dead letters         ${report.deadLetters} (received from the DLQs after the restart)`,
    `  timed-out tasks      ${report.timeouts}`,
    `  notes                ${report.notes.length}`,
    ...report.notes.slice(0, 20).map((n) => `    ${n}`),
    `  invariant violations ${report.violations.length}`,
    ...report.violations.slice(0, 50).map((v) => `    ${v}`),
    `  time                 ${(report.elapsedMs / 1000).toFixed(1)} s`,
  ];
  return lines.join("\n");
}

function format(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}
