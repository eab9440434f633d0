import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import type { Task } from "#shared/domain/task";
import type { Logger } from "#shared/ports/logger";
import type { TaskQueue } from "#shared/ports/task-queue";
import { defineWorker, type TaskHandler } from "#shared/worker/define-worker";
import { type PollerOptions, type RunningPoller, startPoller } from "#shared/worker/poller";
import { createCoreFixture, silentLogger } from "#test/support/core-fixture";

/**
 * The long-running poller (issue #12): bounded concurrency, renewed leases, release on shutdown,
 * backoff on failed and empty receives. On the embedded adapters; the same behaviour on DynamoDB
 * Local and the SQS emulator, in a separate process, is in test/e2e/container-worker.test.ts.
 */

const running: RunningPoller[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop({ drainMs: 0 })));
});

function setup(handler: TaskHandler, overrides: Partial<PollerOptions> = {}) {
  const f = createCoreFixture({ config: { leaseGraceSeconds: 1 } });
  const worker = defineWorker({
    agentType: "diagnostics",
    capabilities: ["diagnostics"],
    maxConcurrentTasks: 8,
    handlers: { echo: handler },
  });
  const poll = (agentId: string, more: Partial<PollerOptions> = {}) => {
    const poller = startPoller(worker, {
      store: f.store,
      queue: f.queue,
      config: f.config,
      logger: silentLogger,
      agentId,
      waitSeconds: 0.05,
      cancelCheckIntervalMs: 50,
      ...overrides,
      ...more,
    });
    running.push(poller);
    return poller;
  };
  return { f, poll };
}

async function waitFor<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`not met in ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await sleep(20);
    value = await read();
  }
  return value;
}

const isTerminal = (task: Task | undefined) =>
  task !== undefined && ["completed", "failed", "canceled"].includes(task.status);

function recordingLogger(): Logger & {
  warnings: { message: string; extra?: Record<string, unknown> }[];
} {
  const warnings: { message: string; extra?: Record<string, unknown> }[] = [];
  return { ...silentLogger, warnings, warn: (message, extra) => void warnings.push({ message, extra }) };
}

describe("startPoller", () => {
  it("runs at most `concurrency` tasks at once and completes them all", async () => {
    let active = 0;
    let peak = 0;
    const { f, poll } = setup(async (input) => {
      active++;
      peak = Math.max(peak, active);
      await sleep(100);
      active--;
      return input;
    });
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => f.submitOne({ input: { i } })));

    poll("p-1", { concurrency: 2 });
    const tasks = await Promise.all(ids.map((id) => waitFor(() => f.store.get(id), isTerminal)));

    expect(tasks.map((t) => t?.status)).toEqual(ids.map(() => "completed"));
    expect(peak).toBe(2);
  });

  it("refuses a concurrency or lease it cannot honour", () => {
    const { poll } = setup(async () => 1);

    expect(() => poll("p-1", { concurrency: 0 })).toThrow(/concurrency/);
    expect(() => poll("p-2", { leaseSeconds: 1 })).toThrow(/leaseSeconds/);
  });

  it("renews the task's lease and its message's visibility while a handler outlives the lease", async () => {
    const { f, poll } = setup(async () => {
      await sleep(4_500);
      return "done";
    });
    const id = await f.submitOne({ timeoutSeconds: 30 });

    poll("p-1", { leaseSeconds: 3 });
    const claimed = await waitFor(
      () => f.store.get(id),
      (t) => t?.status === "working",
    );
    const firstLease = Date.parse(claimed?.leaseExpiresAt ?? "");
    await sleep(3_500); // past the first lease
    const during = await f.store.get(id);
    const queueDuring = f.queue.inspectQueue("diagnostics");
    const done = await waitFor(() => f.store.get(id), isTerminal);

    expect(firstLease - Date.parse(claimed?.startedAt ?? "")).toBeLessThanOrEqual(3_000);
    expect(Date.parse(during?.leaseExpiresAt ?? "")).toBeGreaterThan(Date.now());
    expect({ visible: queueDuring.visible, inFlight: queueDuring.inFlight }).toEqual({
      visible: 0,
      inFlight: 1,
    });
    expect(done).toMatchObject({ status: "completed", attempts: 1, result: { output: "done" } });
  });

  it("lets a running task finish when stopped without a drain limit", async () => {
    const { f, poll } = setup(async () => {
      await sleep(300);
      return "finished";
    });
    const id = await f.submitOne();
    const poller = poll("p-1");
    await waitFor(
      () => f.store.get(id),
      (t) => t?.status === "working",
    );

    await poller.stop();

    expect(await f.store.get(id)).toMatchObject({ status: "completed", result: { output: "finished" } });
    expect(poller.health().state).toBe("stopped");
  });

  it("releases a task that outlives the drain: its handler is aborted, another poller takes it over at once", async () => {
    const reasons: unknown[] = [];
    const { f, poll } = setup(async (_input, ctx) => {
      if (ctx.attempt === 1) {
        await new Promise((_resolve, reject) =>
          ctx.signal.addEventListener("abort", () => {
            reasons.push((ctx.signal.reason as Error).message);
            reject(ctx.signal.reason);
          }),
        );
      }
      return { attempt: ctx.attempt };
    });
    const id = await f.submitOne({ timeoutSeconds: 60, maxAttempts: 3 });
    const first = poll("p-1", { leaseSeconds: 30 });
    await waitFor(
      () => f.store.get(id),
      (t) => t?.status === "working",
    );

    const stopping = first.stop({ drainMs: 100 });
    expect(first.health().state).toBe("draining");
    await stopping;
    const released = await f.store.get(id);
    const queueAfter = f.queue.inspectQueue("diagnostics");
    poll("p-2", { leaseSeconds: 30 });
    const done = await waitFor(() => f.store.get(id), isTerminal, 5_000);

    expect(reasons).toEqual(["the worker is shutting down"]);
    expect(released?.status).toBe("working");
    expect(Date.parse(released?.leaseExpiresAt ?? "")).toBeLessThanOrEqual(Date.now());
    expect(queueAfter.visible).toBe(1);
    expect(done).toMatchObject({
      status: "completed",
      attempts: 2,
      workerAgentId: "p-2",
      result: { output: { attempt: 2 } },
    });
  });

  it("backs off, doubling with full jitter, while receives are throttled, then carries on", async () => {
    const logger = recordingLogger();
    const { f, poll } = setup(async (input) => input);
    let throttled = 4;
    const queue = withReceive(f.queue, {
      receive: async (name, options) => {
        if (throttled > 0) {
          throttled--;
          throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
        }
        return f.queue.receive(name, options);
      },
    });
    const id = await f.submitOne();

    poll("p-1", { queue, logger, random: () => 1, backoff: { errorBaseMs: 10, errorMaxMs: 60 } });
    const done = await waitFor(() => f.store.get(id), isTerminal);

    expect(logger.warnings.map((w) => [w.message, w.extra?.delayMs])).toEqual([
      ["receive throttled; backing off", 10],
      ["receive throttled; backing off", 20],
      ["receive throttled; backing off", 40],
      ["receive throttled; backing off", 60],
    ]);
    expect(done?.status).toBe("completed");
  });

  it("backs off on empty receives that come back before their long poll would have ended", async () => {
    const { f, poll } = setup(async (input) => input);
    let receives = 0;
    const queue = withReceive(f.queue, {
      // An endpoint that ignores the wait: every empty answer comes back at once.
      receive: async () => {
        receives++;
        return [];
      },
    });

    poll("p-1", { queue, waitSeconds: 1 });
    await sleep(1_500);

    // Two queues (high tier, normal) per round; rounds pause 0, 100, 200, 400, 800 ms…: a spinning
    // loop would make thousands of calls.
    expect(receives).toBeGreaterThan(2);
    expect(receives).toBeLessThan(30);
  });
});

/**
 * The fixture's queue with `receive` replaced. Its methods are bound here: a spread copies only the
 * instance's own fields, and the memory queue keeps its messages on `this`.
 */
function withReceive(queue: TaskQueue, override: Pick<TaskQueue, "receive">): TaskQueue {
  return {
    ...queue,
    send: (m) => queue.send(m),
    extendLease: (m, s) => queue.extendLease(m, s),
    ack: (m) => queue.ack(m),
    release: (m, s) => queue.release(m, s),
    deadLetter: (m, r) => queue.deadLetter(m, r),
    ...override,
  };
}
