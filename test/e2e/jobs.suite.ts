import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RuntimeMode, startLocalRuntime } from "#local/runtime";
import { demoWorkers } from "#shared/agents/demo";
import type { PlatformConfig } from "#shared/config/platform";
import { defineReducer } from "#shared/core/jobs/reducers";
import { defineWorker } from "#shared/worker/define-worker";
import { apiClient, countedOnce } from "./api-client.ts";
import { e2eConfig } from "./task-api.suite.ts";

/** A worker whose outputs are lists, for the `concat` reducer (no demo agent returns one). */
export const splitterWorker = defineWorker({
  agentType: "splitter",
  capabilities: ["text-splitting"],
  maxConcurrentTasks: 4,
  handlers: { split_words: (input) => String((input as { text: unknown }).text).split(/\s+/) },
});

/** The e2e configuration plus the splitter's capability. */
export const jobsE2eConfig: PlatformConfig = {
  ...e2eConfig,
  capabilities: [
    ...e2eConfig.capabilities,
    { name: "text-splitting", workerTimeoutSeconds: 30, maxConcurrency: 2 },
  ],
  taskTypes: { ...e2eConfig.taskTypes, split_words: "text-splitting" },
};

export const jobsE2eWorkers = [...demoWorkers, splitterWorker];

/** A custom reducer registered in code: the sum of the echo outputs' values. */
export const sumReducer = defineReducer("sum", (outputs) =>
  outputs.reduce<number>((total, output) => total + Number((output as { value: unknown }).value), 0),
);

export interface RunningJobsSystem {
  readonly url: string;
  stop(): Promise<void>;
  /**
   * Until `restore`, fails every batch of the task stream once after it was processed in full, as a
   * consumer that dies having committed its work: the change feed or the stream poller delivers it
   * again from its first change (F12). `failed()` says how many batches were failed.
   */
  failStreamBatchesAfterCommit(): { failed(): number; restore(): void };
}

const collect = { policy: "all", reducer: "collect" } as const;
const echo = (value: unknown, extra: Record<string, unknown> = {}) => ({
  taskType: "echo",
  input: { value, ...extra },
  maxAttempts: 1,
});
const slow = (value: unknown) => echo(value, { delayMs: 20_000 });

export interface JobsSuiteOptions {
  /**
   * Tasks of the scale job. A runtime whose every task is several emulator round trips runs a smaller
   * one, so the suite stays within the test budget; the embedded one runs the full size.
   * @default 500
   */
  readonly bigJobSize?: number;
}

/**
 * Jobs end to end: the `/jobs` API over real HTTP with the workers and the aggregator behind it.
 * Each runtime runs this same suite.
 */
export function describeJobsApi(
  name: string,
  start: () => Promise<RunningJobsSystem>,
  options: JobsSuiteOptions = {},
): void {
  const bigJobSize = options.bigJobSize ?? 500;
  describe(`jobs API end to end (${name})`, () => {
    let system: RunningJobsSystem;
    let api: ReturnType<typeof apiClient>;

    beforeAll(async () => {
      system = await start();
      api = apiClient(system.url);
    }, 120_000);

    afterAll(async () => {
      await system?.stop();
    }, 60_000);

    const submit = async (body: unknown): Promise<{ jobId: string; taskIds: string[] }> => {
      const response = await api.post("/jobs", body);
      expect(response.status, JSON.stringify(response.body)).toBe(202);
      return response.body;
    };

    /** Polls a job until `done` holds. */
    const waitForJob = async (
      jobId: string,
      done: (job: any) => boolean,
      timeoutMs = 15_000,
    ): Promise<any> => {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await api.get(`/jobs/${jobId}`)).body;
        if (done(last)) return last;
        await sleep(25);
      }
      throw new Error(`job ${jobId} did not get there within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    };
    const ended = (job: any) => job?.status !== "working";
    /** Ended, and every task's outcome is in (canceled stragglers included). */
    const settled = (job: any) => ended(job) && job.completed + job.failed + job.canceled === job.total;

    const taskStatuses = async (taskIds: readonly string[]) =>
      Promise.all(taskIds.map(async (id) => (await api.get(`/tasks/${id}`)).body.status));

    describe("fan-out / fan-in", () => {
      it("all + collect returns the outputs in submission order, not completion order", async () => {
        const { jobId, taskIds } = await submit({
          tasks: [echo("a", { delayMs: 300 }), echo("b"), echo("c", { delayMs: 100 })],
          aggregation: collect,
        });

        const job = await waitForJob(jobId, ended);

        expect(taskIds).toHaveLength(3);
        expect(job).toMatchObject({
          jobId,
          status: "completed",
          total: 3,
          completed: 3,
          failed: 0,
          canceled: 0,
          taskIds,
          result: {
            output: [
              { value: "a", attempt: 1 },
              { value: "b", attempt: 1 },
              { value: "c", attempt: 1 },
            ],
            outputTaskIds: taskIds,
            failedTasks: [],
          },
        });
        expect(Date.parse(job.completedAt)).toBeGreaterThanOrEqual(Date.parse(job.createdAt));
      });

      it("merge merges the outputs in submission order: the last submitted wins, not the last finished", async () => {
        const { jobId } = await submit({
          tasks: [echo("first"), echo("finishes-last", { delayMs: 300 }), echo("submitted-last")],
          aggregation: { policy: "all", reducer: "merge" },
        });

        const job = await waitForJob(jobId, ended);

        expect(job.result.output).toEqual({ value: "submitted-last", attempt: 1 });
      });

      it("concat concatenates list outputs in submission order", async () => {
        const { jobId } = await submit({
          tasks: [
            { taskType: "split_words", input: { text: "one two" } },
            { taskType: "split_words", input: { text: "three" } },
            { taskType: "split_words", input: { text: "four five six" } },
          ],
          aggregation: { policy: "all", reducer: "concat" },
        });

        const job = await waitForJob(jobId, ended);

        expect(job).toMatchObject({
          status: "completed",
          result: { output: ["one", "two", "three", "four", "five", "six"] },
        });
      });

      it("vote returns the most frequent output", async () => {
        const { jobId } = await submit({
          tasks: [echo("no"), echo("yes"), echo("yes"), echo("maybe")],
          aggregation: { policy: "all", reducer: "vote" },
        });

        const job = await waitForJob(jobId, ended);

        expect(job.result.output).toEqual({ value: "yes", attempt: 1 });
      });

      it("runs a custom reducer registered in code", async () => {
        const { jobId } = await submit({
          tasks: [echo(1), echo(2), echo(39)],
          aggregation: { policy: "all", reducer: "sum" },
        });

        const job = await waitForJob(jobId, ended);

        expect(job).toMatchObject({ status: "completed", result: { output: 42 } });
      });

      it("quorum completes once N succeeded and cancels the rest", async () => {
        const { jobId, taskIds } = await submit({
          tasks: [slow("s1"), echo("f1"), slow("s2"), echo("f2")],
          aggregation: { policy: "quorum", quorum: 2, reducer: "collect" },
        });

        const job = await waitForJob(jobId, settled);

        expect(job).toMatchObject({
          status: "completed",
          completed: 2,
          canceled: 2,
          result: {
            output: [
              { value: "f1", attempt: 1 },
              { value: "f2", attempt: 1 },
            ],
          },
        });
        expect(await taskStatuses(taskIds)).toEqual(["canceled", "completed", "canceled", "completed"]);
      });

      it("first completes on the first success and cancels the rest", async () => {
        const { jobId, taskIds } = await submit({
          tasks: [slow("slow-1"), echo("fast"), slow("slow-2")],
          aggregation: { policy: "first", reducer: "collect" },
        });

        const job = await waitForJob(jobId, settled);

        expect(job).toMatchObject({
          status: "completed",
          completed: 1,
          canceled: 2,
          result: { output: [{ value: "fast" }] },
        });
        expect(await taskStatuses(taskIds)).toEqual(["canceled", "completed", "canceled"]);
      });

      it("deadline aggregates what finished by the deadline and cancels the rest", async () => {
        const { jobId, taskIds } = await submit({
          tasks: [echo("in-time-1"), slow("late"), echo("in-time-2")],
          aggregation: { policy: "deadline", deadlineSeconds: 1, reducer: "collect" },
        });

        const working = (await api.get(`/jobs/${jobId}`)).body;
        const job = await waitForJob(jobId, settled);

        expect(working.status).toBe("working");
        expect(job).toMatchObject({
          status: "completed",
          completed: 2,
          canceled: 1,
          result: { output: [{ value: "in-time-1" }, { value: "in-time-2" }] },
        });
        expect(Date.parse(job.completedAt) - Date.parse(job.createdAt)).toBeGreaterThanOrEqual(1_000);
        expect(await taskStatuses(taskIds)).toEqual(["completed", "canceled", "completed"]);
      });
    });

    describe("partial failure", () => {
      it("fail-fast fails the job on the first failure and cancels the rest", async () => {
        const { jobId, taskIds } = await submit({
          tasks: [slow("s1"), echo("boom", { failAttempts: 1 }), slow("s2")],
          aggregation: collect,
          failurePolicy: { mode: "fail-fast" },
        });

        const job = await waitForJob(jobId, settled);

        expect(job).toMatchObject({
          status: "failed",
          failed: 1,
          canceled: 2,
          error: { code: "task_failed" },
        });
        expect(job.result).toBeUndefined();
        expect(await taskStatuses(taskIds)).toEqual(["canceled", "failed", "canceled"]);
      });

      it("tolerate completes with the successful outputs and names the failed task", async () => {
        const { jobId, taskIds } = await submit({
          tasks: [echo("ok-1"), echo("boom", { failAttempts: 1 }), echo("ok-2")],
          aggregation: collect,
          failurePolicy: { mode: "tolerate", maxFailures: 1 },
        });

        const job = await waitForJob(jobId, ended);

        expect(job).toMatchObject({
          status: "completed",
          completed: 2,
          failed: 1,
          result: {
            output: [{ value: "ok-1" }, { value: "ok-2" }],
            outputTaskIds: [taskIds[0], taskIds[2]],
            failedTasks: [
              { taskId: taskIds[1], index: 1, status: "failed", error: { code: "handler_error" } },
            ],
          },
        });
      });

      it("tolerate fails the job once failures exceed maxFailures", async () => {
        const { jobId } = await submit({
          tasks: [echo("boom-1", { failAttempts: 1 }), echo("boom-2", { failAttempts: 1 }), echo("ok")],
          aggregation: collect,
          failurePolicy: { mode: "tolerate", maxFailures: 1 },
        });

        const job = await waitForJob(jobId, ended);

        expect(job).toMatchObject({ status: "failed", error: { code: "too_many_failures" } });
      });
    });

    describe("cancel", () => {
      it("cancels a job and its remaining tasks; a second cancel is 409", async () => {
        const { jobId, taskIds } = await submit({ tasks: [slow(1), slow(2)], aggregation: collect });

        const canceled = await api.post(`/jobs/${jobId}/cancel`);
        const again = await api.post(`/jobs/${jobId}/cancel`);
        const job = await waitForJob(jobId, settled);

        expect(canceled.status).toBe(200);
        expect(canceled.body).toMatchObject({ jobId, status: "canceled" });
        expect(again.status).toBe(409);
        expect(again.body.error.code).toBe("already_terminal");
        expect(job).toMatchObject({ status: "canceled", canceled: 2 });
        expect(await taskStatuses(taskIds)).toEqual(["canceled", "canceled"]);
      });
    });

    describe("pipelines", () => {
      it("runs analyse → summarise → aggregate as a 3-step pipeline without a client round trip", async () => {
        const documents = [
          "Agents talk. Workers work. Supervisors watch.",
          "Queues deliver at least once. Stores keep one truth.",
          "Jobs fan out. Jobs fan in.",
        ];
        const { jobId, taskIds } = await submit({
          steps: [
            {
              tasks: documents.map((text) => ({ taskType: "analyze_text", input: { text } })),
              aggregation: collect,
            },
            {
              tasks: {
                fromPrevious: {
                  taskType: "summarize",
                  forEach: "tasks",
                  input: { text: { $from: "item.input.text" }, maxSentences: 1 },
                },
              },
              aggregation: collect,
            },
            {
              tasks: {
                fromPrevious: { taskType: "echo", input: { value: { summaries: { $from: "result" } } } },
              },
              aggregation: { policy: "all", reducer: "merge" },
            },
          ],
        });

        const job = await waitForJob(jobId, ended);

        expect(job).toMatchObject({
          status: "completed",
          currentStep: 2,
          total: 7,
          completed: 7,
          result: {
            output: {
              value: {
                summaries: [
                  { summary: "Agents talk." },
                  { summary: "Queues deliver at least once." },
                  { summary: "Jobs fan out." },
                ],
              },
              attempt: 1,
            },
          },
        });
        expect(job.steps.map((s: any) => [s.status, s.total, s.taskIds.length])).toEqual([
          ["completed", 3, 3],
          ["completed", 3, 3],
          ["completed", 1, 1],
        ]);
        expect(job.taskIds.slice(0, 3)).toEqual(taskIds);
        const summarize = (await api.get(`/tasks/${job.steps[1].taskIds[0]}`)).body;
        expect(summarize).toMatchObject({
          jobId,
          taskType: "summarize",
          input: { text: documents[0], maxSentences: 1 },
        });
      });
    });

    describe("scale and statistics", () => {
      it(`completes a ${bigJobSize}-task job with exact counts, and the statistics move with it`, async () => {
        const tasksBefore = await api.settledStats();
        const jobsBefore = (await api.get("/stats/jobs")).body.jobs;
        const { jobId, taskIds } = await submit({
          tasks: Array.from({ length: bigJobSize }, (_, i) => ({ taskType: "echo", input: { value: i } })),
          aggregation: collect,
        });

        // A throughput test in disguise on the emulators: ~3 s alone, ~10 s on a doubly loaded machine.
        const job = await waitForJob(jobId, ended, 40_000);
        // Statistics follow the table's change stream: the job can end before its last batch is counted.
        const tasksAfter = await api.waitForStats(
          (stats) =>
            stats.totalTasksSubmitted - tasksBefore.totalTasksSubmitted >= bigJobSize && countedOnce(stats),
        );
        const jobsAfter = (await api.get("/stats/jobs")).body.jobs;

        expect(taskIds).toHaveLength(bigJobSize);
        expect(new Set(taskIds).size).toBe(bigJobSize);
        expect(job).toMatchObject({
          status: "completed",
          total: bigJobSize,
          completed: bigJobSize,
          failed: 0,
          canceled: 0,
        });
        expect(job.result.output.map((o: any) => o.value)).toEqual(
          Array.from({ length: bigJobSize }, (_, i) => i),
        );
        expect(tasksAfter.totalTasksSubmitted - tasksBefore.totalTasksSubmitted).toBe(bigJobSize);
        expect(tasksAfter.tasksByType.echo - (tasksBefore.tasksByType.echo ?? 0)).toBe(bigJobSize);
        expect(jobsAfter.submitted - jobsBefore.submitted).toBe(1);
        expect(jobsAfter.completed - jobsBefore.completed).toBe(1);
        expect(jobsAfter.running).toBe(
          jobsAfter.submitted - jobsAfter.completed - jobsAfter.failed - jobsAfter.canceled,
        );
        expect(Object.keys(tasksAfter)).toEqual(Object.keys(tasksBefore));
      }, 60_000);

      it("F12: stream batches delivered again after they were committed leave jobs and statistics exact", async () => {
        const before = await api.settledStats();
        const fault = system.failStreamBatchesAfterCommit();
        let job: any;
        try {
          const { jobId } = await submit({
            tasks: [echo(1), echo(2, { failAttempts: 1 }), echo(3)],
            aggregation: collect,
            failurePolicy: { mode: "tolerate" },
          });
          job = await waitForJob(jobId, settled);
        } finally {
          fault.restore();
        }
        const after = await api.settledStats();

        // The fault happened: batches were processed in full, then delivered again (a redelivery gathers
        // what came since, so one failed batch may carry the rest of the job).
        expect(fault.failed()).toBeGreaterThanOrEqual(1);
        expect(job).toMatchObject({
          status: "completed",
          total: 3,
          completed: 2,
          failed: 1,
          result: { output: [{ value: 1 }, { value: 3 }] },
        });
        expect(after.totalTasksSubmitted - before.totalTasksSubmitted).toBe(3);
        expect(after.tasksCompleted - before.tasksCompleted).toBe(2);
        expect(after.tasksFailed - before.tasksFailed).toBe(1);
        // Statistics equal the listing's counts (every page), once the stream has caught up.
        await expect
          .poll(async () => statisticsAgainstListing(api), { timeout: 15_000 })
          .toEqual({ agree: true });
      });
    });

    describe("validation", () => {
      const invalid: [string, unknown, string][] = [
        ["no aggregation", { tasks: [echo(1)] }, "aggregation"],
        ["no tasks", { tasks: [], aggregation: collect }, "tasks"],
        [
          "an unknown policy",
          { tasks: [echo(1)], aggregation: { policy: "most", reducer: "collect" } },
          "aggregation.policy",
        ],
        [
          "quorum without a number",
          { tasks: [echo(1)], aggregation: { policy: "quorum", reducer: "collect" } },
          "aggregation.quorum",
        ],
        [
          "a quorum larger than the tasks",
          { tasks: [echo(1)], aggregation: { policy: "quorum", quorum: 2, reducer: "collect" } },
          "aggregation.quorum",
        ],
        [
          "deadline without seconds",
          { tasks: [echo(1)], aggregation: { policy: "deadline", reducer: "collect" } },
          "aggregation.deadlineSeconds",
        ],
        [
          "an unknown reducer",
          { tasks: [echo(1)], aggregation: { policy: "all", reducer: "product" } },
          "aggregation.reducer",
        ],
        [
          "maxFailures with fail-fast",
          { tasks: [echo(1)], aggregation: collect, failurePolicy: { mode: "fail-fast", maxFailures: 2 } },
          "failurePolicy.maxFailures",
        ],
        [
          "a task idempotency key",
          { tasks: [{ ...echo(1), idempotencyKey: "k" }], aggregation: collect },
          "tasks.0.idempotencyKey",
        ],
        ["an unknown field", { tasks: [echo(1)], aggregation: collect, priority: 1 }, "priority"],
        [
          "1001 tasks",
          {
            tasks: Array.from({ length: 1001 }, () => ({ taskType: "echo", input: 1 })),
            aggregation: collect,
          },
          "tasks",
        ],
        [
          "a first step built from a previous one",
          { steps: [{ tasks: { fromPrevious: { taskType: "echo" } }, aggregation: collect }] },
          "steps.0.tasks",
        ],
        [
          "a malformed template reference",
          {
            steps: [
              { tasks: [echo(1)], aggregation: collect },
              {
                tasks: { fromPrevious: { taskType: "echo", input: { $from: "results" } } },
                aggregation: collect,
              },
            ],
          },
          "steps.1.tasks.fromPrevious.input.$from",
        ],
      ];

      it.each(invalid)("answers 400 with details for %s", async (_name, body, path) => {
        const response = await api.post("/jobs", body);

        expect(response.status, JSON.stringify(response.body)).toBe(400);
        expect(response.body.error.code).toBe("validation_error");
        expect(response.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
      });

      it("answers 400 invalid_json for a body that is not JSON", async () => {
        const response = await api.post("/jobs", "{not json");

        expect(response.status).toBe(400);
        expect(response.body.error.code).toBe("invalid_json");
      });

      it("answers 404 for an unknown job, on read and on cancel", async () => {
        const read = await api.get("/jobs/no-such-job");
        const cancel = await api.post("/jobs/no-such-job/cancel");

        expect([read.status, cancel.status]).toEqual([404, 404]);
        expect(read.body.error.code).toBe("not_found");
      });
    });
  });
}

/** Whether `GET /stats` counts exactly what the listing (`GET /tasks`, every page) holds, by status. */
async function statisticsAgainstListing(api: ReturnType<typeof apiClient>): Promise<unknown> {
  const listed: Record<string, number> = {};
  let total = 0;
  let cursor: string | undefined;
  do {
    const page = (await api.get(`/tasks?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`))
      .body;
    for (const task of page.items) {
      listed[task.status] = (listed[task.status] ?? 0) + 1;
      total++;
    }
    cursor = page.nextCursor;
  } while (cursor);
  const stats = (await api.get("/stats")).body;
  const counted = {
    total: stats.totalTasksSubmitted,
    completed: stats.tasksCompleted,
    failed: stats.tasksFailed,
    canceled: stats.tasksCanceled,
    rejected: stats.tasksRejected,
    open: stats.tasksPending + stats.tasksInProgress,
  };
  const expected = {
    total,
    completed: listed.completed ?? 0,
    failed: listed.failed ?? 0,
    canceled: listed.canceled ?? 0,
    rejected: listed.rejected ?? 0,
    open: (listed.submitted ?? 0) + (listed.working ?? 0) + (listed["input-required"] ?? 0),
  };
  return JSON.stringify(counted) === JSON.stringify(expected) ? { agree: true } : { counted, expected };
}

/**
 * Starts a local runtime for the jobs suite (embedded or emulated: the suite reaches the runtime's
 * task stream to fail batches after they were committed), with a quick timer so deadlines are met within a few
 * hundred milliseconds.
 */
export async function startJobsRuntime(mode: RuntimeMode): Promise<RunningJobsSystem> {
  const runtime = await startLocalRuntime({
    mode,
    port: 0,
    logLevel: "silent",
    config: jobsE2eConfig,
    workers: jobsE2eWorkers,
    reducers: [sumReducer],
    sweepIntervalMs: 100,
    cancelCheckIntervalMs: 50,
  });
  try {
    await warmUp(runtime.url);
  } catch (error) {
    await runtime.stop();
    throw error;
  }
  return {
    url: runtime.url,
    stop: () => runtime.stop(),
    failStreamBatchesAfterCommit() {
      const stream = runtime.taskStream;
      const process = stream.process;
      // A batch is known by its first change: a redelivery starts there again (and may be longer).
      const failedFirst = new Set<string>();
      stream.process = async (changes: Parameters<typeof process>[0]) => {
        const report = await process.call(stream, changes);
        const first = changes[0]?.id;
        if (first === undefined || failedFirst.has(first) || report.failedAt !== undefined) return report;
        failedFirst.add(first);
        throw new Error("injected: the stream consumer died after committing its batch");
      };
      return {
        failed: () => failedFirst.size,
        restore: () => {
          stream.process = process;
        },
      };
    },
  };
}

/**
 * Runs one small job through the whole path before the suite. On the emulated runtime the first job
 * pays for a fresh DynamoDB Local JVM, a new table and cold worker functions — seconds on a loaded
 * machine — which is not what the suite's first test is about.
 */
async function warmUp(url: string): Promise<void> {
  const api = apiClient(url);
  const submitted = await api.post("/jobs", {
    tasks: [echo("warm-up"), echo("warm-up")],
    aggregation: collect,
  });
  if (submitted.status !== 202) throw new Error(`warm-up job refused: ${JSON.stringify(submitted.body)}`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const job = (await api.get(`/jobs/${submitted.body.jobId}`)).body;
    if (job.status === "completed") return;
    if (job.status !== "working") throw new Error(`warm-up job ended ${job.status}: ${JSON.stringify(job)}`);
    await sleep(50);
  }
  throw new Error("the warm-up job did not complete within 60 s");
}
