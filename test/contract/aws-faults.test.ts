import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
  TransactionConflictException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { marshall } from "@aws-sdk/util-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import {
  ConfigurationError,
  createAwsAdapters,
  readAwsAdapterEnvironment,
} from "#shared/adapters/aws/clients";
import { DynamoTaskStore } from "#shared/adapters/aws/dynamo-task-store";
import { EventBridgePublisher, putEventsEntrySize } from "#shared/adapters/aws/eventbridge-bus";
import { attachRequestCounter, RequestCounter } from "#shared/adapters/aws/request-accounting";
import { SqsTaskQueue } from "#shared/adapters/aws/sqs-task-queue";
import { TaskKeys } from "#shared/adapters/aws/table-schema";
import { DependencyError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { Task } from "#shared/domain/task";
import { createTestTable, localDynamoClient } from "#test/support/aws";
import { buildTask } from "#test/support/tasks";

/**
 * Faults the emulators cannot produce (docs/reliability.md F9-F11 and SQS partial batch failures), injected
 * with aws-sdk-client-mock on one client instance each; plus a lost response on DynamoDB Local.
 */

const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const fastRetry = { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 5 };
const meta = { $metadata: {} };

const newTask = buildTask;

const storedItem = (task: Task) =>
  marshall({ ...task, ...TaskKeys.task(task.taskId) }, { removeUndefinedValues: true });

function mockedStore() {
  const client = new DynamoDBClient({ region: "us-east-1", credentials });
  const mock = mockClient(client);
  const store = new DynamoTaskStore({ client, tableName: "faults-table", retry: fastRetry });
  return { mock, store };
}

const conflict = () =>
  new TransactionCanceledException({
    ...meta,
    message:
      "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]",
    CancellationReasons: [{ Code: "TransactionConflict" }, { Code: "None" }],
  });
const throttled = () =>
  new ProvisionedThroughputExceededException({
    ...meta,
    message: "The level of configured provisioned throughput was exceeded",
  });

const claimRequest = (task: Task) => ({
  taskId: task.taskId,
  from: ["submitted" as const],
  to: "working" as const,
  expectedVersion: task.version,
  patch: { leaseToken: "lease-1", updatedAt: "2030-01-01T00:00:01.000Z" },
});

describe("F9: DynamoDB transaction conflicts and throttling", () => {
  it("retries a transition through throttling, resending the same single conditional update", async () => {
    const { mock, store } = mockedStore();
    const task = newTask();
    const updated: Task = {
      ...task,
      status: "working",
      version: 2,
      leaseToken: "lease-1",
      updatedAt: "2030-01-01T00:00:01.000Z",
    };
    mock
      .on(UpdateItemCommand)
      .rejectsOnce(throttled())
      .rejectsOnce(throttled())
      .resolves({ Attributes: storedItem(updated) });

    const outcome = await store.transition(claimRequest(task));

    const calls = mock.commandCalls(UpdateItemCommand).map((call) => call.args[0].input);
    expect(outcome).toEqual({ ok: true, task: updated });
    expect(calls).toHaveLength(3);
    expect(calls[1]).toEqual(calls[0]);
    expect(calls[2]).toEqual(calls[0]);
    expect(mock.commandCalls(GetItemCommand)).toHaveLength(0);
    expect(mock.commandCalls(TransactWriteItemsCommand)).toHaveLength(0);
  });

  it("retries a statistics batch through conflicts with the same token", async () => {
    const { mock, store } = mockedStore();
    mock.on(TransactWriteItemsCommand).rejectsOnce(conflict()).rejectsOnce(throttled()).resolves({});

    await store.applyCounters([{ id: "task-1#2", deltas: { "status:working": 1 } }]);

    const calls = mock.commandCalls(TransactWriteItemsCommand).map((call) => call.args[0].input);
    expect(calls).toHaveLength(3);
    expect(calls[0]?.ClientRequestToken).toEqual(expect.any(String));
    expect(calls[1]).toEqual(calls[0]);
    expect(calls[2]).toEqual(calls[0]);
  });

  it("retries a create through a conflict with the same token", async () => {
    const { mock, store } = mockedStore();
    const task = newTask({ idempotencyKey: "key-1" });
    mock.on(TransactWriteItemsCommand).rejectsOnce(conflict()).resolves({});

    const outcome = await store.create({ task });

    const calls = mock.commandCalls(TransactWriteItemsCommand).map((call) => call.args[0].input);
    expect(outcome).toEqual({ created: true, task });
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual(calls[0]);
  });

  it("retries a plain field update through a conflict with a transaction", async () => {
    const { mock, store } = mockedStore();
    const task = newTask();
    const updated = { ...task, cancelRequested: true, version: 2 };
    mock
      .on(UpdateItemCommand)
      .rejectsOnce(
        new TransactionConflictException({ ...meta, message: "Transaction is ongoing for the item" }),
      )
      .resolves({ Attributes: storedItem(updated) });

    const outcome = await store.transition({
      taskId: task.taskId,
      from: ["submitted"],
      patch: { cancelRequested: true },
    });

    expect(outcome).toEqual({ ok: true, task: updated });
    expect(mock.commandCalls(UpdateItemCommand)).toHaveLength(2);
  });

  it("does not retry a statistics batch whose marker exists, and counts only what the marker did not", async () => {
    const { mock, store } = mockedStore();
    mock
      .on(TransactWriteItemsCommand)
      .rejectsOnce(
        new TransactionCanceledException({
          ...meta,
          message: "Transaction cancelled [ConditionalCheckFailed, None]",
          CancellationReasons: [
            { Code: "ConditionalCheckFailed", Item: marshall({ pk: "COUNTED#t#1", last: "t#2" }) },
            { Code: "None" },
          ],
        }),
      )
      .resolves({});

    await store.applyCounters([
      { id: "t#1", deltas: { n: 1 } },
      { id: "t#2", deltas: { n: 1 } },
      { id: "t#3", deltas: { n: 1 } },
    ]);

    const calls = mock.commandCalls(TransactWriteItemsCommand).map((call) => call.args[0].input);
    expect(calls).toHaveLength(2);
    const second = calls[1]?.TransactItems ?? [];
    expect(second[0]?.Put?.Item?.pk).toEqual({ S: "COUNTED#t#3" });
    expect(second[1]?.Update?.ExpressionAttributeValues).toEqual({ ":c0": { N: "1" } });
  });

  it("does not retry a failed condition on a plain update and returns the item it saw", async () => {
    const { mock, store } = mockedStore();
    const task = newTask({ status: "completed", version: 4 });
    mock.on(UpdateItemCommand).rejects(
      new ConditionalCheckFailedException({
        ...meta,
        message: "The conditional request failed",
        Item: storedItem(task),
      }),
    );

    const outcome = await store.transition({
      taskId: task.taskId,
      from: ["submitted"],
      patch: { cancelRequested: true },
    });

    expect(outcome).toEqual({ ok: false, current: task });
    expect(mock.commandCalls(UpdateItemCommand)).toHaveLength(1);
    expect(mock.commandCalls(GetItemCommand)).toHaveLength(0);
  });

  it("gives up with a DependencyError once the conflicts outlast its attempts", async () => {
    const { mock, store } = mockedStore();
    mock.on(TransactWriteItemsCommand).rejects(conflict());

    await expect(store.applyCounters([{ id: "t#1", deltas: { n: 1 } }])).rejects.toThrow(DependencyError);
    expect(mock.commandCalls(TransactWriteItemsCommand)).toHaveLength(fastRetry.maxAttempts);
  });
});

/** Lets the next `commandName` request be applied, then throws as if its response never arrived. */
function loseNextResponse(client: DynamoDBClient, commandName: string): void {
  const name = `lose${commandName}Response`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === commandName) {
        client.middlewareStack.remove(name);
        throw Object.assign(new Error("socket hang up"), {
          name: "TimeoutError",
          code: "ECONNRESET",
          $metadata: {},
        });
      }
      return result;
    },
    { step: "initialize", name },
  );
}

describe("F9 on DynamoDB Local: a write whose response was lost", () => {
  /** Lets the next `count` transactions commit, then throws as if their responses never arrived. */
  function loseResponses(client: DynamoDBClient, count: number) {
    let left = count;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === "TransactWriteItemsCommand" && left > 0) {
          left--;
          throw Object.assign(new Error("socket hang up"), {
            name: "TimeoutError",
            code: "ECONNRESET",
            $metadata: {},
          });
        }
        return result;
      },
      { step: "initialize", name: "loseResponse" },
    );
  }

  it("is sent again with the same token and applied once (a statistics batch)", async () => {
    const tableName = await createTestTable(localDynamoClient());
    const client = localDynamoClient();
    const store = new DynamoTaskStore({ client, tableName, retry: fastRetry });
    loseResponses(client, 1);

    await store.applyCounters([
      { id: "task-1#1", deltas: { "status:submitted": 1 } },
      { id: "task-1#2", deltas: { "status:submitted": -1, "status:working": 1 } },
    ]);

    // The two changes' deltas were summed into one write: the zero sum is no attribute at all.
    expect(await store.readCounters()).toEqual({ "status:working": 1 });
  });

  it("is recognised as its own write when a plain update is sent again", async () => {
    const tableName = await createTestTable(localDynamoClient());
    const client = localDynamoClient();
    const store = new DynamoTaskStore({ client, tableName, retry: fastRetry });
    const task = newTask();
    await store.create({ task });
    loseNextResponse(client, "UpdateItemCommand");

    const outcome = await store.transition({
      taskId: task.taskId,
      from: ["submitted"],
      to: "working",
      expectedVersion: 1,
      patch: { leaseToken: "lease-1" },
    });

    expect(outcome).toEqual({
      ok: true,
      task: { ...task, status: "working", version: 2, leaseToken: "lease-1" },
    });
  });
});

describe("F9 on DynamoDB Local: a create whose response was lost", () => {
  it("is recognised as its own create when the put is sent again, and anything else still conflicts", async () => {
    const tableName = await createTestTable(localDynamoClient());
    const client = localDynamoClient();
    const store = new DynamoTaskStore({ client, tableName, retry: fastRetry });
    const task = newTask();
    loseNextResponse(client, "PutItemCommand");

    const outcome = await store.create({ task });

    expect(outcome).toEqual({ created: true, task });
    expect(await store.get(task.taskId)).toEqual(task);
    // A different task under the same id, sent once, is refused as before.
    await expect(store.create({ task: { ...task, taskType: "other" } })).rejects.toThrow(/already exists/);
  });
});

describe("F10: BatchGetItem leaves work unprocessed", () => {
  it("reads unprocessed counter shards again and sums them all", async () => {
    const client = new DynamoDBClient({ region: "us-east-1", credentials });
    const mock = mockClient(client);
    const store = new DynamoTaskStore({ client, tableName: "faults-table", shards: 4, retry: fastRetry });
    const shard = (n: number) => ({
      ...marshall(TaskKeys.counters(n)),
      "counter:submitted": { N: String(n + 1) },
    });
    mock
      .on(BatchGetItemCommand)
      .resolvesOnce({
        Responses: { "faults-table": [shard(0), shard(1)] },
        UnprocessedKeys: {
          "faults-table": { Keys: [marshall(TaskKeys.counters(2)), marshall(TaskKeys.counters(3))] },
        },
      })
      .resolves({ Responses: { "faults-table": [shard(2), shard(3)] } });

    expect(await store.readCounters()).toEqual({ submitted: 1 + 2 + 3 + 4 });
    expect(mock.commandCalls(BatchGetItemCommand)).toHaveLength(2);
  });
});

describe("F11: PutEvents partial failure", () => {
  const events: BusEvent[] = Array.from({ length: 12 }, (_, i) => ({
    id: `task-${i}:2`,
    source: "agentry",
    "detail-type": "Task Completed",
    time: "2030-01-01T00:00:00.000Z",
    resources: [`task/task-${i}`],
    detail: { taskId: `task-${i}`, version: 2 },
  }));

  function mockedPublisher() {
    const client = new EventBridgeClient({ region: "us-east-1", credentials });
    const mock = mockClient(client);
    const publisher = new EventBridgePublisher({ client, eventBusName: "agentry-bus", retryBaseDelayMs: 1 });
    return { mock, publisher };
  }

  const taskIdsOf = (entries: PutEventsRequestEntry[] | undefined) =>
    (entries ?? []).map((e) => (JSON.parse(e.Detail ?? "{}") as { taskId: string }).taskId);

  it("maps events to entries in chunks of 10", async () => {
    const { mock, publisher } = mockedPublisher();
    mock.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, i) => ({ EventId: `e-${i}` })),
    }));

    await publisher.publish(events);

    const calls = mock.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries ?? []);
    expect(calls.map((entries) => entries.length).sort()).toEqual([10, 2]);
    expect(calls.flat()[0]).toEqual({
      EventBusName: "agentry-bus",
      Source: "agentry",
      DetailType: "Task Completed",
      Detail: JSON.stringify({ taskId: "task-0", version: 2 }),
      Time: new Date("2030-01-01T00:00:00.000Z"),
      Resources: ["task/task-0"],
    });
  });

  it("keeps every PutEvents request under 256 KB, splitting before 10 entries when events are large", async () => {
    const { mock, publisher } = mockedPublisher();
    mock.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, i) => ({ EventId: `e-${i}` })),
    }));
    // A broadcast of a ~60 KB message to ten agents: 600 KB in all.
    const large = events
      .slice(0, 10)
      .map((e) => ({ ...e, detail: { ...e.detail, payload: "x".repeat(60_000) } }));

    await publisher.publish(large);

    const requests = mock.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries ?? []);
    const sizes = requests.map((entries) =>
      entries.reduce((sum, entry) => sum + putEventsEntrySize(entry), 0),
    );
    expect(requests.flat()).toHaveLength(10);
    expect(Math.max(...sizes)).toBeLessThan(256 * 1024);
    expect(requests.length).toBeGreaterThanOrEqual(3);
  });

  it("resends only the entries that failed", async () => {
    const { mock, publisher } = mockedPublisher();
    let firstChunk = true;
    mock.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
      const failing = firstChunk && input.Entries.length === 10;
      if (failing) firstChunk = false;
      const results = input.Entries.map((_, i) =>
        failing && (i === 3 || i === 7)
          ? { ErrorCode: "InternalFailure", ErrorMessage: "try again" }
          : { EventId: `e-${i}` },
      );
      return { FailedEntryCount: results.filter((r) => "ErrorCode" in r).length, Entries: results };
    });

    await publisher.publish(events);

    const calls = mock.commandCalls(PutEventsCommand).map((call) => taskIdsOf(call.args[0].input.Entries));
    expect(calls).toHaveLength(3);
    expect(calls).toContainEqual(["task-3", "task-7"]);
    expect(calls.flat().sort()).toEqual(
      [...events.map((e) => String(e.detail.taskId)), "task-3", "task-7"].sort(),
    );
  });

  it("throws a DependencyError naming the events that kept failing", async () => {
    const { mock, publisher } = mockedPublisher();
    mock.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
      const results = input.Entries.map((entry, i) =>
        taskIdsOf([entry])[0] === "task-5"
          ? { ErrorCode: "ThrottlingException", ErrorMessage: "Rate exceeded" }
          : { EventId: `e-${i}` },
      );
      return { FailedEntryCount: results.filter((r) => "ErrorCode" in r).length, Entries: results };
    });

    const publishing = publisher.publish(events);

    await expect(publishing).rejects.toThrow(DependencyError);
    await expect(publishing).rejects.toThrow(
      /1 of 12 events .*task-5:2 \("Task Completed"\): ThrottlingException/,
    );
    const resent = mock.commandCalls(PutEventsCommand).map((call) => taskIdsOf(call.args[0].input.Entries));
    expect(resent.filter((ids) => ids.length === 1)).toEqual([["task-5"], ["task-5"], ["task-5"]]);
  });
});

describe("SendMessageBatch partial failure", () => {
  function mockedQueue() {
    const client = new SQSClient({ region: "us-east-1", credentials });
    const mock = mockClient(client);
    const queue = new SqsTaskQueue({
      client,
      queueUrls: { diagnostics: "https://sqs.us-east-1.amazonaws.com/123456789012/diagnostics" },
      retryBaseDelayMs: 1,
    });
    return { mock, queue };
  }
  const messages = Array.from({ length: 12 }, (_, i) => ({
    queue: "diagnostics",
    body: { taskId: `task-${i}`, attempt: 1 },
  }));
  const sentIds = (mock: ReturnType<typeof mockedQueue>["mock"]) =>
    mock
      .commandCalls(SendMessageBatchCommand)
      .map((call) => (call.args[0].input.Entries ?? []).map((e) => e.Id));

  it("sends entries that failed on the SQS side again, and reports nothing once they are sent", async () => {
    const { mock, queue } = mockedQueue();
    let failOnce = true;
    mock.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => {
      const failed = failOnce ? input.Entries.filter((e) => e.Id === "4") : [];
      failOnce = false;
      return {
        Successful: input.Entries.filter((e) => !failed.includes(e)).map((e) => ({
          Id: e.Id,
          MessageId: `m-${e.Id}`,
        })),
        Failed: failed.map((e) => ({
          Id: e.Id,
          SenderFault: false,
          Code: "InternalError",
          Message: "try again",
        })),
      };
    });

    const failures = await queue.send(messages);

    expect(failures).toEqual([]);
    expect(sentIds(mock)).toContainEqual(["4"]);
    expect(
      sentIds(mock)
        .map((ids) => ids.length)
        .sort((a, b) => a - b),
    ).toEqual([1, 2, 10]);
  });

  it("reports entries that keep failing, and sender faults at once", async () => {
    const { mock, queue } = mockedQueue();
    mock.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => {
      const failed = input.Entries.filter((e) => e.Id === "4" || e.Id === "11");
      return {
        Successful: input.Entries.filter((e) => !failed.includes(e)).map((e) => ({
          Id: e.Id,
          MessageId: `m-${e.Id}`,
        })),
        Failed: failed.map((e) =>
          e.Id === "4"
            ? { Id: e.Id, SenderFault: false, Code: "InternalError", Message: "try again" }
            : { Id: e.Id, SenderFault: true, Code: "InvalidMessageContents", Message: "bad" },
        ),
      };
    });

    const failures = await queue.send(messages);

    expect(failures).toEqual([
      { index: 4, message: "InternalError: try again" },
      { index: 11, message: "InvalidMessageContents: bad" },
    ]);
    expect(sentIds(mock).filter((ids) => ids.includes("4"))).toHaveLength(3);
    expect(sentIds(mock).filter((ids) => ids.includes("11"))).toHaveLength(1);
  });
});

describe("request accounting", () => {
  it("counts every attempt the SDK makes, retries included", async () => {
    const client = new DynamoDBClient({
      region: "us-east-1",
      credentials,
      endpoint: "http://127.0.0.1:9",
      maxAttempts: 3,
    });
    const counter = new RequestCounter();
    attachRequestCounter(client, counter);

    await expect(client.send(new ListTablesCommand({}))).rejects.toThrow();

    expect(counter.snapshot()).toEqual({
      total: 3,
      byService: { DynamoDB: 3 },
      byOperation: { "DynamoDB.ListTables": 3 },
    });
  });
});

describe("environment contract", () => {
  const valid = {
    AWS_REGION: "eu-west-1",
    TABLE_NAME: "agentry-tasks",
    EVENT_BUS_NAME: "agentry",
    QUEUE_URLS: JSON.stringify({
      diagnostics: "https://sqs.eu-west-1.amazonaws.com/123456789012/diagnostics",
    }),
    DLQ_URLS: "{}",
  };

  it("builds every adapter from a valid environment", () => {
    const adapters = createAwsAdapters({ env: { ...valid, STORE_SHARDS: "32" } });

    expect(adapters.environment).toMatchObject({ TABLE_NAME: "agentry-tasks", STORE_SHARDS: 32 });
    expect(adapters.taskStore.shards).toBe(32);
    expect(adapters.taskQueue.queueUrlOf("diagnostics")).toBe(
      "https://sqs.eu-west-1.amazonaws.com/123456789012/diagnostics",
    );
  });

  it("names every missing or malformed variable in one ConfigurationError", () => {
    const reading = () =>
      readAwsAdapterEnvironment({
        AWS_REGION: "eu-west-1",
        TABLE_NAME: "x",
        QUEUE_URLS: "{not json",
        DLQ_URLS: "{}",
      });

    expect(reading).toThrow(ConfigurationError);
    expect(reading).toThrow(/TABLE_NAME must be a DynamoDB table name/);
    expect(reading).toThrow(/EVENT_BUS_NAME is required/);
    expect(reading).toThrow(/QUEUE_URLS is not valid JSON/);
  });
});
