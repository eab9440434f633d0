import { describe, expect, it, vi } from "vitest";
import {
  AlreadyTerminalError,
  IdempotencyConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "#shared/domain/errors";
import { createCoreFixture } from "#test/support/core-fixture";

describe("Supervisor", () => {
  it("persists a submitted task before enqueuing it on its capability's queue", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ taskType: "analyze_text", input: { text: "hi" } });

    expect(f.store.inspect(taskId)).toMatchObject({
      status: "submitted",
      requiredCapability: "text-analysis",
      version: 1,
      attempts: 0,
      maxAttempts: 3,
    });
    const message = await f.receiveOne("text-analysis");
    expect(JSON.parse(message.body)).toEqual({ taskId, attempt: 1 });
  });

  it("routes by requiredCapability over the task type's configured capability", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ taskType: "analyze_text", requiredCapability: "diagnostics" });
    expect(f.store.inspect(taskId)?.requiredCapability).toBe("diagnostics");
    expect(JSON.parse((await f.receiveOne("diagnostics")).body).taskId).toBe(taskId);
  });

  it("sends tasks at or above the priority threshold to the high tier", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ priority: 5 });
    expect(f.queue.inspectQueue("diagnostics").visible).toBe(0);
    expect(JSON.parse((await f.receiveOne("diagnostics-high")).body).taskId).toBe(taskId);
  });

  it("rejects a task with no route with error code no_route, without enqueuing it", async () => {
    const f = createCoreFixture();
    const [accepted] = await f.supervisor.submit([{ taskType: "zz-unrouted-task-type", input: {} }]);

    expect(accepted?.status).toBe("rejected");
    expect(f.store.inspect(accepted?.taskId ?? "")).toMatchObject({
      status: "rejected",
      error: { code: "no_route" },
    });
    await f.settled();
    expect((await f.supervisor.statistics()).tasksRejected).toBe(1);
  });

  it("returns the same task for a resubmission with the same idempotency key and body", async () => {
    const f = createCoreFixture();
    const first = await f.supervisor.submit([{ taskType: "echo", input: { v: 1 } }], {
      idempotencyKey: "k-1",
    });
    const second = await f.supervisor.submit([{ taskType: "echo", input: { v: 1 } }], {
      idempotencyKey: "k-1",
    });

    expect(second).toEqual(first);
    await f.settled();
    expect((await f.supervisor.statistics()).totalTasksSubmitted).toBe(1);
    expect(f.queue.inspectQueue("diagnostics").visible).toBe(1);
  });

  it("refuses the same idempotency key with a different body", async () => {
    const f = createCoreFixture();
    await f.supervisor.submit([{ taskType: "echo", input: { v: 1 }, idempotencyKey: "k-2" }]);
    await expect(
      f.supervisor.submit([{ taskType: "echo", input: { v: 2 }, idempotencyKey: "k-2" }]),
    ).rejects.toBeInstanceOf(IdempotencyConflictError);
    await f.settled();
    expect((await f.supervisor.statistics()).totalTasksSubmitted).toBe(1);
  });

  it("refuses an input over 256 KiB and writes nothing", async () => {
    const f = createCoreFixture();
    await expect(
      f.supervisor.submit([
        { taskType: "echo", input: { ok: 1 } },
        { taskType: "echo", input: "x".repeat(256 * 1024 + 1) },
      ]),
    ).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect((await f.store.list({ limit: 10 })).items).toHaveLength(0);
  });

  it("refuses a batch over 100 tasks and an Idempotency-Key header on a batch", async () => {
    const f = createCoreFixture();
    const tasks = Array.from({ length: 101 }, () => ({ taskType: "echo", input: {} }));
    await expect(f.supervisor.submit(tasks)).rejects.toBeInstanceOf(ValidationError);
    await expect(f.supervisor.submit(tasks.slice(0, 2), { idempotencyKey: "k" })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it("cancels a submitted task at once and refuses to cancel it again", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();

    const canceled = await f.supervisor.cancel(taskId);

    expect(canceled).toMatchObject({ status: "canceled", cancelRequested: true });
    await expect(f.supervisor.cancel(taskId)).rejects.toBeInstanceOf(AlreadyTerminalError);
    await f.settled();
    expect(await f.supervisor.statistics()).toMatchObject({ tasksCanceled: 1, tasksPending: 0 });
  });

  it("answers not found for an unknown task", async () => {
    const f = createCoreFixture();
    await expect(f.supervisor.get("nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(f.supervisor.cancel("nope")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("refuses a list limit outside 1..100", async () => {
    const f = createCoreFixture();
    await expect(f.supervisor.list({ limit: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(f.supervisor.list({ limit: 101 })).rejects.toBeInstanceOf(ValidationError);
  });

  it("refuses a whole batch in which one idempotency key was used with a different body, writing nothing", async () => {
    const f = createCoreFixture();
    await f.supervisor.submit([{ taskType: "echo", input: { v: 1 }, idempotencyKey: "taken" }]);
    await f.queue.ack([await f.receiveOne()]);

    await expect(
      f.supervisor.submit([
        { taskType: "echo", input: { v: 2 }, idempotencyKey: "fresh" },
        { taskType: "echo", input: { v: 3 }, idempotencyKey: "taken" },
      ]),
    ).rejects.toBeInstanceOf(IdempotencyConflictError);

    expect((await f.store.list({ limit: 10 })).items.map((t) => t.idempotencyKey)).toEqual(["taken"]);
    await f.settled();
    expect((await f.supervisor.statistics()).totalTasksSubmitted).toBe(1);
    expect(f.queue.inspectQueue("diagnostics").visible).toBe(0);
  });

  it("enqueues the tasks a batch created even when the store fails another of them", async () => {
    const f = createCoreFixture();
    const create = f.store.create.bind(f.store);
    vi.spyOn(f.store, "create").mockImplementation(async (request) => {
      if ((request.task.input as { v: number }).v === 2) throw new Error("store unavailable");
      return create(request);
    });

    await expect(
      f.supervisor.submit([
        { taskType: "echo", input: { v: 1 } },
        { taskType: "echo", input: { v: 2 } },
      ]),
    ).rejects.toThrow("store unavailable");

    const [created] = (await f.store.list({ limit: 10 })).items;
    expect(JSON.parse((await f.receiveOne()).body).taskId).toBe(created?.taskId);
  });

  it("refuses a timeoutSeconds longer than its capability's workers run, naming the limit", async () => {
    const f = createCoreFixture();
    const limit = f.config.capabilities.find((c) => c.name === "diagnostics")?.workerTimeoutSeconds ?? 0;
    const attempt = f.supervisor.submit([{ taskType: "echo", input: {}, timeoutSeconds: limit + 1 }]);
    await expect(attempt).rejects.toBeInstanceOf(ValidationError);
    await expect(attempt).rejects.toMatchObject({
      details: [
        { path: "timeoutSeconds", message: `at most ${limit} for capability diagnostics, got ${limit + 1}` },
      ],
    });
    expect((await f.store.list({ limit: 10 })).items).toHaveLength(0);
  });
});

describe("Sweeper", () => {
  it("puts a task whose worker's lease expired back on its queue for another attempt", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ timeoutSeconds: 1 });
    const crashed = f.dispatcher({ echo: () => new Promise(() => {}) }, { cancelCheckIntervalMs: 60_000 });
    void crashed.process(await f.receiveOne());
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(f.store.inspect(taskId)?.status).toBe("working");

    f.clock.advance(60_000);
    const report = await f.sweeper.sweep();

    expect(report.expiredLeases).toBe(1);
    expect(f.store.inspect(taskId)).toMatchObject({ status: "submitted", attempts: 1 });
    // The crashed worker's message also comes back once its visibility runs out; either copy may run it.
    const messages = await f.queue.receive("diagnostics", { maxMessages: 10, waitSeconds: 0 });
    expect(messages.map((m) => JSON.parse(m.body))).toContainEqual({ taskId, attempt: 2 });
  });

  it("fails a task with code timeout when its lease expired on the last attempt", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ timeoutSeconds: 1, maxAttempts: 1 });
    void f
      .dispatcher({ echo: () => new Promise(() => {}) }, { cancelCheckIntervalMs: 60_000 })
      .process(await f.receiveOne());
    await new Promise((resolve) => setTimeout(resolve, 20));

    f.clock.advance(60_000);
    await f.sweeper.sweep();

    expect(f.store.inspect(taskId)).toMatchObject({ status: "failed", error: { code: "timeout" } });
  });

  it("enqueues again a task stuck in submitted, once per sweep window", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    await f.queue.ack([await f.receiveOne()]); // the message is lost

    f.clock.advance((f.config.stuckSubmittedSeconds + 1) * 1000);
    const first = await f.sweeper.sweep();
    const second = await f.sweeper.sweep();

    expect(first.reenqueued).toBe(1);
    expect(second.reenqueued).toBe(0);
    expect(JSON.parse((await f.receiveOne()).body).taskId).toBe(taskId);
  });
  it("finds expired leases beyond the first listing page (the oldest tasks are on the last page)", async () => {
    const f = createCoreFixture();
    const taskIds: string[] = [];
    for (let i = 0; i < 12; i++) {
      taskIds.push(await f.submitOne({ timeoutSeconds: 1 }));
      f.clock.advance(1_000);
    }
    const hang = f.dispatcher({ echo: () => new Promise(() => {}) }, { cancelCheckIntervalMs: 60_000 });
    for (let i = 0; i < 12; i++) void hang.process(await f.receiveOne());
    await vi.waitFor(() =>
      expect(taskIds.every((id) => f.store.inspect(id)?.status === "working")).toBe(true),
    );
    const { Sweeper } = await import("#shared/core/sweeper");
    const sweeper = new Sweeper({
      store: f.store,
      queue: f.queue,
      config: f.config,
      clock: f.clock,
      pageSize: 5,
    });

    f.clock.advance(60_000);
    const report = await sweeper.sweep();

    expect(report.expiredLeases).toBe(12);
    expect(taskIds.every((id) => f.store.inspect(id)?.status === "submitted")).toBe(true);
  });
});
