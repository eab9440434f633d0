import { DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { DynamoTaskStore } from "#shared/adapters/aws/dynamo-task-store";
import { attachRequestCounter, RequestCounter } from "#shared/adapters/aws/request-accounting";
import { keyAttributes, shardOf, TaskKeys } from "#shared/adapters/aws/table-schema";
import { ValidationError } from "#shared/domain/errors";
import { createTestTable, dynamoTaskStoreInspector, localDynamoClient, readItem } from "#test/support/aws";
import { buildTask } from "#test/support/tasks";
import { describeTaskStoreContract } from "./task-store.contract.ts";

const client = localDynamoClient();

describeTaskStoreContract("DynamoTaskStore", {
  create: async ({ clock, maxScannedPerList }) =>
    new DynamoTaskStore({
      client,
      tableName: await createTestTable(client),
      clock,
      ...(maxScannedPerList !== undefined ? { maxScannedPerList } : {}),
    }),
  inspect: (store) => dynamoTaskStoreInspector(client, store.tableName),
});

const task = buildTask;

describe("DynamoTaskStore on DynamoDB", () => {
  it("stores the task as a native map, with expiresAt a top-level number for TTL", async () => {
    const tableName = await createTestTable(client);
    const store = new DynamoTaskStore({ client, tableName });
    const stored = task();
    await store.create({ task: stored });

    await store.transition({
      taskId: stored.taskId,
      from: ["submitted"],
      to: "canceled",
      patch: { completedAt: stored.createdAt, expiresAt: 1_900_000_000 },
    });

    const item = await readItem(client, tableName, TaskKeys.task(stored.taskId));
    expect(item).toMatchObject({ input: { text: "hi" }, expiresAt: 1_900_000_000, status: "canceled" });
    // Still listed among all tasks; no longer among the unfinished ones.
    expect(item?.gsi3pk).toBe(TaskKeys.allTasks(shardOf(stored.taskId, 16)));
    expect(item?.gsi4pk).toBeUndefined();
  });

  it("creates with one PutItem and makes each transition one UpdateItem: no read, no transaction", async () => {
    const tableName = await createTestTable(client);
    const counted = localDynamoClient();
    const counter = new RequestCounter();
    attachRequestCounter(counted, counter);
    const store = new DynamoTaskStore({ client: counted, tableName });
    const stored = task();

    await store.create({ task: stored });
    const afterCreate = counter.snapshot().byOperation;
    counter.reset();
    await store.transition({
      taskId: stored.taskId,
      from: ["submitted"],
      to: "working",
      expectedVersion: 1,
      patch: { leaseToken: "l" },
    });
    const afterTransition = counter.snapshot().byOperation;
    counter.reset();
    await store.transition({ taskId: stored.taskId, from: ["working"], patch: { cancelRequested: true } });

    expect(afterCreate).toEqual({ "DynamoDB.PutItem": 1 });
    expect(afterTransition).toEqual({ "DynamoDB.UpdateItem": 1 });
    expect(counter.snapshot()).toEqual({
      total: 1,
      byService: { DynamoDB: 1 },
      byOperation: { "DynamoDB.UpdateItem": 1 },
    });
  });

  it("spreads statistics batches over counter shards and sums them", async () => {
    const tableName = await createTestTable(client);
    const store = new DynamoTaskStore({ client, tableName, shards: 8 });

    await Promise.all(
      Array.from({ length: 40 }, () =>
        store.applyCounters([{ id: `${task().taskId}#1`, deltas: { submitted: 1 } }]),
      ),
    );

    const counterItems = (
      await Promise.all(
        Array.from({ length: 8 }, (_, shard) => readItem(client, tableName, TaskKeys.counters(shard))),
      )
    ).filter((item) => item !== undefined);
    expect(counterItems.length).toBeGreaterThan(1);
    expect(await store.readCounters()).toEqual({ submitted: 40 });
  });

  it("takes over an idempotency key whose task has expired", async () => {
    const tableName = await createTestTable(client);
    const store = new DynamoTaskStore({ client, tableName });
    const expired = task({ idempotencyKey: "reused-key" });
    await store.create({ task: expired });
    await client.send(
      new DeleteItemCommand({ TableName: tableName, Key: keyAttributes(TaskKeys.task(expired.taskId)) }),
    );
    const next = task({ idempotencyKey: "reused-key" });

    const outcome = await store.create({ task: next });

    expect(outcome).toEqual({ created: true, task: next });
    expect(await readItem(client, tableName, TaskKeys.idempotency("reused-key"))).toMatchObject({
      taskId: next.taskId,
      expiresAt: expect.any(Number),
    });
  });

  it("rejects a cursor it did not issue", async () => {
    const store = new DynamoTaskStore({ client, tableName: await createTestTable(client) });

    await expect(store.list({ limit: 5, cursor: "bm90LWEtY3Vyc29y" })).rejects.toThrow(ValidationError);
  });
});
