import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { DynamoAgentRegistry } from "#shared/adapters/aws/dynamo-agent-registry";
import { DynamoTaskStore } from "#shared/adapters/aws/dynamo-task-store";
import { SqsTaskQueue } from "#shared/adapters/aws/sqs-task-queue";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { platformConfig } from "#shared/agents/workers";
import { type PlatformConfig, queuesForCapability } from "#shared/config/platform";
import { Supervisor } from "#shared/core/supervisor";
import { TaskStream } from "#shared/core/task-stream";
import type { Task, TaskInput } from "#shared/domain/task";
import {
  createTestQueues,
  createTestTable,
  localDynamoClient,
  localSqsClient,
  startTestTableStream,
} from "#test/support/aws";
import { type ContainerProcess, startContainerProcess } from "#test/support/container-process";
import {
  type EventBridgeStandIn,
  eventBusArns,
  startEventBridgeStandIn,
} from "#test/support/eventbridge-stand-in";
import { type FaultProxy, SQS_THROTTLED, startFaultProxy } from "#test/support/fault-proxy";
import { bundleContainerEntry } from "../../infra/bundling/container-bundle.ts";
import { ESM_REQUIRE_BANNER, PROJECT_ROOT } from "../../infra/constructs/agentry-function.ts";

/**
 * The research agent's container entry (functions/containers/worker.ts), bundled as the image
 * bundles it and run as a separate process on DynamoDB Local and the SQS emulator (issue #12):
 * SIGTERM drains or releases, SIGKILL loses nothing, throttling and a short DynamoDB outage neither
 * lose nor duplicate a result.
 */

const REGION = "us-east-1";
const BUS = "agentry-container-test";
/** Short leases so that takeovers happen within a test: the lease is renewed every second. */
const CONFIG: PlatformConfig = { ...platformConfig, leaseGraceSeconds: 1, pollerLeaseSeconds: 3 };
/** What ECS would wait after SIGTERM before SIGKILL in this test's deployment. */
const STOP_TIMEOUT_MS = 30_000;
const TERMINAL = new Set(["completed", "failed", "canceled", "rejected"]);

const dynamodb = localDynamoClient();
const sqs = localSqsClient();
let outdir: string;
let bundle: string;
let tableName: string;
let bus: EventBridgeStandIn;
/** Lifecycle events, as the table's stream consumer derives them from the workers' writes. */
let events: MemoryEventBus;
let stream: Awaited<ReturnType<typeof startTestTableStream>>;
const processes: ContainerProcess[] = [];
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), "agentry-container-"));
  bundle = bundleContainerEntry({
    entry: fileURLToPath(new URL("../../functions/containers/worker.ts", import.meta.url)),
    outdir,
    projectRoot: PROJECT_ROOT,
    banner: ESM_REQUIRE_BANNER,
  });
  tableName = await createTestTable(dynamodb, "agentry-container");
  bus = await startEventBridgeStandIn({ busArns: eventBusArns([BUS]), subscriptionBus: BUS });
  events = new MemoryEventBus({ recordPublished: true });
  stream = await startTestTableStream(
    dynamodb,
    tableName,
    new TaskStream({
      store: new DynamoTaskStore({ client: dynamodb, tableName, shards: CONFIG.shards }),
      publisher: events,
      publish: "all",
    }),
  );
}, 60_000);

afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.stop("SIGKILL")));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await stream?.stop();
  await bus?.close();
  rmSync(outdir, { recursive: true, force: true });
  dynamodb.destroy();
  sqs.destroy();
});

/** Fresh research queues, a supervisor to submit with, and the environment ECS would give the container. */
async function setup(options: { drainSeconds: number; faults?: boolean }) {
  const { queueUrls, dlqUrls } = await createTestQueues(sqs, queuesForCapability("research"), {
    visibilityTimeoutSeconds: 3,
  });
  const store = new DynamoTaskStore({ client: dynamodb, tableName, shards: CONFIG.shards });
  const queue = new SqsTaskQueue({ client: sqs, queueUrls, dlqUrls });
  const supervisor = new Supervisor({
    store,
    queue,
    config: CONFIG,
  });
  const registry = new DynamoAgentRegistry({ client: dynamodb, tableName });
  const dynamoProxy = options.faults ? await startFaultProxy(inject("dynamoEndpoint")) : undefined;
  const sqsProxy = options.faults ? await startFaultProxy(inject("sqsEndpoint")) : undefined;
  for (const proxy of [dynamoProxy, sqsProxy]) if (proxy) proxies.push(proxy);
  const env: Record<string, string> = {
    ...(process.env.PATH === undefined ? {} : { PATH: process.env.PATH }),
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_ENDPOINT_URL_DYNAMODB: dynamoProxy?.url ?? inject("dynamoEndpoint"),
    AWS_ENDPOINT_URL_SQS: sqsProxy?.url ?? inject("sqsEndpoint"),
    AWS_ENDPOINT_URL_EVENTBRIDGE: bus.url,
    TABLE_NAME: tableName,
    EVENT_BUS_NAME: BUS,
    QUEUE_URLS: JSON.stringify(queueUrls),
    DLQ_URLS: JSON.stringify(dlqUrls),
    STORE_SHARDS: String(CONFIG.shards),
    PLATFORM_CONFIG: JSON.stringify(CONFIG),
    CAPABILITIES: "research",
    DRAIN_SECONDS: String(options.drainSeconds),
    HEALTH_PORT: "0",
    POWERTOOLS_SERVICE_NAME: "research",
  };
  const start = async () => {
    const started = await startContainerProcess(bundle, env);
    processes.push(started);
    return started;
  };
  const submit = async (inputs: TaskInput[]) => (await supervisor.submit(inputs)).map((t) => t.taskId);
  const waitFor = async (id: string, accept: (task: Task | undefined) => boolean, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const task = await store.get(id);
      if (accept(task)) return task;
      if (Date.now() > deadline)
        throw new Error(`task ${id} not as expected in time: ${JSON.stringify(task)}`);
      await sleep(100);
    }
  };
  return { supervisor, store, registry, start, submit, waitFor, dynamoProxy, sqsProxy };
}

const research = (topic: string, steps: number, stepMs: number): TaskInput => ({
  taskType: "research",
  input: { topic, steps, stepMs },
  timeoutSeconds: 120,
  maxAttempts: 5,
});

const terminal = (task: Task | undefined) => TERMINAL.has(task?.status ?? "");

/**
 * Distinct Task Completed events of a task (the table's stream may deliver a change twice; its event
 * id says so), once the first has arrived and a moment more for any second completion.
 */
async function completedEvents(taskId: string): Promise<number> {
  const count = () =>
    new Set(
      events
        .inspectPublished()
        .filter(
          (e) => e["detail-type"] === "Task Completed" && (e.detail as { taskId?: string }).taskId === taskId,
        )
        .map((e) => e.id),
    ).size;
  const deadline = Date.now() + 10_000;
  while (count() === 0 && Date.now() < deadline) await sleep(50);
  await sleep(500);
  return count();
}

/**
 * Tasks completed, per the statistics, once the table's stream has been read to its end: they follow
 * the stream (ADR 0007), so they are exact only once it has caught up with the writes before the call.
 */
async function completedCount(supervisor: Supervisor): Promise<number> {
  await stream.caughtUp();
  return (await supervisor.statistics()).tasksCompleted;
}

describe("the container worker, as a process on the emulators", () => {
  it("registers itself, answers its health check, and completes tasks", async () => {
    const s = await setup({ drainSeconds: 20 });
    const worker = await s.start();
    const [id = ""] = await s.submit([research("health", 2, 100)]);

    const health = await fetch(worker.healthUrl);
    const agent = await s.registry.get(worker.agentId);
    const done = await s.waitFor(id, terminal);

    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ state: "receiving" });
    expect(agent).toMatchObject({
      agentType: "researcher",
      status: "available",
      capabilities: { supportedTools: ["research"], supportedIntents: ["research"] },
    });
    expect(done).toMatchObject({
      status: "completed",
      attempts: 1,
      workerAgentId: worker.agentId,
      result: { output: { topic: "health", findings: ["health: finding 1", "health: finding 2"] } },
    });
  });

  it("on SIGTERM lets a running task finish, unregisters, and exits 0 before the stop timeout", async () => {
    const s = await setup({ drainSeconds: 20 });
    const worker = await s.start();
    const [id = ""] = await s.submit([research("drained", 4, 500)]);
    await s.waitFor(id, (t) => t?.status === "working");

    const sentAt = Date.now();
    const exit = await worker.stop("SIGTERM");
    const exitedAfterMs = Date.now() - sentAt;
    const task = await s.store.get(id);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitedAfterMs).toBeLessThan(STOP_TIMEOUT_MS);
    expect(task).toMatchObject({ status: "completed", attempts: 1, workerAgentId: worker.agentId });
    expect(await s.registry.get(worker.agentId)).toBeUndefined();
  });

  it("on SIGTERM releases a task that cannot finish within the drain; another container completes it once", async () => {
    const s = await setup({ drainSeconds: 1 });
    const first = await s.start();
    const [id = ""] = await s.submit([research("released", 8, 500)]);
    await s.waitFor(id, (t) => t?.status === "working");

    const exit = await first.stop("SIGTERM");
    const released = await s.store.get(id);
    const second = await s.start();
    const done = await s.waitFor(id, terminal);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(first.logs.map((l) => l.message)).toContain(
      "releasing tasks that could not finish before the stop timeout",
    );
    expect(released?.status).toBe("working");
    expect(Date.parse(released?.leaseExpiresAt ?? "")).toBeLessThanOrEqual(Date.now());
    expect(done).toMatchObject({ status: "completed", attempts: 2, workerAgentId: second.agentId });
    expect(await completedEvents(id)).toBe(1);
  }, 120_000);

  it("after a SIGKILL, another container completes the task once its lease expires: exactly one result", async () => {
    const s = await setup({ drainSeconds: 20 });
    const killed = await s.start();
    const before = await completedCount(s.supervisor);
    const [id = ""] = await s.submit([research("crash", 8, 500)]);
    const claimed = await s.waitFor(id, (t) => t?.status === "working");

    const exit = await killed.stop("SIGKILL");
    const survivor = await s.start();
    const done = await s.waitFor(id, terminal);
    const completed = await completedCount(s.supervisor);

    expect(exit.signal).toBe("SIGKILL");
    expect(claimed?.workerAgentId).toBe(killed.agentId);
    expect(done).toMatchObject({
      status: "completed",
      attempts: 2,
      workerAgentId: survivor.agentId,
      result: { output: { topic: "crash", attempt: 2 } },
    });
    expect(await completedEvents(id)).toBe(1);
    expect(completed - before).toBe(1);
  }, 120_000);

  it("survives SQS throttling and a few seconds of DynamoDB outage without losing or duplicating a result", async () => {
    const s = await setup({ drainSeconds: 20, faults: true });
    const worker = await s.start();
    const before = await completedCount(s.supervisor);

    // Throttled from the start: the worker cannot receive, and backs off.
    s.sqsProxy?.setFault((target) => (target === "AmazonSQS.ReceiveMessage" ? SQS_THROTTLED : "pass"));
    const ids = await s.submit(Array.from({ length: 6 }, (_, i) => research(`fault-${i}`, 3, 400)));
    await sleep(3_000);
    s.sqsProxy?.setFault(undefined);
    // Then DynamoDB goes away for 3 s while tasks are running.
    await s.waitFor(ids[0] ?? "", (t) => t?.status === "working" || terminal(t));
    s.dynamoProxy?.setFault(() => "drop");
    await sleep(3_000);
    s.dynamoProxy?.setFault(undefined);
    const done = await Promise.all(ids.map((id) => s.waitFor(id, terminal, 90_000)));
    const health = await fetch(worker.healthUrl);
    const after = await completedCount(s.supervisor);

    expect(s.sqsProxy?.faulted.length).toBeGreaterThan(0);
    expect(s.dynamoProxy?.faulted.length).toBeGreaterThan(0);
    expect(worker.logs.map((l) => l.message)).toContain("receive throttled; backing off");
    expect(done.map((t) => t?.status)).toEqual(ids.map(() => "completed"));
    expect(done.map((t) => (t?.result?.output as { topic?: string } | undefined)?.topic)).toEqual(
      ids.map((_, i) => `fault-${i}`),
    );
    // One completion counted per task: no task was completed twice.
    expect(after - before).toBe(ids.length);
    expect(health.status).toBe(200);
    expect(await worker.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  }, 150_000);
});
