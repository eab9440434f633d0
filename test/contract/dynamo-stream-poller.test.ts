import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { fileCheckpoints, startStreamPoller } from "#local/dynamo-stream-poller";
import { createTestTable, localDynamoClient } from "#test/support/aws";

/**
 * The emulated stream consumer's checkpoints (ADR 0007): a poller restarted on the same data resumes
 * where the last one stopped, as Lambda's event source does, and delivers a batch that was being
 * handled when it died again exactly as it was, so the statistics markers recognise it.
 */
const dynamodb = localDynamoClient();
const streams = new DynamoDBStreamsClient({
  endpoint: inject("dynamoEndpoint"),
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
});
const silent = { debug() {}, info() {}, warn() {}, error() {} };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "agentry-checkpoints-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  dynamodb.destroy();
  streams.destroy();
});

async function put(tableName: string, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    await dynamodb.send(
      new PutItemCommand({ TableName: tableName, Item: { pk: { S: id }, sk: { S: "x" } } }),
    );
  }
}

/** Runs a poller until it has read everything written so far; returns the batches it delivered. */
async function readBatches(
  tableName: string,
  options: { file?: string; batchSize?: number } = {},
): Promise<{ key: string; sequenceNumber: string }[][]> {
  const batches: { key: string; sequenceNumber: string }[][] = [];
  const poller = await startStreamPoller({
    dynamodb,
    streams,
    tableName,
    logger: silent,
    idleMs: 20,
    batchSize: options.batchSize ?? 100,
    ...(options.file !== undefined ? { checkpoints: fileCheckpoints(options.file) } : {}),
    handler: async (event) => {
      batches.push(
        event.Records.map((r) => ({
          key: String((r.dynamodb?.Keys?.pk as { S?: string } | undefined)?.S),
          sequenceNumber: String(r.dynamodb?.SequenceNumber),
        })),
      );
      return { batchItemFailures: [] };
    },
  });
  await poller.caughtUp();
  await poller.stop();
  return batches;
}

/** The keys of each batch a poller on `file`'s checkpoints delivers. */
async function readOnce(tableName: string, file: string, batchSize = 100): Promise<string[][]> {
  return (await readBatches(tableName, { file, batchSize })).map((batch) => batch.map((r) => r.key));
}

describe("the DynamoDB stream poller's checkpoints", () => {
  it("resumes after the last batch handled, not from the start of the stream", async () => {
    const tableName = await createTestTable(dynamodb, "agentry-checkpoint");
    const file = join(dir, `${tableName}.json`);
    await put(tableName, ["a1", "a2", "a3"]);

    const first = await readOnce(tableName, file);
    await put(tableName, ["b1", "b2"]);
    const second = await readOnce(tableName, file);

    expect(first.flat()).toEqual(["a1", "a2", "a3"]);
    expect(second.flat()).toEqual(["b1", "b2"]);
  }, 60_000);

  it("delivers a batch that was in flight when the poller died again with the same records", async () => {
    const tableName = await createTestTable(dynamodb, "agentry-checkpoint");
    const file = join(dir, `${tableName}.json`);
    await put(tableName, ["a1", "a2", "a3", "a4", "a5"]);
    // Read in batches of two; then the checkpoint is set back to what a poller that died while
    // handling the first batch, [a1, a2], leaves behind.
    const died = await readOnce(tableName, file, 2);
    const checkpoints = fileCheckpoints(file);
    const [shardId, position] = Object.entries(checkpoints.load())[0] ?? [];
    expect(died[0]).toEqual(["a1", "a2"]);
    const a1 = await firstSequenceNumber(tableName);
    checkpoints.save(shardId ?? "", { type: "AT", sequenceNumber: a1, inFlight: 2 });
    await put(tableName, ["a6"]);

    const again = await readOnce(tableName, file);

    expect(position?.type).toBe("AFTER");
    expect(again).toEqual([
      ["a1", "a2"],
      ["a3", "a4", "a5", "a6"],
    ]);
  }, 60_000);
});

/** The sequence number of the stream's first record (read with a checkpoint-less poller). */
async function firstSequenceNumber(tableName: string): Promise<string> {
  const found = (await readBatches(tableName))[0]?.[0]?.sequenceNumber;
  if (found === undefined) throw new Error("the stream is empty");
  return found;
}
