import { describe, expect, it } from "vitest";
import type { MemoryJobStore } from "#shared/adapters/memory/job-store";
import { JobAlreadyFinishedError } from "#shared/core/jobs/errors";
import { defineReducer } from "#shared/core/jobs/reducers";
import { NotFoundError, ValidationError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { JobRecord } from "#shared/domain/job";
import { createJobFixture, echoTask } from "#test/support/job-fixture";

const collect = { policy: "all", reducer: "collect" } as const;

function jobCompletedEvents(f: ReturnType<typeof createJobFixture>, jobId: string): BusEvent[] {
  return f.bus
    .inspectPublished()
    .filter((e) => e["detail-type"] === "Job Completed" && e.detail.jobId === jobId);
}

async function statuses(f: ReturnType<typeof createJobFixture>, taskIds: readonly string[]) {
  return Promise.all(taskIds.map(async (id) => (await f.store.get(id))?.status));
}

describe("fan-out / fan-in", () => {
  it("completes an all/collect job with the outputs in submission order, whatever the completion order", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask("a"), echoTask("b"), echoTask("c")],
      aggregation: collect,
    });

    await f.runAll("reverse");

    const job = await f.service.get(jobId);
    expect(job).toMatchObject({
      jobId,
      status: "completed",
      total: 3,
      completed: 3,
      failed: 0,
      canceled: 0,
      taskIds,
      result: { output: ["a", "b", "c"], outputTaskIds: taskIds, failedTasks: [] },
    });
    expect(job.completedAt).toBeDefined();
    expect(jobCompletedEvents(f, jobId)).toHaveLength(1);
    expect(jobCompletedEvents(f, jobId)[0]?.detail).toMatchObject({ status: "completed", completed: 3 });
    expect(await f.service.statistics()).toEqual({
      jobs: { submitted: 1, completed: 1, failed: 0, canceled: 0, running: 0 },
    });
  });

  it("stays working until the last task finishes", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({ tasks: [echoTask(1), echoTask(2)], aggregation: collect });
    const [first] = await f.receiveAll();

    await f.run(first ? [first] : []);

    expect(await f.service.get(jobId)).toMatchObject({ status: "working", completed: 1, total: 2 });
    expect((await f.service.statistics()).jobs.running).toBe(1);
  });

  it("tags each task with its job, step and position", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2)],
      aggregation: collect,
    });

    const second = await f.store.get(taskIds[1] ?? "");

    expect(second).toMatchObject({ jobId, metadata: { "agentry:jobStep": "0", "agentry:jobIndex": "1" } });
  });

  it("first completes on the first success and cancels the rest", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask("slow"), echoTask("fast"), echoTask("slower")],
      aggregation: { policy: "first", reducer: "collect" },
    });
    const messages = await f.receiveAll();

    await f.run(messages.slice(1, 2));

    expect(await f.service.get(jobId)).toMatchObject({
      status: "completed",
      completed: 1,
      canceled: 2,
      result: { output: ["fast"], outputTaskIds: [taskIds[1]] },
    });
    expect(await statuses(f, taskIds)).toEqual(["canceled", "completed", "canceled"]);
  });

  it("quorum completes once N succeeded and reduces exactly N outputs", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2), echoTask(3), echoTask(4)],
      aggregation: { policy: "quorum", quorum: 2, reducer: "collect" },
    });
    const messages = await f.receiveAll();

    await f.run([messages[3], messages[0]].flatMap((m) => (m ? [m] : [])));

    const job = await f.service.get(jobId);
    expect(job).toMatchObject({ status: "completed", result: { output: [1, 4] } });
    expect(await statuses(f, taskIds)).toEqual(["completed", "canceled", "canceled", "completed"]);
  });

  it("quorum fails when it can no longer be met", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1, true), echoTask(2, true), echoTask(3)],
      aggregation: { policy: "quorum", quorum: 2, reducer: "collect" },
    });

    await f.runAll();

    expect(await f.service.get(jobId)).toMatchObject({
      status: "failed",
      error: { code: "quorum_unreachable" },
    });
  });

  it("deadline aggregates what finished by the deadline and cancels the rest", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask("in time"), echoTask("late"), echoTask("later")],
      aggregation: { policy: "deadline", deadlineSeconds: 5, reducer: "collect" },
    });
    const [first] = await f.receiveAll();
    await f.run(first ? [first] : []);

    const before = await f.aggregator.advanceDueJobs(f.clock.now());
    f.clock.advance(5_000);
    const after = await f.aggregator.advanceDueJobs(f.clock.now());
    await f.idle();

    expect(before.advanced).toBe(0);
    expect(after.advanced).toBe(1);
    expect(await f.service.get(jobId)).toMatchObject({
      status: "completed",
      result: { output: ["in time"] },
      completed: 1,
      canceled: 2,
    });
    expect(await statuses(f, taskIds)).toEqual(["completed", "canceled", "canceled"]);
  });

  it("deadline counts a task that finished in time whose event arrives after another's, past the deadline", async () => {
    // The table's stream delivers events after the writes: both tasks finish in time, the first
    // task's event arrives only after the deadline, the second's not yet (nor the canceled task's:
    // the job counts it as canceled once that event comes).
    const f = createJobFixture({ subscribe: false });
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask("first"), echoTask("second"), echoTask("late")],
      aggregation: { policy: "deadline", deadlineSeconds: 5, reducer: "collect" },
    });
    const [first, second] = await f.receiveAll();
    await f.run([first, second].filter((m) => m !== undefined));
    const [firstEvent] = f.terminalEvents(jobId).filter((e) => e.detail.taskId === taskIds[0]);

    f.clock.advance(5_000);
    await f.aggregator.onTaskEvent(firstEvent as BusEvent);
    await f.idle();

    expect(await f.service.get(jobId)).toMatchObject({
      status: "completed",
      result: { output: ["first", "second"] },
      completed: 2,
    });
    expect(await statuses(f, taskIds)).toEqual(["completed", "completed", "canceled"]);
  });

  it("fails a deadline job whose deadline passed with no success", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1)],
      aggregation: { policy: "deadline", deadlineSeconds: 1, reducer: "collect" },
    });

    f.clock.advance(1_000);
    await f.aggregator.advanceDueJobs(f.clock.now());

    expect(await f.service.get(jobId)).toMatchObject({
      status: "failed",
      error: { code: "deadline_exceeded" },
    });
  });
});

describe("failure policies", () => {
  it("fail-fast fails the job on the first failure and cancels the rest", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask(1, true), echoTask(2), echoTask(3)],
      aggregation: collect,
    });
    const [failing] = await f.receiveAll();

    await f.run(failing ? [failing] : []);

    const job = await f.service.get(jobId);
    expect(job).toMatchObject({ status: "failed", error: { code: "task_failed" }, failed: 1, canceled: 2 });
    expect(job.result).toBeUndefined();
    expect(await statuses(f, taskIds)).toEqual(["failed", "canceled", "canceled"]);
    expect((await f.service.statistics()).jobs).toMatchObject({ failed: 1, running: 0 });
    expect(jobCompletedEvents(f, jobId)[0]?.detail).toMatchObject({ status: "failed" });
  });

  it("fail-fast names the failed task, its position and its error in the job's error", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2, true), echoTask(3)],
      aggregation: collect,
    });

    await f.runAll();

    const job = await f.service.get(jobId);
    expect(job.status).toBe("failed");
    expect(job.error?.message).toContain(`task ${taskIds[1]} (index 1) failed`);
    expect(job.error?.message).not.toContain(String(taskIds[0]));
  });

  it("tolerate completes with the successful outputs and names the failed tasks", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2, true), echoTask(3)],
      aggregation: collect,
      failurePolicy: { mode: "tolerate" },
    });

    await f.runAll();

    expect(await f.service.get(jobId)).toMatchObject({
      status: "completed",
      completed: 2,
      failed: 1,
      result: {
        output: [1, 3],
        outputTaskIds: [taskIds[0], taskIds[2]],
        failedTasks: [{ taskId: taskIds[1], index: 1, status: "failed", error: { code: "non_retryable" } }],
      },
    });
  });

  it("tolerate fails once failures exceed maxFailures", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1, true), echoTask(2, true), echoTask(3)],
      aggregation: collect,
      failurePolicy: { mode: "tolerate", maxFailures: 1 },
    });

    await f.runAll();

    expect(await f.service.get(jobId)).toMatchObject({
      status: "failed",
      error: { code: "too_many_failures" },
    });
  });

  it("counts a rejected (unroutable) task as a failure", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1), { taskType: "no-such-type", input: 1 }],
      aggregation: collect,
    });
    await f.idle();

    expect(await f.service.get(jobId)).toMatchObject({
      status: "failed",
      failed: 1,
      error: { code: "task_failed" },
    });
  });

  it("fails the job with reducer_failed when the reducer throws", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1), echoTask([2])],
      aggregation: { policy: "all", reducer: "merge" },
    });

    await f.runAll();

    expect(await f.service.get(jobId)).toMatchObject({ status: "failed", error: { code: "reducer_failed" } });
  });
});

describe("custom reducers", () => {
  it("runs a reducer registered in code, and refuses an unknown one before writing anything", async () => {
    const sum = defineReducer("sum", (outputs) => outputs.reduce<number>((t, o) => t + Number(o), 0));
    const f = createJobFixture({ reducers: [sum] });

    const { jobId } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2), echoTask(39)],
      aggregation: { policy: "all", reducer: "sum" },
    });
    await f.runAll();
    const unknown = f.service.submit({
      tasks: [echoTask(1)],
      aggregation: { policy: "all", reducer: "product" },
    });

    expect(await f.service.get(jobId)).toMatchObject({ status: "completed", result: { output: 42 } });
    await expect(unknown).rejects.toBeInstanceOf(ValidationError);
    await expect(unknown).rejects.toMatchObject({ details: [{ path: "aggregation.reducer" }] });
    expect((await f.service.statistics()).jobs.submitted).toBe(1);
  });
});

describe("cancel", () => {
  it("cancels a working job and its remaining tasks; a second cancel is a 409", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2)],
      aggregation: collect,
    });
    const [first] = await f.receiveAll();
    await f.run(first ? [first] : []);

    const canceled = await f.service.cancel(jobId);
    await f.idle();

    expect(canceled).toMatchObject({ status: "canceled", error: { code: "canceled" } });
    expect(await statuses(f, taskIds)).toEqual(["completed", "canceled"]);
    expect(await f.service.get(jobId)).toMatchObject({ status: "canceled", completed: 1, canceled: 1 });
    await expect(f.service.cancel(jobId)).rejects.toBeInstanceOf(JobAlreadyFinishedError);
    expect((await f.service.statistics()).jobs).toMatchObject({ canceled: 1, running: 0 });
  });

  it("answers not found for an unknown job", async () => {
    const f = createJobFixture();

    await expect(f.service.get("nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(f.service.cancel("nope")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("pipelines", () => {
  it("runs three steps, each built from the previous step's result without a round trip", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({
      steps: [
        { tasks: [echoTask(1), echoTask(2), echoTask(3)], aggregation: collect },
        {
          tasks: {
            fromPrevious: { taskType: "echo", forEach: "result", input: { value: { n: { $from: "item" } } } },
          },
          aggregation: collect,
        },
        {
          tasks: { fromPrevious: { taskType: "echo", input: { value: { $from: "result" } } } },
          aggregation: { policy: "all", reducer: "concat" },
        },
      ],
    });

    await f.runAll("reverse");

    const job = await f.service.get(jobId);
    expect(job).toMatchObject({
      status: "completed",
      currentStep: 2,
      total: 7,
      completed: 7,
      result: { output: [{ n: 1 }, { n: 2 }, { n: 3 }] },
    });
    expect(job.steps?.map((s) => [s.status, s.total, s.taskIds.length])).toEqual([
      ["completed", 3, 3],
      ["completed", 3, 3],
      ["completed", 1, 1],
    ]);
    expect(job.taskIds.slice(0, 3)).toEqual(taskIds);
    const step2Task = await f.store.get(job.steps?.[1]?.taskIds[2] ?? "");
    expect(step2Task).toMatchObject({
      jobId,
      input: { value: { n: 3 } },
      metadata: { "agentry:jobStep": "1" },
    });
    expect(jobCompletedEvents(f, jobId)).toHaveLength(1);
  });

  it("fails the job when a step's template does not fit the previous result", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({
      steps: [
        { tasks: [echoTask({ a: 1 })], aggregation: { policy: "all", reducer: "merge" } },
        {
          tasks: { fromPrevious: { taskType: "echo", input: { value: { $from: "result.b" } } } },
          aggregation: collect,
        },
      ],
    });

    await f.runAll();

    expect(await f.service.get(jobId)).toMatchObject({
      status: "failed",
      error: { code: "template_unresolved" },
    });
  });

  it("resubmits an interrupted step once it is due, without creating its tasks twice", async () => {
    let failNextStepSubmit = true;
    const f = createJobFixture({
      decorate: (deps) => ({
        ...deps,
        supervisor: {
          cancel: (id) => deps.supervisor.cancel(id),
          submit: async (inputs, options) => {
            const result = await deps.supervisor.submit(inputs, options);
            // The tasks of step 1 were created, then the aggregator died before attaching them.
            if (failNextStepSubmit && inputs[0]?.metadata?.["agentry:jobStep"] === "1") {
              failNextStepSubmit = false;
              throw new Error("crash after submit");
            }
            return result;
          },
        },
      }),
    });
    const { jobId } = await f.service.submit({
      steps: [
        { tasks: [echoTask(1), echoTask(2)], aggregation: collect },
        {
          tasks: {
            fromPrevious: { taskType: "echo", forEach: "result", input: { value: { $from: "item" } } },
          },
          aggregation: collect,
        },
      ],
    });

    await expect(f.runAll()).rejects.toThrow("crash after submit");
    const interrupted = await f.service.get(jobId);
    f.clock.advance(301_000);
    const report = await f.aggregator.advanceDueJobs(f.clock.now());
    await f.runAll();

    expect(interrupted).toMatchObject({ status: "working", currentStep: 1 });
    expect(interrupted.steps?.[1]?.taskIds).toEqual([]);
    expect(report.resubmitted).toBe(1);
    const job = await f.service.get(jobId);
    expect(job).toMatchObject({ status: "completed", total: 4, completed: 4, result: { output: [1, 2] } });
    expect((await f.supervisor.statistics()).totalTasksSubmitted).toBe(4);
  });
});

describe("interrupted submissions and lost events", () => {
  it("fails a job whose first submission never completed, once it is due", async () => {
    const f = createJobFixture();
    const now = f.clock.now().toISOString();
    const job: JobRecord = {
      jobId: "job-interrupted",
      kind: "tasks",
      status: "working",
      version: 1,
      createdAt: now,
      updatedAt: now,
      currentStep: 0,
      stepCount: 1,
      steps: [
        {
          status: "working",
          total: 2,
          aggregation: collect,
          failurePolicy: { mode: "fail-fast" },
          startedAt: now,
          tasksSubmitted: false,
          counts: { completed: 0, failed: 0, canceled: 0 },
        },
      ],
      dueAt: new Date(f.clock.now().getTime() + 300_000).toISOString(),
      eventPublished: false,
    };
    await f.jobs.create({ job, plan: [], counters: { "jobs:submitted": 1 } });

    await f.aggregator.advanceDueJobs(f.clock.now());
    const early = await f.service.get(job.jobId);
    f.clock.advance(300_000);
    await f.aggregator.advanceDueJobs(f.clock.now());

    expect(early.status).toBe("working");
    expect(await f.service.get(job.jobId)).toMatchObject({
      status: "failed",
      error: { code: "submission_interrupted" },
    });
  });

  it("fails the job and rethrows when its tasks cannot be submitted", async () => {
    const f = createJobFixture({
      decorate: (deps) => ({
        ...deps,
        supervisor: {
          cancel: (id) => deps.supervisor.cancel(id),
          submit: async () => {
            throw new Error("queue down");
          },
        },
      }),
    });

    await expect(f.service.submit({ tasks: [echoTask(1)], aggregation: collect })).rejects.toThrow(
      "queue down",
    );

    expect((await f.service.statistics()).jobs).toMatchObject({ submitted: 1, failed: 1, running: 0 });
  });

  it("completes a job whose task events never reached the aggregator, at its next reconciliation", async () => {
    // No subscription: every terminal event of the job's tasks is lost on the way.
    const f = createJobFixture({ subscribe: false });
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask("a"), echoTask("b", true), echoTask("c")],
      aggregation: { policy: "all", reducer: "collect" },
      failurePolicy: { mode: "tolerate" },
    });
    await f.runAll();
    const waiting = await f.service.get(jobId);

    // The fixture's clock moves with real time too: "early" keeps a margin a slow machine cannot eat.
    f.clock.advance(f.config.jobReconcileSeconds * 1000 - 5_000);
    const early = await f.aggregator.advanceDueJobs(f.clock.now());
    f.clock.advance(5_000);
    const report = await f.aggregator.advanceDueJobs(f.clock.now());

    expect(waiting).toMatchObject({ status: "working", completed: 0, failed: 0 });
    expect(early).toEqual({ due: 0, advanced: 0, resubmitted: 0, republished: 0, reconciled: 0 });
    expect(report).toEqual({ due: 1, advanced: 1, resubmitted: 0, republished: 0, reconciled: 3 });
    expect(await f.service.get(jobId)).toMatchObject({
      status: "completed",
      completed: 2,
      failed: 1,
      result: {
        output: ["a", "c"],
        outputTaskIds: [taskIds[0], taskIds[2]],
        failedTasks: [{ taskId: taskIds[1], index: 1, status: "failed" }],
      },
    });
    expect(jobCompletedEvents(f, jobId)).toHaveLength(1);
  });

  it("records the finished tasks of a job still waiting on others, and checks it again later", async () => {
    const f = createJobFixture({ subscribe: false });
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2), echoTask(3)],
      aggregation: collect,
    });
    const [first, ...rest] = await f.receiveAll();
    await f.run(first ? [first] : []);

    f.clock.advance(f.config.jobReconcileSeconds * 1000);
    const partly = await f.aggregator.advanceDueJobs(f.clock.now());
    const again = await f.aggregator.advanceDueJobs(f.clock.now());
    const afterOne = await f.service.get(jobId);
    await f.run(rest);
    f.clock.advance(f.config.jobReconcileSeconds * 1000);
    const done = await f.aggregator.advanceDueJobs(f.clock.now());

    expect(partly).toMatchObject({ due: 1, advanced: 0, reconciled: 1 });
    // Rescheduled: not due again until the next reconciliation.
    expect(again.due).toBe(0);
    expect(afterOne).toMatchObject({ status: "working", completed: 1 });
    expect(done).toMatchObject({ due: 1, advanced: 1, reconciled: 2 });
    expect(await f.service.get(jobId)).toMatchObject({ status: "completed", result: { output: [1, 2, 3] } });
  });

  it("finishes a job whose aggregator recorded the last outcome and then failed", async () => {
    let failFinishes = 1;
    const f = createJobFixture({
      decorate: (deps) => ({
        ...deps,
        jobs: Object.assign(Object.create(deps.jobs), {
          finish: async (request: Parameters<typeof deps.jobs.finish>[0]) => {
            if (failFinishes-- > 0) throw new Error("aggregator crashed before finishing");
            return deps.jobs.finish(request);
          },
        }),
      }),
    });
    const { jobId } = await f.service.submit({ tasks: [echoTask(1), echoTask(2)], aggregation: collect });

    await expect(f.runAll()).rejects.toThrow("aggregator crashed before finishing");
    const stuck = await f.service.get(jobId);
    f.clock.advance(f.config.jobReconcileSeconds * 1000);
    const report = await f.aggregator.advanceDueJobs(f.clock.now());

    expect(stuck).toMatchObject({ status: "working", completed: 2 });
    expect(report).toMatchObject({ due: 1, advanced: 1, reconciled: 0 });
    expect(await f.service.get(jobId)).toMatchObject({ status: "completed", result: { output: [1, 2] } });
  });

  it("checks a deadline step at its deadline when that comes before the next reconciliation", async () => {
    const f = createJobFixture({ subscribe: false });
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2)],
      aggregation: { policy: "deadline", deadlineSeconds: 10, reducer: "collect" },
    });
    const [first] = await f.receiveAll();
    await f.run(first ? [first] : []);

    f.clock.advance(10_000);
    const report = await f.aggregator.advanceDueJobs(f.clock.now());

    expect(report).toMatchObject({ due: 1, advanced: 1, reconciled: 1 });
    expect(await f.service.get(jobId)).toMatchObject({ status: "completed", result: { output: [1] } });
  });

  it("publishes Job Completed again when the first publish failed", async () => {
    let failJobEvents = 1;
    const f = createJobFixture({
      decorate: (deps) => ({
        ...deps,
        publisher: {
          publish: async (events) => {
            if (events.some((e) => e["detail-type"] === "Job Completed") && failJobEvents-- > 0) {
              throw new Error("bus down");
            }
            await deps.publisher.publish(events);
          },
        },
      }),
    });
    const { jobId } = await f.service.submit({ tasks: [echoTask(1)], aggregation: collect });
    await f.runAll();
    const lost = jobCompletedEvents(f, jobId).length;

    await f.aggregator.advanceDueJobs(f.clock.now());
    const tooEarly = jobCompletedEvents(f, jobId).length;
    f.clock.advance(30_000);
    const report = await f.aggregator.advanceDueJobs(f.clock.now());
    f.clock.advance(60_000);
    await f.aggregator.advanceDueJobs(f.clock.now());

    expect([lost, tooEarly]).toEqual([0, 0]);
    expect(report.republished).toBe(1);
    expect(jobCompletedEvents(f, jobId)).toHaveLength(1);
    expect(jobCompletedEvents(f, jobId)[0]?.id).toBe(`job:${jobId}`);
  });
});

describe("idempotency under duplicate and reordered events (F12)", () => {
  async function snapshot(f: ReturnType<typeof createJobFixture>, jobId: string) {
    const jobs = f.jobs as MemoryJobStore;
    return {
      stored: jobs.inspect(jobId),
      view: await f.service.get(jobId),
      jobStats: await f.service.statistics(),
      taskStats: await f.supervisor.statistics(),
      jobEvents: jobCompletedEvents(f, jobId).length,
    };
  }

  it("leaves a finished job and the statistics unchanged when every event is replayed, twice, reordered", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({
      tasks: [echoTask(1), echoTask(2, true), echoTask(3)],
      aggregation: collect,
      failurePolicy: { mode: "tolerate" },
    });
    await f.runAll();
    const before = await snapshot(f, jobId);
    const events = f.terminalEvents(jobId);

    const reports = [];
    for (const event of [...events].reverse().concat(events))
      reports.push(await f.aggregator.onTaskEvent(event));
    await f.idle();

    expect(events).toHaveLength(3);
    expect(reports.every((r) => r.kind === "duplicate")).toBe(true);
    expect(await snapshot(f, jobId)).toEqual(before);
  });

  it("counts a task once when its event arrives several times while the job runs", async () => {
    const f = createJobFixture();
    const { jobId } = await f.service.submit({ tasks: [echoTask(1), echoTask(2)], aggregation: collect });
    const [first, second] = await f.receiveAll();
    await f.run(first ? [first] : []);
    const [event] = f.terminalEvents(jobId);

    await Promise.all([1, 2, 3].map(() => f.aggregator.onTaskEvent(event as BusEvent)));
    const during = await f.service.get(jobId);
    await f.run(second ? [second] : []);

    expect(during).toMatchObject({ status: "working", completed: 1 });
    expect(await f.service.get(jobId)).toMatchObject({
      status: "completed",
      completed: 2,
      result: { output: [1, 2] },
    });
  });

  it("ignores a stale event of a lower version once the task's outcome is recorded", async () => {
    const f = createJobFixture();
    const { jobId, taskIds } = await f.service.submit({ tasks: [echoTask(1)], aggregation: collect });
    await f.runAll();
    const before = await snapshot(f, jobId);
    const [completed] = f.terminalEvents(jobId);
    const stale = {
      ...(completed as BusEvent),
      id: `${taskIds[0]}:1`,
      "detail-type": "Task Failed",
      detail: { ...(completed as BusEvent).detail, status: "failed", version: 1 },
    };

    const report = await f.aggregator.onTaskEvent(stale);

    expect(report.kind).toBe("duplicate");
    expect(await snapshot(f, jobId)).toEqual(before);
    expect(before.stored?.outcomes).toEqual([
      expect.objectContaining({ status: "completed", taskVersion: 3 }),
    ]);
  });

  it("ignores events of tasks outside any job and of unknown jobs", async () => {
    const f = createJobFixture();
    const [loose] = await f.supervisor.submit([echoTask(1)]);
    await f.runAll();
    const event = f.bus
      .inspectPublished()
      .find((e) => e.detail.taskId === loose?.taskId && e["detail-type"] === "Task Completed");

    const withoutJob = await f.aggregator.onTaskEvent(event as BusEvent);
    const wrongJob = await f.aggregator.onTaskEvent({
      ...(event as BusEvent),
      detail: { ...(event as BusEvent).detail, jobId: "job-x" },
    });

    expect(withoutJob.kind).toBe("ignored");
    expect(wrongJob).toEqual({ kind: "ignored", reason: "the task is unknown to this job" });
  });
});
