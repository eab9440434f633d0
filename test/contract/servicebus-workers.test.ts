import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { ServiceBusLeaseLostError } from "#shared/adapters/azure/errors";
import { ServiceBusTaskQueue } from "#shared/adapters/azure/service-bus-task-queue";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { platformConfig } from "#shared/agents/workers";
import type { PlatformConfig } from "#shared/config/platform";
import { Dispatcher, type TaskContext, type TaskHandler } from "#shared/core/dispatcher";
import { Supervisor } from "#shared/core/supervisor";
import type { ReceivedTaskMessage } from "#shared/ports/task-queue";
import { defineWorker } from "#shared/worker/define-worker";
import { type RunningPoller, startPoller } from "#shared/worker/poller";
import { settleMessage } from "#shared/worker/settle";
import { ManualClock, silentLogger } from "#test/support/core-fixture";
import { createTestQueue, inspectEntity, serviceBusClient, uniqueEntityName } from "#test/support/servicebus";

/**
 * Workers on Service Bus: the platform's dispatcher and poller, unchanged, on ServiceBusTaskQueue
 * (the real SDK against the local peer), with the task store of the embedded runtime. Each test gets
 * fresh queues.
 */

const client = serviceBusClient();
const config: PlatformConfig = { ...platformConfig, leaseGraceSeconds: 1 };
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((cleanup) => cleanup()));
});

afterAll(async () => {
  await client.close();
});

const echo: TaskHandler = async (input: unknown, ctx: TaskContext) => ({
  value: (input as { value: unknown }).value,
  attempt: ctx.attempt,
});

async function system(options: { lockDurationSeconds?: number; maxDeliveryCount?: number } = {}) {
  const lockDurationSeconds = options.lockDurationSeconds ?? 30;
  const maxDeliveryCount = options.maxDeliveryCount ?? config.maxReceiveCount;
  const queues = {
    diagnostics: uniqueEntityName("agentry-diagnostics"),
    "diagnostics-high": uniqueEntityName("agentry-diagnostics-high"),
  };
  for (const name of Object.values(queues)) {
    await createTestQueue({ name, lockDurationSeconds, maxDeliveryCount });
  }
  const newQueue = (believedLockSeconds = lockDurationSeconds) => {
    const queue = new ServiceBusTaskQueue({
      client,
      queues,
      maxDeliveryCount,
      lockDurationSeconds: believedLockSeconds,
    });
    cleanups.push(() => queue.close());
    return queue;
  };
  const queue = newQueue();
  const clock = new ManualClock();
  const store = new MemoryTaskStore();
  const supervisor = new Supervisor({ store, queue, config, clock });
  const dispatcher = (
    handlers: Record<string, TaskHandler>,
    agentId = "agent-1",
    cancelCheckIntervalMs = 50,
  ) =>
    new Dispatcher(
      {
        store,
        config,
        clock,
        agentId,
        logger: silentLogger,
        random: () => 0.5,
        cancelCheckIntervalMs,
      },
      handlers,
    );
  const submit = async (input: Record<string, unknown> = {}) => {
    const [accepted] = await supervisor.submit([{ taskType: "echo", input: { value: 1 }, ...input }]);
    if (!accepted) throw new Error("nothing accepted");
    return accepted.taskId;
  };
  const poller = (handler: TaskHandler, agentId = "worker-1"): RunningPoller => {
    const running = startPoller(
      defineWorker({
        agentType: "diagnostics-worker",
        capabilities: ["diagnostics"],
        maxConcurrentTasks: 2,
        handlers: { echo: handler },
      }),
      {
        store,
        queue,
        config,
        logger: silentLogger,
        agentId,
        waitSeconds: 1,
        cancelCheckIntervalMs: 50,
        clock,
      },
    );
    cleanups.push(() => running.stop());
    return running;
  };
  const receiveOne = async (from = queue, visibilitySeconds = 30): Promise<ReceivedTaskMessage> => {
    const [message] = await from.receive("diagnostics", {
      maxMessages: 1,
      waitSeconds: 5,
      visibilitySeconds,
    });
    if (!message) throw new Error("no message on diagnostics");
    return message;
  };
  const inspect = () => inspectEntity(queues.diagnostics);
  return {
    queues,
    queue,
    newQueue,
    clock,
    store,
    supervisor,
    dispatcher,
    submit,
    poller,
    receiveOne,
    inspect,
  };
}

async function waitFor(done: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs} ms`);
    await sleep(25);
  }
}

describe("workers on Service Bus (the real SDK against the local peer)", () => {
  it("a poller takes a submitted task from the Service Bus queue and completes it", async () => {
    const s = await system();
    const taskId = await s.submit({ input: { value: 42 } });

    s.poller(echo);
    await waitFor(async () => (await s.store.get(taskId))?.status === "completed");
    await waitFor(async () => (await s.inspect()).locked === 0);

    expect(await s.store.get(taskId)).toMatchObject({
      status: "completed",
      attempts: 1,
      result: { output: { value: 42, attempt: 1 } },
    });
    expect(await s.inspect()).toMatchObject({ active: 0, locked: 0, scheduled: 0, deadLettered: [] });
  });

  it("duplicate send: the same task and attempt sent twice is dropped by duplicate detection", async () => {
    const s = await system();
    const taskId = await s.submit();

    const failures = await s.queue.send([{ queue: "diagnostics", body: { taskId, attempt: 1 } }]);

    expect(failures).toEqual([]);
    expect(await s.inspect()).toMatchObject({ active: 1 });
  });

  it("duplicate delivery: a task whose message arrives twice runs once and records one result", async () => {
    const s = await system();
    const taskId = await s.submit();
    // At-least-once delivery: a second message for the same task, which duplicate detection does not drop.
    const sender = client.createSender(s.queues.diagnostics);
    await sender.sendMessages({ body: { taskId, attempt: 1 }, messageId: `${taskId}:again` });
    await sender.close();
    const handler = vi.fn(echo);

    s.poller(handler);
    await waitFor(async () => (await s.store.get(taskId))?.status === "completed");
    await waitFor(async () => {
      const state = await s.inspect();
      return state.active === 0 && state.locked === 0;
    });

    expect(handler).toHaveBeenCalledTimes(1);
    expect(await s.store.get(taskId)).toMatchObject({ status: "completed", attempts: 1 });
    expect((await s.inspect()).deadLettered).toEqual([]);
  });

  it("lock lost mid-task: another worker takes the redelivered message over, and only its result counts", async () => {
    const s = await system({ lockDurationSeconds: 2 });
    const taskId = await s.submit({ timeoutSeconds: 5 });
    // Worker A stalls: it believes the lock lasts a minute, so it never renews the 2-second lock.
    const stalled = s.newQueue(60);
    const messageA = await s.receiveOne(stalled, 30);
    let releaseA: () => void = () => undefined;
    const runA = s
      // A does not look at its lease while it stalls: it learns of the takeover only when it finishes.
      .dispatcher(
        { echo: () => new Promise((resolve) => (releaseA = () => resolve({ by: "A" }))) },
        "A",
        60_000,
      )
      .process(messageA);
    await waitFor(async () => (await s.store.get(taskId))?.status === "working");

    // The lock runs out on the broker: worker B receives the same message; A's task lease ran out too.
    const messageB = await s.receiveOne(s.queue, 30);
    s.clock.advance(10_000);
    const settlementB = await s.dispatcher({ echo: async () => ({ by: "B" }) }, "B").process(messageB);
    await settleMessage(s.queue, messageB, settlementB);
    releaseA();
    const settlementA = await runA;

    expect(messageB.messageId).toBe(messageA.messageId);
    expect(messageB.receiveCount).toBe(2);
    expect(settlementB).toEqual({ kind: "ack", reason: "task completed" });
    expect(settlementA).toEqual({ kind: "ack", reason: "lease lost; the result was refused" });
    await expect(settleMessage(stalled, messageA, settlementA)).rejects.toThrow(ServiceBusLeaseLostError);
    expect(await s.store.get(taskId)).toMatchObject({
      status: "completed",
      attempts: 2,
      workerAgentId: "B",
      result: { output: { by: "B" } },
    });
    expect(await s.inspect()).toMatchObject({ active: 0, locked: 0, deadLettered: [] });
  });

  it("abandon: a released message is delivered again at once, with the same id and one more receive", async () => {
    const s = await system();
    await s.submit();
    const first = await s.receiveOne();

    await s.queue.release(first, 0);
    const again = await s.receiveOne();

    expect(again.messageId).toBe(first.messageId);
    expect(again.receiveCount).toBe(2);
    expect(again.body).toBe(first.body);
  });

  it("max delivery count: a message abandoned that often goes to the dead-letter sub-queue with the reason", async () => {
    const s = await system({ maxDeliveryCount: 3 });
    await s.submit();

    for (let i = 0; i < 3; i++) await s.receiveOne(s.queue, 0);
    const state = await s.inspect();

    expect(state).toMatchObject({ active: 0, locked: 0 });
    expect(state.deadLettered).toEqual([
      expect.objectContaining({
        reason: "MaxDeliveryCountExceeded",
        description: "Message could not be consumed after 3 delivery attempts.",
      }),
    ]);
  });

  it("max delivery count holds across scheduled retries: the adapter carries the count in the message", async () => {
    const s = await system({ maxDeliveryCount: 2 });
    await s.submit();

    const first = await s.receiveOne();
    await s.queue.release(first, 1);
    const second = await s.receiveOne();
    await s.queue.release(second, 1);
    await sleep(1_300);
    const third = await s.queue.receive("diagnostics", { maxMessages: 1, waitSeconds: 1 });
    const state = await s.inspect();

    expect([first.receiveCount, second.receiveCount]).toEqual([1, 2]);
    expect(third).toEqual([]);
    expect(state.deadLettered).toEqual([expect.objectContaining({ reason: "MaxDeliveryCountExceeded" })]);
  });

  it("a task out of attempts is dead-lettered with the dispatcher's reason", async () => {
    const s = await system();
    const taskId = await s.submit({ maxAttempts: 1 });
    const message = await s.receiveOne();

    const settlement = await s
      .dispatcher({
        echo: () => {
          throw new Error("input can never be processed");
        },
      })
      .process(message);
    await settleMessage(s.queue, message, settlement);
    const state = await s.inspect();

    expect(settlement.kind).toBe("dead-letter");
    expect((await s.store.get(taskId))?.status).toBe("failed");
    expect(state).toMatchObject({ active: 0, locked: 0 });
    expect(state.deadLettered).toEqual([
      expect.objectContaining({ reason: "attempts exhausted (1): input can never be processed" }),
    ]);
  });

  it("scheduled retry with backoff: a failed attempt comes back as a scheduled message, then succeeds", async () => {
    const s = await system();
    const taskId = await s.submit({ maxAttempts: 3 });
    const first = await s.receiveOne();
    let calls = 0;
    const flaky: TaskHandler = async (input, ctx) => {
      calls++;
      if (ctx.attempt === 1) throw new Error("transient failure");
      return echo(input, ctx);
    };

    const settlement = await s.dispatcher({ echo: flaky }).process(first);
    await settleMessage(s.queue, first, settlement);
    const during = await s.inspect();
    const tooEarly = await s.queue.receive("diagnostics", { maxMessages: 1, waitSeconds: 0 });
    const retry = await s.receiveOne();
    const retried = await s.dispatcher({ echo: flaky }).process(retry);
    await settleMessage(s.queue, retry, retried);

    expect(settlement).toMatchObject({ kind: "retry", attempt: 2 });
    expect(settlement.kind === "retry" && settlement.delaySeconds > 0).toBe(true);
    expect(during).toMatchObject({ active: 0, locked: 0, scheduled: 1 });
    expect(tooEarly).toEqual([]);
    expect(JSON.parse(retry.body)).toEqual({ taskId, attempt: 2 });
    expect(calls).toBe(2);
    expect(await s.store.get(taskId)).toMatchObject({ status: "completed", attempts: 2 });
    expect(await s.inspect()).toMatchObject({ active: 0, locked: 0, scheduled: 0, deadLettered: [] });
  });

  it("cancel reaches a running worker: its handler's signal fires and the task ends canceled", async () => {
    const s = await system();
    const taskId = await s.submit({ timeoutSeconds: 30 });
    let sawAbort = false;
    s.poller(
      (_input, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => {
            sawAbort = true;
            reject(ctx.signal.reason);
          });
        }),
    );
    await waitFor(async () => (await s.store.get(taskId))?.status === "working");

    await s.supervisor.cancel(taskId);
    await waitFor(async () => (await s.store.get(taskId))?.status === "canceled");
    await waitFor(async () => (await s.inspect()).locked === 0);

    expect(sawAbort).toBe(true);
    expect(await s.inspect()).toMatchObject({ active: 0, locked: 0, deadLettered: [] });
  });
});
