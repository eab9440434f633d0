import { randomUUID } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import type {
  JobRecord,
  JobResult,
  JobStepPlan,
  JobStepState,
  StepCounts,
  TaskOutcome,
} from "#shared/domain/job";
import type { JobStore } from "#shared/ports/job-store";

/** Reads what a store persisted, around the adapter. */
export interface JobStoreInspector {
  /** The outcome records stored for a job, in no particular order. */
  outcomes(jobId: string): Promise<readonly Pick<TaskOutcome, "taskId" | "status" | "taskVersion">[]>;
  /** A step's counts as stored (undefined when the job is not stored). */
  counts(jobId: string, step: number): Promise<StepCounts | undefined>;
}

export interface JobStoreContractSubject<S extends JobStore> {
  /** A fresh, empty store. */
  create(): Promise<S> | S;
  inspect(store: S): JobStoreInspector;
}

const BASE = Date.parse("2030-01-01T00:00:00.000Z");
const at = (seconds: number) => new Date(BASE + seconds * 1000).toISOString();
const ZERO = { completed: 0, failed: 0, canceled: 0 };

function step(overrides: Partial<JobStepState> = {}): JobStepState {
  return {
    status: "working",
    total: 3,
    aggregation: { policy: "all", reducer: "collect" },
    failurePolicy: { mode: "tolerate" },
    startedAt: at(0),
    tasksSubmitted: false,
    counts: ZERO,
    ...overrides,
  };
}

function newJob(overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    jobId: `job-${randomUUID()}`,
    kind: "tasks",
    status: "working",
    version: 1,
    createdAt: at(0),
    updatedAt: at(0),
    currentStep: 0,
    stepCount: 1,
    steps: [step()],
    dueAt: at(300),
    eventPublished: false,
    ...overrides,
  };
}

function outcome(taskId: string, overrides: Partial<TaskOutcome> = {}): TaskOutcome {
  return {
    taskId,
    step: 0,
    index: 0,
    status: "completed",
    taskVersion: 3,
    output: { words: 4 },
    recordedAt: at(1),
    ...overrides,
  };
}

const result: JobResult = {
  output: {
    nested: {
      list: [1, "two", null, { deep: true }],
      empty: {},
      emptyList: [],
      zero: 0,
      off: false,
      blank: "",
    },
  },
  outputTaskIds: ["t1", "t2"],
  failedTasks: [
    { taskId: "t3", index: 2, status: "failed", error: { code: "handler_error", message: "boom" } },
  ],
};

/**
 * The JobStore contract: every adapter keeps each task's outcome once per job (first write wins),
 * moves counts only with that write, guards structural writes by version, and keeps statistics
 * exact under duplicated and reordered outcomes (F12, docs/reliability.md).
 */
export function describeJobStoreContract<S extends JobStore>(
  name: string,
  subject: JobStoreContractSubject<S>,
): void {
  describe(`JobStore contract: ${name}`, () => {
    let store: S;
    let inspect: JobStoreInspector;

    beforeEach(async () => {
      store = await subject.create();
      inspect = subject.inspect(store);
    });

    describe("create and read", () => {
      it("stores a job with zero counts, its plan, and the submission counter", async () => {
        const job = newJob({ kind: "pipeline", stepCount: 2 });
        const plan: JobStepPlan[] = [
          {
            tasks: {
              fromPrevious: { taskType: "summarize", forEach: "result", input: { text: { $from: "item" } } },
            },
            aggregation: { policy: "quorum", quorum: 2, reducer: "vote" },
            failurePolicy: { mode: "tolerate", maxFailures: 1 },
          },
        ];

        await store.create({ job, plan, counters: { "jobs:submitted": 1 } });

        expect(await store.get(job.jobId)).toEqual(job);
        expect(await store.readPlan(job.jobId)).toEqual(plan);
        expect(await store.readCounters()).toEqual({ "jobs:submitted": 1 });
        expect(await inspect.counts(job.jobId, 0)).toEqual(ZERO);
      });

      it("refuses a second job with the same id and counts it once", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: { "jobs:submitted": 1 } });

        await expect(store.create({ job, plan: [], counters: { "jobs:submitted": 1 } })).rejects.toThrow();

        expect(await store.readCounters()).toEqual({ "jobs:submitted": 1 });
      });

      it("answers undefined and empty for an unknown job", async () => {
        expect(await store.get("job-unknown")).toBeUndefined();
        expect(await store.readPlan("job-unknown")).toEqual([]);
        expect(await store.readStepResult("job-unknown", 0)).toBeUndefined();
        expect(await store.listOutcomes("job-unknown", 0)).toEqual([]);
      });
    });

    describe("recordTaskOutcome (first write wins)", () => {
      it("records a new outcome once and moves its step's count by one", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: {} });

        const first = await store.recordTaskOutcome(job.jobId, outcome("t1"));

        expect(first.recorded).toBe(true);
        expect(first.job?.steps[0]?.counts).toEqual({ completed: 1, failed: 0, canceled: 0 });
        expect(await inspect.counts(job.jobId, 0)).toEqual({ completed: 1, failed: 0, canceled: 0 });
        expect(await inspect.outcomes(job.jobId)).toEqual([
          { taskId: "t1", status: "completed", taskVersion: 3 },
        ]);
      });

      it("F12: writes nothing for a duplicate, and nothing for a stale event of a lower version", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: { "jobs:submitted": 1 } });
        await store.recordTaskOutcome(job.jobId, outcome("t1", { status: "completed", taskVersion: 5 }));
        const countersBefore = await store.readCounters();

        const duplicate = await store.recordTaskOutcome(job.jobId, outcome("t1", { taskVersion: 5 }));
        const stale = await store.recordTaskOutcome(
          job.jobId,
          outcome("t1", { status: "failed", taskVersion: 2, error: { code: "x", message: "old" } }),
        );

        expect(duplicate).toEqual({ recorded: false, job: expect.objectContaining({ jobId: job.jobId }) });
        expect(stale.recorded).toBe(false);
        expect(stale.job?.steps[0]?.counts).toEqual({ completed: 1, failed: 0, canceled: 0 });
        expect(await inspect.counts(job.jobId, 0)).toEqual({ completed: 1, failed: 0, canceled: 0 });
        expect(await inspect.outcomes(job.jobId)).toEqual([
          { taskId: "t1", status: "completed", taskVersion: 5 },
        ]);
        expect(await store.readCounters()).toEqual(countersBefore);
      });

      it("F12: records exactly once when the same outcome races in from several deliveries", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: {} });

        const results = await Promise.all(
          Array.from({ length: 6 }, () => store.recordTaskOutcome(job.jobId, outcome("t1"))),
        );

        expect(results.filter((r) => r.recorded)).toHaveLength(1);
        expect(await inspect.counts(job.jobId, 0)).toEqual({ completed: 1, failed: 0, canceled: 0 });
      });

      it("F12: ends with the same counts whatever order distinct outcomes and their duplicates arrive in", async () => {
        const job = newJob({ steps: [step({ total: 4 })] });
        await store.create({ job, plan: [], counters: {} });
        const outcomes: TaskOutcome[] = [
          outcome("t1"),
          outcome("t2", { status: "failed", index: 1, error: { code: "handler_error", message: "boom" } }),
          outcome("t3", { status: "canceled", index: 2 }),
          outcome("t4", { status: "rejected", index: 3 }),
        ];

        for (const o of [...outcomes].reverse().concat(outcomes, [outcomes[1] as TaskOutcome])) {
          await store.recordTaskOutcome(job.jobId, o);
        }

        expect(await inspect.counts(job.jobId, 0)).toEqual({ completed: 1, failed: 2, canceled: 1 });
        expect((await store.get(job.jobId))?.steps[0]?.counts).toEqual({
          completed: 1,
          failed: 2,
          canceled: 1,
        });
        expect(await inspect.outcomes(job.jobId)).toHaveLength(4);
      });

      it("records nothing for an unknown job", async () => {
        const result = await store.recordTaskOutcome("job-unknown", outcome("t1"));

        expect(result).toEqual({ recorded: false, job: undefined });
        expect(await inspect.outcomes("job-unknown")).toEqual([]);
      });

      it("lists a step's outcomes with their outputs exactly as recorded", async () => {
        const job = newJob({ steps: [step({ status: "completed" }), step()], currentStep: 1, stepCount: 2 });
        await store.create({ job, plan: [], counters: {} });
        const tricky = {
          list: [1, "two", null, { deep: true }],
          empty: {},
          emptyList: [],
          zero: 0,
          off: false,
          blank: "",
        };
        await store.recordTaskOutcome(job.jobId, outcome("a", { step: 0 }));
        await store.recordTaskOutcome(job.jobId, outcome("b", { step: 1, index: 0, output: tricky }));
        await store.recordTaskOutcome(job.jobId, outcome("c", { step: 1, index: 1, output: null }));
        await store.recordTaskOutcome(
          job.jobId,
          outcome("d", {
            step: 1,
            index: 2,
            status: "failed",
            output: undefined,
            error: { code: "e", message: "m" },
          }),
        );

        const listed = [...(await store.listOutcomes(job.jobId, 1))].sort((x, y) => x.index - y.index);

        expect(listed).toEqual([
          outcome("b", { step: 1, index: 0, output: tricky }),
          outcome("c", { step: 1, index: 1, output: null }),
          outcome("d", {
            step: 1,
            index: 2,
            status: "failed",
            output: undefined,
            error: { code: "e", message: "m" },
          }),
        ]);
        expect((await store.get(job.jobId))?.steps.map((s) => s.counts.completed)).toEqual([1, 2]);
      });
    });

    describe("attachTasks", () => {
      it("stores the ids, marks the step submitted and replaces the due time", async () => {
        const job = newJob({
          steps: [step({ aggregation: { policy: "deadline", deadlineSeconds: 60, reducer: "collect" } })],
        });
        await store.create({ job, plan: [], counters: {} });

        const attached = await store.attachTasks({
          jobId: job.jobId,
          step: 0,
          taskIds: ["t1", "t2", "t3"],
          updatedAt: at(2),
          dueAt: at(60),
        });

        expect(attached.attached).toBe(true);
        expect(attached.job).toMatchObject({ version: 2, dueAt: at(60), steps: [{ tasksSubmitted: true }] });
        expect(await store.readTaskIds(job.jobId)).toEqual([["t1", "t2", "t3"]]);
        expect((await store.listDue(at(59), 10)).map((j) => j.jobId)).not.toContain(job.jobId);
        expect((await store.listDue(at(60), 10)).map((j) => j.jobId)).toContain(job.jobId);
      });

      it("keeps no due time when none is given", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: {} });

        const attached = await store.attachTasks({
          jobId: job.jobId,
          step: 0,
          taskIds: ["t1"],
          updatedAt: at(2),
        });

        expect(attached.job?.dueAt).toBeUndefined();
        expect((await store.listDue(at(10_000), 10)).map((j) => j.jobId)).not.toContain(job.jobId);
      });

      it("stores the ids but reports a job that already ended", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: {} });
        await store.finish({
          jobId: job.jobId,
          expectedVersion: 1,
          status: "canceled",
          completedAt: at(1),
          updatedAt: at(1),
          steps: [step({ status: "canceled" })],
          dueAt: at(31),
          counters: {},
        });

        const attached = await store.attachTasks({
          jobId: job.jobId,
          step: 0,
          taskIds: ["t1"],
          updatedAt: at(2),
          dueAt: at(99),
        });

        expect(attached).toEqual({
          attached: false,
          job: expect.objectContaining({ status: "canceled", dueAt: at(31) }),
        });
        expect(await store.readTaskIds(job.jobId)).toEqual([["t1"]]);
      });
    });

    describe("advance and finish (guarded by version)", () => {
      it("advances to the next step, stores the step result and keeps the counts", async () => {
        const job = newJob({ kind: "pipeline", stepCount: 2 });
        await store.create({ job, plan: [], counters: {} });
        await store.recordTaskOutcome(job.jobId, outcome("t1"));

        const advanced = await store.advance({
          jobId: job.jobId,
          expectedVersion: 1,
          currentStep: 1,
          steps: [step({ status: "completed", completedAt: at(5) }), step({ total: 2, startedAt: at(5) })],
          updatedAt: at(5),
          dueAt: at(305),
          stepResult: { step: 0, result },
        });

        expect(advanced.ok).toBe(true);
        const stored = await store.get(job.jobId);
        expect(stored).toMatchObject({ version: 2, currentStep: 1, status: "working", dueAt: at(305) });
        expect(stored?.steps.map((s) => [s.status, s.total, s.counts.completed])).toEqual([
          ["completed", 3, 1],
          ["working", 2, 0],
        ]);
        expect(await store.readStepResult(job.jobId, 0)).toEqual(result);
      });

      it("refuses a write with a stale version and returns the current job", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: {} });
        await store.attachTasks({ jobId: job.jobId, step: 0, taskIds: ["t1"], updatedAt: at(1) });

        const stale = await store.finish({
          jobId: job.jobId,
          expectedVersion: 1,
          status: "completed",
          completedAt: at(2),
          updatedAt: at(2),
          steps: [step({ status: "completed" })],
          stepResult: { step: 0, result },
          dueAt: at(32),
          counters: { "jobs:completed": 1 },
        });

        expect(stale).toEqual({
          ok: false,
          current: expect.objectContaining({ version: 2, status: "working" }),
        });
        expect(await store.readStepResult(job.jobId, 0)).toBeUndefined();
        expect(await store.readCounters()).toEqual({});
      });

      it("finishes once: status, error, counters; a second finish writes nothing", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: { "jobs:submitted": 1 } });
        const finish = {
          jobId: job.jobId,
          expectedVersion: 1,
          status: "failed" as const,
          completedAt: at(3),
          updatedAt: at(3),
          error: { code: "task_failed", message: "boom" },
          steps: [step({ status: "failed", completedAt: at(3) })],
          dueAt: at(33),
          counters: { "jobs:failed": 1 },
        };

        const first = await store.finish(finish);
        const second = await store.finish({
          ...finish,
          status: "completed",
          counters: { "jobs:completed": 1 },
        });

        expect(first).toEqual({
          ok: true,
          job: expect.objectContaining({
            status: "failed",
            completedAt: at(3),
            error: finish.error,
            version: 2,
          }),
        });
        expect(second.ok).toBe(false);
        expect(await store.readCounters()).toEqual({ "jobs:submitted": 1, "jobs:failed": 1 });
        expect((await store.get(job.jobId))?.steps[0]?.status).toBe("failed");
      });

      it("keeps recording outcomes after the job ended, without touching the job statistics", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: { "jobs:submitted": 1 } });
        await store.finish({
          jobId: job.jobId,
          expectedVersion: 1,
          status: "completed",
          completedAt: at(3),
          updatedAt: at(3),
          steps: [step({ status: "completed" })],
          stepResult: { step: 0, result },
          dueAt: at(33),
          counters: { "jobs:completed": 1 },
        });

        const late = await store.recordTaskOutcome(job.jobId, outcome("t9", { status: "canceled" }));

        expect(late.recorded).toBe(true);
        expect(late.job).toMatchObject({ status: "completed", steps: [{ counts: { canceled: 1 } }] });
        expect(await store.readCounters()).toEqual({ "jobs:submitted": 1, "jobs:completed": 1 });
      });
    });

    describe("due jobs and the completion event", () => {
      it("lists jobs due at or before now, oldest first, up to the limit", async () => {
        const soon = newJob({ dueAt: at(10) });
        const sooner = newJob({ dueAt: at(5) });
        const later = newJob({ dueAt: at(100) });
        const never = newJob();
        const { dueAt: _none, ...withoutDue } = never;
        for (const job of [soon, sooner, later]) await store.create({ job, plan: [], counters: {} });
        await store.create({ job: withoutDue, plan: [], counters: {} });

        const due = await store.listDue(at(10), 10);
        const limited = await store.listDue(at(10), 1);

        expect(due.map((j) => j.jobId)).toEqual([sooner.jobId, soon.jobId]);
        expect(limited.map((j) => j.jobId)).toEqual([sooner.jobId]);
      });

      it("reschedules a job working on a submitted step, without moving its version", async () => {
        const job = newJob();
        await store.create({ job, plan: [], counters: {} });
        const unsubmitted = await store.reschedule({ jobId: job.jobId, step: 0, dueAt: at(50) });
        await store.attachTasks({
          jobId: job.jobId,
          step: 0,
          taskIds: ["t1"],
          updatedAt: at(1),
          dueAt: at(20),
        });

        const moved = await store.reschedule({ jobId: job.jobId, step: 0, dueAt: at(40) });
        const otherStep = await store.reschedule({ jobId: job.jobId, step: 1, dueAt: at(90) });
        const unknown = await store.reschedule({ jobId: "job-unknown", step: 0, dueAt: at(90) });

        expect([unsubmitted, moved, otherStep, unknown]).toEqual([false, true, false, false]);
        expect(await store.get(job.jobId)).toMatchObject({ version: 2, dueAt: at(40), updatedAt: at(1) });
        expect((await store.listDue(at(39), 10)).map((j) => j.jobId)).not.toContain(job.jobId);
        expect((await store.listDue(at(40), 10)).map((j) => j.jobId)).toContain(job.jobId);
        // Not a structural write: a finish guarded by the version read before the reschedule still lands.
        const finished = await store.finish({
          jobId: job.jobId,
          expectedVersion: 2,
          status: "completed",
          completedAt: at(41),
          updatedAt: at(41),
          steps: [step({ status: "completed", tasksSubmitted: true })],
          counters: {},
        });
        expect(finished.ok).toBe(true);
        expect(await store.reschedule({ jobId: job.jobId, step: 0, dueAt: at(99) })).toBe(false);
        expect((await store.get(job.jobId))?.dueAt).toBeUndefined();
      });

      it("takes a finished job off the due list once its event is confirmed, and only a finished one", async () => {
        const working = newJob({ dueAt: at(1) });
        const finished = newJob({ dueAt: at(1) });
        await store.create({ job: working, plan: [], counters: {} });
        await store.create({ job: finished, plan: [], counters: {} });
        await store.finish({
          jobId: finished.jobId,
          expectedVersion: 1,
          status: "completed",
          completedAt: at(2),
          updatedAt: at(2),
          steps: [step({ status: "completed" })],
          dueAt: at(32),
          counters: {},
        });

        await store.markEventPublished(finished.jobId);
        await store.markEventPublished(working.jobId);
        await store.markEventPublished("job-unknown");

        expect(await store.get(finished.jobId)).toMatchObject({ eventPublished: true });
        expect((await store.get(finished.jobId))?.dueAt).toBeUndefined();
        expect(await store.get(working.jobId)).toMatchObject({ eventPublished: false, dueAt: at(1) });
        expect((await store.listDue(at(1_000), 10)).map((j) => j.jobId)).toEqual([working.jobId]);
      });
    });

    it("sums the job counters of many jobs", async () => {
      await Promise.all(
        Array.from({ length: 12 }, () =>
          store.create({ job: newJob(), plan: [], counters: { "jobs:submitted": 1 } }),
        ),
      );

      expect(await store.readCounters()).toEqual({ "jobs:submitted": 12 });
    });
  });
}
