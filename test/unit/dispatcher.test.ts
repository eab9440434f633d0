import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
import type { TaskContext } from "#shared/core/dispatcher";
import { NonRetryableError } from "#shared/domain/errors";
import { settleMessage } from "#shared/worker/settle";
import { createCoreFixture } from "#test/support/core-fixture";

const echo = async (input: unknown, ctx: TaskContext) => ({
  value: (input as { value: unknown }).value,
  attempt: ctx.attempt,
});

/** The detail types of the lifecycle events published for one task, in order. */
function publishedTypes(f: ReturnType<typeof createCoreFixture>, taskId: string): string[] {
  return f.bus
    .inspectPublished()
    .filter((e) => e.detail.taskId === taskId)
    .map((e) => e["detail-type"]);
}

describe("Dispatcher", () => {
  it("claims, runs and completes a task with one result and consistent statistics", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ input: { value: 42 } });

    const settlement = await f.dispatcher({ echo }).process(await f.receiveOne());

    expect(settlement).toEqual({ kind: "ack", reason: "task completed" });
    const task = f.store.inspect(taskId);
    expect(task).toMatchObject({
      status: "completed",
      attempts: 1,
      workerAgentId: "agent-1",
      result: { success: true, output: { value: 42, attempt: 1 } },
    });
    expect(task?.leaseToken).toBeUndefined();
    expect(task?.completedAt).toBeDefined();
    await f.settled();
    const stats = await f.supervisor.statistics();
    expect(stats).toMatchObject({
      totalTasksSubmitted: 1,
      tasksCompleted: 1,
      tasksPending: 0,
      tasksInProgress: 0,
    });
    expect(stats.tasksByAgent).toEqual({ "agent-1": 1 });
  });

  it("publishes the lifecycle events from the committed changes", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();

    await f.dispatcher({ echo }).process(await f.receiveOne());
    await f.settled();

    expect(publishedTypes(f, taskId)).toEqual(["Task Submitted", "Task Started", "Task Completed"]);
  });

  it("F1: runs a task once when its message is delivered twice", async () => {
    const f = createCoreFixture();
    await f.submitOne();
    const message = await f.receiveOne();
    const handler = vi.fn(echo);

    await f.dispatcher({ echo: handler }).process(message);
    const second = await f.dispatcher({ echo: handler }).process(message);

    expect(second).toEqual({ kind: "ack", reason: "task already completed" });
    expect(handler).toHaveBeenCalledTimes(1);
    await f.settled();
    expect((await f.supervisor.statistics()).tasksCompleted).toBe(1);
  });

  it("F2: lets only one of two workers that receive the same task at once run it", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    const message = await f.receiveOne();
    const handler = vi.fn(async (input: unknown, ctx: TaskContext) => {
      await sleep(50);
      return echo(input, ctx);
    });

    const [a, b] = await Promise.all([
      f.dispatcher({ echo: handler }, { agentId: "a" }).process(message),
      f.dispatcher({ echo: handler }, { agentId: "b" }).process(message),
    ]);

    expect(handler).toHaveBeenCalledTimes(1);
    expect([a.kind, b.kind].sort()).toEqual(["ack", "release"]);
    expect(f.store.inspect(taskId)?.status).toBe("completed");
  });

  it("drops, rather than releases, a delivery at the receive limit while another worker holds the task: the queue never dead-letters a live task", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    const message = await f.receiveOne();
    let finish: () => void = () => {};
    const holder = f.dispatcher(
      { echo: (input, ctx) => new Promise((resolve) => (finish = () => resolve(echo(input, ctx)))) },
      { agentId: "holder" },
    );
    const running = holder.process(message);
    await vi.waitFor(() => expect(f.store.inspect(taskId)?.status).toBe("working"));
    const other = f.dispatcher({ echo }, { agentId: "other" });
    const limit = f.config.maxReceiveCount;

    const belowLimit = await other.process({ ...message, receiveCount: limit - 1 });
    const atLimit = await other.process({ ...message, receiveCount: limit });
    finish();

    expect(belowLimit).toMatchObject({ kind: "release", reason: "another worker holds the task" });
    expect(atLimit).toEqual({
      kind: "ack",
      reason: `another worker holds the task; dropped at the queue's receive limit (${limit}), the table brings the task back`,
    });
    expect(await running).toEqual({ kind: "ack", reason: "task completed" });
    expect(f.store.inspect(taskId)).toMatchObject({ status: "completed", attempts: 1 });
  });

  it("F4: refuses the result of a worker whose lease expired and was taken over", async () => {
    const f = createCoreFixture({ config: { leaseGraceSeconds: 1 } });
    const taskId = await f.submitOne({ timeoutSeconds: 5 });
    const message = await f.receiveOne();
    let releaseSlowWorker: () => void = () => {};
    const slow = f.dispatcher(
      {
        echo: (_input, ctx) =>
          new Promise((resolve) => {
            releaseSlowWorker = () => resolve({ by: "slow", attempt: ctx.attempt });
          }),
      },
      { agentId: "slow", cancelCheckIntervalMs: 60_000 },
    );
    const slowRun = slow.process(message);
    await vi.waitFor(() => expect(f.store.inspect(taskId)?.status).toBe("working"));

    f.clock.advance(10_000); // past timeout + grace: the slow worker's lease is gone
    const takeover = await f
      .dispatcher({ echo: async (_i, ctx) => ({ by: "fast", attempt: ctx.attempt }) }, { agentId: "fast" })
      .process(message);
    releaseSlowWorker();
    const slowSettlement = await slowRun;

    expect(takeover).toEqual({ kind: "ack", reason: "task completed" });
    expect(slowSettlement).toEqual({ kind: "ack", reason: "lease lost; the result was refused" });
    expect(f.store.inspect(taskId)).toMatchObject({
      status: "completed",
      attempts: 2,
      workerAgentId: "fast",
      result: { output: { by: "fast", attempt: 2 } },
    });
  });

  it("F5: retries a failing task with growing backoff, then fails it and dead-letters its message", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ maxAttempts: 3 });
    const dispatcher = f.dispatcher({
      echo: () => {
        throw new Error("boom");
      },
    });
    const delays: number[] = [];

    for (let attempt = 1; attempt <= 3; attempt++) {
      const message = await f.receiveOne();
      const settlement = await dispatcher.process(message);
      if (settlement.kind === "retry") delays.push(settlement.delaySeconds);
      await settleMessage(f.queue, message, settlement);
      f.clock.advance(10 * 60_000);
    }

    expect(delays).toHaveLength(2);
    expect(delays[1]).toBeGreaterThanOrEqual(delays[0] ?? 0);
    expect(f.store.inspect(taskId)).toMatchObject({
      status: "failed",
      attempts: 3,
      error: { code: "handler_error", message: "boom" },
      result: { success: false, errorMessage: "boom" },
    });
    const snapshot = f.queue.inspectQueue("diagnostics");
    expect(snapshot.deadLettered).toHaveLength(1);
    expect(snapshot.deadLettered[0]?.reason).toContain("attempts exhausted (3): boom");
    expect(snapshot.visible + snapshot.inFlight + snapshot.delayed).toBe(0);
  });

  it("F6: dead-letters a malformed message without touching any task", async () => {
    const f = createCoreFixture();
    await f.queue.send([{ queue: "diagnostics", body: { taskId: "", attempt: 0 } }]);

    const settlement = await f.dispatcher({ echo }).process(await f.receiveOne());

    expect(settlement.kind).toBe("dead-letter");
    expect(settlement.kind === "dead-letter" && settlement.reason).toContain("malformed task message");
  });

  it("F6: dead-letters a message whose body is not JSON", async () => {
    const f = createCoreFixture();
    const settlement = await f.dispatcher({ echo }).process({
      queue: "diagnostics",
      messageId: "m",
      receiptHandle: "r",
      body: "{not json",
      receiveCount: 1,
    });
    expect(settlement).toEqual({ kind: "dead-letter", reason: "malformed task message: body is not JSON" });
  });

  it("dead-letters a message that points at no task", async () => {
    const f = createCoreFixture();
    const settlement = await f.dispatcher({ echo }).process({
      queue: "diagnostics",
      messageId: "m",
      receiptHandle: "r",
      body: '{"taskId":"nope","attempt":1}',
      receiveCount: 1,
    });
    expect(settlement).toEqual({ kind: "dead-letter", reason: "unknown task nope" });
  });

  it("fails a task at once when its handler throws a NonRetryableError", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ maxAttempts: 5 });
    const settlement = await f
      .dispatcher({
        echo: () => {
          throw new NonRetryableError("bad document", { code: "bad_document" });
        },
      })
      .process(await f.receiveOne());

    expect(settlement).toEqual({ kind: "ack", reason: "task failed" });
    expect(f.store.inspect(taskId)).toMatchObject({
      status: "failed",
      attempts: 1,
      error: { code: "bad_document" },
    });
  });

  it("fails a task with code timeout when the handler outlives timeoutSeconds, and aborts the handler", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ timeoutSeconds: 1, maxAttempts: 1 });
    let sawAbort = false;

    await f
      .dispatcher({
        echo: (_input, ctx) =>
          new Promise((_resolve, reject) => {
            ctx.signal.addEventListener("abort", () => {
              sawAbort = true;
              reject(ctx.signal.reason);
            });
          }),
      })
      .process(await f.receiveOne());

    expect(sawAbort).toBe(true);
    expect(f.store.inspect(taskId)).toMatchObject({ status: "failed", error: { code: "timeout" } });
  });

  it("cancels a working task cooperatively: the handler's signal fires and the task ends canceled", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    let abortReason: unknown;
    const run = f
      .dispatcher({
        echo: (_input, ctx) =>
          new Promise((_resolve, reject) => {
            ctx.signal.addEventListener("abort", () => {
              abortReason = ctx.signal.reason;
              reject(new Error("aborted"));
            });
          }),
      })
      .process(await f.receiveOne());
    await vi.waitFor(() => expect(f.store.inspect(taskId)?.status).toBe("working"));

    const afterCancel = await f.supervisor.cancel(taskId);
    const settlement = await run;

    expect(afterCancel).toMatchObject({ status: "working", cancelRequested: true });
    expect(settlement).toEqual({ kind: "ack", reason: "task canceled" });
    expect((abortReason as Error).message).toBe("the task was canceled");
    expect(f.store.inspect(taskId)?.status).toBe("canceled");
  });

  it("F8: when a cancel races completion exactly one terminal state wins", async () => {
    const f = createCoreFixture();
    const taskIds = await Promise.all(Array.from({ length: 20 }, () => f.submitOne()));
    const dispatcher = f.dispatcher({ echo });

    const results = await Promise.allSettled(
      taskIds.flatMap((taskId) => [
        f.receiveOne().then((m) => dispatcher.process(m)),
        f.supervisor.cancel(taskId),
        f.supervisor.cancel(taskId),
      ]),
    );

    expect(
      results.every((r) => r.status === "fulfilled" || (r.reason as Error).name === "AlreadyTerminalError"),
    ).toBe(true);
    for (const taskId of taskIds) {
      const task = f.store.inspect(taskId);
      expect(["completed", "canceled"]).toContain(task?.status);
    }
    await f.settled();
    const stats = await f.supervisor.statistics();
    expect(stats.tasksCompleted + stats.tasksCanceled).toBe(20);
    expect(stats.tasksPending + stats.tasksInProgress).toBe(0);
  });

  it("fails a task whose output exceeds 256 KiB instead of storing it", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    await f.dispatcher({ echo: () => ({ blob: "x".repeat(300 * 1024) }) }).process(await f.receiveOne());
    expect(f.store.inspect(taskId)).toMatchObject({ status: "failed", error: { code: "output_too_large" } });
  });

  it("fails a task whose type has no handler on this worker", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    await f.dispatcher({ other: echo }).process(await f.receiveOne());
    expect(f.store.inspect(taskId)).toMatchObject({ status: "failed", error: { code: "no_handler" } });
  });

  it("delivers committed changes again when publishing fails: no event lost, statistics counted once", async () => {
    const f = createCoreFixture();
    await f.settled();
    const publish = vi.spyOn(f.bus, "publish").mockRejectedValueOnce(new Error("bus down"));
    const taskId = await f.submitOne();

    await f.dispatcher({ echo }).process(await f.receiveOne());
    await f.settled();

    expect(publish).toHaveBeenCalled();
    await f.settled();
    expect(publishedTypes(f, taskId)).toEqual(["Task Submitted", "Task Started", "Task Completed"]);
    await f.settled();
    expect(await f.supervisor.statistics()).toMatchObject({
      totalTasksSubmitted: 1,
      tasksCompleted: 1,
      tasksPending: 0,
    });
  });
  it("ends a task canceled, without another run, when the cancel arrived during an attempt that then failed", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ maxAttempts: 3 });
    let runs = 0;
    const dispatcher = f.dispatcher(
      {
        echo: async () => {
          runs++;
          await f.supervisor.cancel(taskId);
          throw new Error("failed before the watcher saw the cancel");
        },
      },
      { cancelCheckIntervalMs: 60_000 },
    );

    const settlement = await dispatcher.process(await f.receiveOne());

    expect(settlement).toEqual({ kind: "ack", reason: "task canceled" });
    expect(runs).toBe(1);
    expect(f.store.inspect(taskId)).toMatchObject({ status: "canceled", cancelRequested: true });
  });

  it("names the outcome event after the version the write produced, after heartbeats and a cancel request moved it", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    const dispatcher = f.dispatcher(
      {
        echo: async (input, ctx) => {
          await ctx.heartbeat(); // moves the version through this worker
          await ctx.heartbeat();
          await f.supervisor.cancel(taskId); // moves it behind this worker's back (the watcher is slow)
          return echo(input, ctx);
        },
      },
      { cancelCheckIntervalMs: 60_000 },
    );

    await dispatcher.process(await f.receiveOne());

    const stored = f.store.inspect(taskId);
    await f.settled();
    const completed = f.bus
      .inspectPublished()
      .filter((e) => e.detail.taskId === taskId && e["detail-type"] === "Task Completed");
    expect(stored).toMatchObject({ status: "completed", cancelRequested: true });
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      id: `${taskId}:${stored?.version}`,
      detail: { status: "completed", version: stored?.version },
    });
  });

  it("names a retry's event after the version the write produced", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ maxAttempts: 2 });
    const dispatcher = f.dispatcher({
      echo: async (_input, ctx) => {
        await ctx.heartbeat();
        throw new Error("try again");
      },
    });

    await dispatcher.process(await f.receiveOne());

    const stored = f.store.inspect(taskId);
    await f.settled();
    const retrying = f.bus
      .inspectPublished()
      .filter((e) => e.detail.taskId === taskId && e["detail-type"] === "Task Retrying");
    expect(stored).toMatchObject({ status: "submitted" });
    expect(retrying.map((e) => [e.id, e.detail.version])).toEqual([
      [`${taskId}:${stored?.version}`, stored?.version],
    ]);
  });

  it("cancels a submitted task that was asked to cancel instead of claiming it", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    const task = f.store.inspect(taskId);
    if (!task) throw new Error("no task");
    // As left by a retry write that raced a cancel request.
    await f.store.transition({
      taskId,
      from: ["submitted"],
      patch: { cancelRequested: true, updatedAt: task.updatedAt },
    });
    const handler = vi.fn(echo);

    const settlement = await f.dispatcher({ echo: handler }).process(await f.receiveOne());

    expect(settlement).toEqual({ kind: "ack", reason: "task canceled" });
    expect(handler).not.toHaveBeenCalled();
    expect(f.store.inspect(taskId)?.status).toBe("canceled");
  });

  it("hands a message back without spending an attempt when the invocation deadline is too close", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ maxAttempts: 1 });

    const settlement = await f
      .dispatcher({ echo })
      .process(await f.receiveOne(), { deadlineMs: f.clock.now().getTime() + 800 });

    expect(settlement).toMatchObject({ kind: "release", reason: "invocation deadline too close to start" });
    expect(f.store.inspect(taskId)).toMatchObject({ status: "submitted", attempts: 0 });
  });

  it("clears its timers when the onTaskStart hook throws, and records the attempt as failed", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ maxAttempts: 1 });
    const get = vi.spyOn(f.store, "get");

    const settlement = await f
      .dispatcher(
        { echo },
        {
          cancelCheckIntervalMs: 10,
          onTaskStart: () => {
            throw new Error("hook broke");
          },
        },
      )
      .process(await f.receiveOne());
    const readsAfter = get.mock.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 60));

    expect(settlement.kind).toBe("dead-letter");
    expect(f.store.inspect(taskId)).toMatchObject({ status: "failed", error: { message: "hook broke" } });
    expect(get.mock.calls.length).toBe(readsAfter);
  });
});
