import { setTimeout as sleep } from "node:timers/promises";
import { GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { RunningStreamPoller } from "#local/dynamo-stream-poller";
import { toSqsRecord } from "#local/sqs-event-source";
import { DynamoTaskStore } from "#shared/adapters/aws/dynamo-task-store";
import { SqsTaskQueue } from "#shared/adapters/aws/sqs-task-queue";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { platformConfig } from "#shared/agents/workers";
import type { PlatformConfig } from "#shared/config/platform";
import { Dispatcher, type TaskContext, type TaskHandler } from "#shared/core/dispatcher";
import { Supervisor } from "#shared/core/supervisor";
import { TaskStream } from "#shared/core/task-stream";
import type { ReceivedTaskMessage } from "#shared/ports/task-queue";
import { defineWorker } from "#shared/worker/define-worker";
import { createLambdaWorkerHandler } from "#shared/worker/lambda-handler";
import {
  createTestQueues,
  createTestTable,
  localDynamoClient,
  localSqsClient,
  startTestTableStream,
} from "#test/support/aws";
import { ManualClock, silentLogger } from "#test/support/core-fixture";

/**
 * docs/reliability.md F1, F2, F4, F7 and F8 on the AWS adapters: the dispatcher and the Lambda batch
 * handler against DynamoDB Local and the SQS emulator, so the write paths are proven on the real
 * conditional writes, not only on the embedded store.
 */
const echo: TaskHandler = async (input: unknown, ctx: TaskContext) => ({
  value: (input as { value: unknown }).value,
  attempt: ctx.attempt,
});

describe("dispatch on the AWS adapters (DynamoDB Local + SQS emulator)", () => {
  const dynamodb = localDynamoClient();
  const sqs = localSqsClient();
  const config: PlatformConfig = { ...platformConfig, leaseGraceSeconds: 1 };
  const clock = new ManualClock();
  let store: DynamoTaskStore;
  let queue: SqsTaskQueue;
  let queueUrls: Record<string, string>;
  let supervisor: Supervisor;
  let bus: MemoryEventBus;
  let stream: RunningStreamPoller;

  beforeAll(async () => {
    const tableName = await createTestTable(dynamodb);
    const queues = await createTestQueues(sqs, ["diagnostics", "diagnostics-high"], {
      visibilityTimeoutSeconds: 30,
    });
    queueUrls = queues.queueUrls;
    store = new DynamoTaskStore({ client: dynamodb, tableName, clock });
    queue = new SqsTaskQueue({ client: sqs, queueUrls: queues.queueUrls, dlqUrls: queues.dlqUrls });
    bus = new MemoryEventBus({ recordPublished: true });
    supervisor = new Supervisor({ store, queue, config, clock });
    // Lifecycle events come from the table's stream, as on AWS.
    stream = await startTestTableStream(
      dynamodb,
      tableName,
      new TaskStream({ store, publisher: bus, publish: "all" }),
    );
  });

  afterAll(async () => {
    await stream.stop();
  });

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

  const submit = async (count: number, input: Record<string, unknown> = {}) => {
    const accepted = await supervisor.submit(
      Array.from({ length: count }, (_, i) => ({ taskType: "echo", input: { value: i }, ...input })),
    );
    return accepted.map((a) => a.taskId);
  };

  /** Receives the messages of the given tasks (others may be on the queue from earlier tests). */
  const receiveFor = async (taskIds: readonly string[]): Promise<ReceivedTaskMessage[]> => {
    const wanted = new Set(taskIds);
    const found: ReceivedTaskMessage[] = [];
    for (let i = 0; i < 20 && found.length < wanted.size; i++) {
      const batch = await queue.receive("diagnostics", {
        maxMessages: 10,
        waitSeconds: 1,
        visibilitySeconds: 30,
      });
      for (const m of batch) {
        if (wanted.has(JSON.parse(m.body).taskId)) found.push(m);
        else await queue.ack([m]);
      }
    }
    return found;
  };

  it("F1: runs a task once when its message is delivered twice", async () => {
    const [taskId] = await submit(1);
    const [message] = await receiveFor([taskId ?? ""]);
    if (!message) throw new Error("no message");
    const handler = vi.fn(echo);

    const first = await dispatcher({ echo: handler }).process(message);
    const second = await dispatcher({ echo: handler }).process(message);

    expect(first).toEqual({ kind: "ack", reason: "task completed" });
    expect(second).toEqual({ kind: "ack", reason: "task already completed" });
    expect(handler).toHaveBeenCalledTimes(1);
    expect(await store.get(taskId ?? "")).toMatchObject({ status: "completed", version: 3, attempts: 1 });
  });

  it("F2: lets only one of two workers that receive the same task at once run it", async () => {
    const [taskId] = await submit(1);
    const [message] = await receiveFor([taskId ?? ""]);
    if (!message) throw new Error("no message");
    // The winner's handler holds the task until the loser has decided: however slow the machine, the
    // loser then meets a live lease (not an already finished task).
    let loserDecided: () => void = () => undefined;
    const decided = new Promise<void>((resolve) => {
      loserDecided = resolve;
    });
    const handler = vi.fn(async (input: unknown, ctx: TaskContext) => {
      await Promise.race([decided, sleep(10_000)]);
      return echo(input, ctx);
    });

    const settlements = await Promise.all(
      ["a", "b"].map((agentId) =>
        dispatcher({ echo: handler }, agentId)
          .process(message)
          .finally(() => loserDecided()),
      ),
    );

    expect(handler).toHaveBeenCalledTimes(1);
    expect(settlements.map((s) => s.kind).sort()).toEqual(["ack", "release"]);
    expect((await store.get(taskId ?? ""))?.status).toBe("completed");
  });

  it("F4: refuses the result of a worker whose lease expired and was taken over", async () => {
    const [taskId] = await submit(1, { timeoutSeconds: 5 });
    const [message] = await receiveFor([taskId ?? ""]);
    if (!message) throw new Error("no message");
    let releaseSlow: () => void = () => {};
    const slowRun = dispatcher(
      { echo: () => new Promise((resolve) => (releaseSlow = () => resolve({ by: "slow" }))) },
      "slow",
      60_000,
    ).process(message);
    await vi.waitFor(async () => expect((await store.get(taskId ?? ""))?.status).toBe("working"));

    clock.advance(10_000);
    const takeover = await dispatcher({ echo: async () => ({ by: "fast" }) }, "fast").process(message);
    releaseSlow();
    const slow = await slowRun;

    expect(takeover).toEqual({ kind: "ack", reason: "task completed" });
    expect(slow).toEqual({ kind: "ack", reason: "lease lost; the result was refused" });
    expect(await store.get(taskId ?? "")).toMatchObject({
      status: "completed",
      attempts: 2,
      workerAgentId: "fast",
      result: { output: { by: "fast" } },
    });
  });

  it("F7: reports exactly the two failed records of a batch of 10 and settles the other eight", async () => {
    const taskIds = await submit(10);
    const queueUrl = queueUrls.diagnostics ?? "";
    const arn = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
    );
    const queueArn = arn.Attributes?.QueueArn ?? "";
    const wanted = new Set(taskIds);
    const records = [];
    for (let i = 0; i < 20 && records.length < 10; i++) {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ["All"],
        }),
      );
      for (const m of received.Messages ?? []) {
        if (wanted.has(JSON.parse(m.Body ?? "{}").taskId))
          records.push(toSqsRecord(m, queueArn, "us-east-1"));
      }
    }
    expect(records).toHaveLength(10);
    // Items 3 and 7 are held by another live worker: this batch must hand them back, and only them.
    const held = [records[2], records[7]].map((r) => JSON.parse(r?.body ?? "{}").taskId as string);
    for (const taskId of held) {
      const task = await store.get(taskId);
      if (!task) throw new Error("missing task");
      const claimed = await store.transition({
        taskId,
        from: ["submitted"],
        to: "working",
        expectedVersion: task.version,
        patch: {
          leaseToken: "other-worker",
          leaseExpiresAt: new Date(clock.now().getTime() + 60_000).toISOString(),
          attempts: 1,
        },
      });
      expect(claimed.ok).toBe(true);
    }
    const worker = defineWorker({
      agentType: "diagnostics",
      capabilities: ["diagnostics"],
      maxConcurrentTasks: 10,
      handlers: { echo },
    });
    const queueName = queueUrl.slice(queueUrl.lastIndexOf("/") + 1);
    const handler = createLambdaWorkerHandler(worker, {
      store,
      queue,
      config,
      logger: silentLogger,
      queueNames: { [queueName]: "diagnostics" },
    });

    const response = await handler({ Records: records });

    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [records[2]?.messageId, records[7]?.messageId].sort(),
    );
    for (const taskId of taskIds) {
      const task = await store.get(taskId);
      expect(task?.status).toBe(held.includes(taskId) ? "working" : "completed");
    }
  });

  it("F8: when cancels race completion exactly one terminal state wins for every task", async () => {
    const taskIds = await submit(8);
    const messages = await receiveFor(taskIds);
    const worker = dispatcher({ echo });

    const results = await Promise.allSettled(
      taskIds.flatMap((taskId) => {
        const message = messages.find((m) => JSON.parse(m.body).taskId === taskId);
        return [
          message ? worker.process(message) : Promise.resolve(undefined),
          supervisor.cancel(taskId),
          supervisor.cancel(taskId),
        ];
      }),
    );

    expect(
      results
        .filter((r) => r.status === "rejected")
        .every((r) => (r.reason as Error).name === "AlreadyTerminalError"),
    ).toBe(true);
    for (const taskId of taskIds) {
      const task = await store.get(taskId);
      expect(["completed", "canceled"]).toContain(task?.status);
      expect(task?.status === "completed" ? task.result?.success : task?.result).toBe(
        task?.status === "completed" ? true : undefined,
      );
    }
  });

  it("names the outcome event after the version written, when heartbeats and a cancel request moved it", async () => {
    const [taskId = ""] = await submit(1);
    const [message] = await receiveFor([taskId]);
    if (!message) throw new Error("no message");
    const worker = dispatcher(
      {
        echo: async (input, ctx) => {
          await ctx.heartbeat();
          await supervisor.cancel(taskId); // behind the worker's back: its watcher checks once a minute
          return echo(input, ctx);
        },
      },
      "agent-1",
      60_000,
    );

    await worker.process(message);

    const stored = await store.get(taskId);
    // The event follows from the table's stream.
    const completedEvents = () =>
      bus
        .inspectPublished()
        .filter((e) => e.detail.taskId === taskId && e["detail-type"] === "Task Completed");
    await vi.waitFor(() => expect(completedEvents()).not.toEqual([]), { timeout: 20_000, interval: 50 });
    const completed = completedEvents();
    expect(stored).toMatchObject({ status: "completed", cancelRequested: true, version: 5 });
    expect(completed.map((e) => [e.id, e.detail.version])).toEqual([[`${taskId}:5`, 5]]);
  });
});
