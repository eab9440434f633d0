import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  type _Record,
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import type { TaskStreamRecord } from "#shared/adapters/aws/task-stream-records";
import type { Logger } from "#shared/ports/logger";

export type StreamBatchHandler = (event: {
  Records: readonly TaskStreamRecord[];
}) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;

/**
 * The stream to read: the table's latest stream (found with DescribeTable), or a stream ARN as an
 * event source mapping names it (Lambda's mapping reads the stream it was given, nothing else).
 */
export type StreamSource =
  | { readonly dynamodb: DynamoDBClient; readonly tableName: string }
  | { readonly streamArn: string };

export type StreamPollerOptions = StreamSource & StreamPollerSettings;

export interface StreamPollerSettings {
  readonly streams: DynamoDBStreamsClient;
  readonly handler: StreamBatchHandler;
  readonly logger: Logger;
  /** Most records per batch. @default 100 */
  readonly batchSize?: number;
  /** Pause after an empty read of a shard. @default 100 */
  readonly idleMs?: number;
  /**
   * How long records are gathered before a batch that is not full is handed over: the event source's
   * MaximumBatchingWindowInSeconds (infra/constructs/aggregation.ts deploys 1 s). @default 0
   */
  readonly batchingWindowMs?: number;
  /**
   * Where each shard's position is kept across restarts, as Lambda's event source keeps its
   * checkpoint. Without it a restarted poller reads every shard again from TRIM_HORIZON, in batches
   * whose boundaries differ from the first reading's, which the statistics markers cannot tell apart
   * from new changes (see `fileCheckpoints`). @default none: positions die with the poller
   */
  readonly checkpoints?: StreamCheckpoints;
}

/** Where a shard's reading resumes, and how many records its last batch handed over had, if unconfirmed. */
export interface ShardCheckpoint {
  /** Resume at (`AT_SEQUENCE_NUMBER`) or after (`AFTER_SEQUENCE_NUMBER`) this record. */
  readonly type: "AT" | "AFTER";
  readonly sequenceNumber: string;
  /**
   * Set while a batch starting at `sequenceNumber` is being handled: a poller that died meanwhile
   * delivers exactly that batch again (same first and last change), so the statistics marker of the
   * first delivery recognises all of it and the next batch starts where it would have.
   */
  readonly inFlight?: number;
}

/** A poller's durable positions, one per shard. */
export interface StreamCheckpoints {
  load(): Record<string, ShardCheckpoint>;
  save(shardId: string, checkpoint: ShardCheckpoint): void;
}

/**
 * Checkpoints in a JSON file (the emulated runtime keeps them next to DynamoDB Local's data), written
 * whole to a temporary file and renamed, so a kill -9 leaves the old or the new version.
 *
 * @example
 * const checkpoints = fileCheckpoints(join(dataDir, "stream-checkpoints.json"));
 */
export function fileCheckpoints(path: string): StreamCheckpoints {
  let state: Record<string, ShardCheckpoint> = {};
  return {
    load() {
      state = existsSync(path)
        ? (JSON.parse(readFileSync(path, "utf8")) as Record<string, ShardCheckpoint>)
        : {};
      return { ...state };
    },
    save(shardId, checkpoint) {
      state = { ...state, [shardId]: checkpoint };
      writeFileSync(`${path}.tmp`, JSON.stringify(state));
      renameSync(`${path}.tmp`, path);
    },
  };
}

export interface RunningStreamPoller {
  /** Resolves once every shard has been read to its current end (an empty read begun after the call). */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * What Lambda's event source mapping on a DynamoDB Stream does, for the emulated runtime and tests:
 * reads every shard of the table's stream in order (DescribeStream, GetShardIterator, GetRecords),
 * hands each batch to the handler as a stream event, and checkpoints after it. A record reported in
 * `batchItemFailures` is read again, with everything after it; a handler that throws gets the whole
 * batch again. Closed shards are followed by their children.
 *
 * @example
 * const poller = await startStreamPoller({ dynamodb, streams, tableName, handler, logger });
 * await poller.stop();
 */
export async function startStreamPoller(options: StreamPollerOptions): Promise<RunningStreamPoller> {
  const streamArn = "streamArn" in options ? options.streamArn : await latestStreamArn(options);
  const stopping = new AbortController();
  const batchSize = options.batchSize ?? 100;
  const started = new Set<string>();
  const closed = new Set<string>();
  const lanes: Promise<void>[] = [];
  /** Per open shard: when its last read that found nothing began. */
  const emptyReadStartedAt = new Map<string, number>();
  let described = 0;

  const saved = options.checkpoints?.load() ?? {};

  const readShard = async (shardId: string) => {
    const checkpoint = saved[shardId];
    let iterator = await startingIterator(options, streamArn, shardId, checkpoint);
    // A batch that was being handled when the last poller died is delivered again exactly as it was.
    let exactly = checkpoint?.inFlight;
    while (!stopping.signal.aborted && iterator) {
      const readStartedAt = performance.now();
      try {
        const limit = exactly ?? batchSize;
        const output = await options.streams.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }),
          { abortSignal: stopping.signal },
        );
        const records = [...(output.Records ?? [])];
        if (records.length === 0) {
          emptyReadStartedAt.set(shardId, readStartedAt);
          iterator = output.NextShardIterator;
          await pause(options.idleMs ?? 100, stopping.signal);
          continue;
        }
        // Gather until the batch is full or the batching window closes, as the event source does; a
        // batch delivered again is gathered to its old size (its records are all in the stream).
        const windowEnds =
          performance.now() + (exactly === undefined ? (options.batchingWindowMs ?? 0) : 30_000);
        let next = output.NextShardIterator;
        while (next && records.length < limit && performance.now() < windowEnds) {
          await pause(Math.min(options.idleMs ?? 100, windowEnds - performance.now()), stopping.signal);
          if (stopping.signal.aborted) break;
          const more = await options.streams.send(
            new GetRecordsCommand({ ShardIterator: next, Limit: limit - records.length }),
          );
          records.push(...(more.Records ?? []));
          next = more.NextShardIterator;
        }
        output.NextShardIterator = next;
        exactly = undefined;
        const first = records[0]?.dynamodb?.SequenceNumber;
        const last = records.at(-1)?.dynamodb?.SequenceNumber;
        if (first !== undefined) {
          options.checkpoints?.save(shardId, { type: "AT", sequenceNumber: first, inFlight: records.length });
        }
        const retryFrom = await deliver(records);
        if (retryFrom !== undefined) {
          options.checkpoints?.save(shardId, { type: "AT", sequenceNumber: retryFrom });
        } else if (last !== undefined) {
          options.checkpoints?.save(shardId, { type: "AFTER", sequenceNumber: last });
        }
        iterator =
          retryFrom === undefined
            ? output.NextShardIterator
            : await shardIterator(options.streams, streamArn, shardId, "AT_SEQUENCE_NUMBER", retryFrom);
      } catch (error) {
        if (stopping.signal.aborted) return;
        options.logger.error("stream poll failed; retrying", { shardId, error: String(error) });
        await pause(500, stopping.signal);
      }
    }
    emptyReadStartedAt.delete(shardId);
    closed.add(shardId);
  };

  /** Hands one batch over; returns the sequence number to read again from, if any. */
  const deliver = async (records: readonly _Record[]): Promise<string | undefined> => {
    try {
      const response = await options.handler({ Records: records.map(repairImages) });
      const failed = response.batchItemFailures.map((f) => f.itemIdentifier);
      if (failed.length === 0) return undefined;
      return failed.sort(compareSequenceNumbers)[0];
    } catch (error) {
      options.logger.error("stream handler threw; the whole batch will be delivered again", {
        error: String(error),
      });
      await pause(200, stopping.signal);
      return records[0]?.dynamodb?.SequenceNumber;
    }
  };

  const discover = async () => {
    while (!stopping.signal.aborted) {
      try {
        const description = await options.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
        for (const shard of description.StreamDescription?.Shards ?? []) {
          const id = shard.ShardId;
          // A child shard is read once its parent was read to its end: a key's changes stay in order.
          if (!id || started.has(id)) continue;
          const parent = shard.ParentShardId;
          if (parent && hasShard(description, parent) && !closed.has(parent)) continue;
          started.add(id);
          lanes.push(readShard(id));
        }
        described = performance.now();
      } catch (error) {
        if (stopping.signal.aborted) return;
        options.logger.error("describing the stream failed; retrying", { error: String(error) });
      }
      await pause(1_000, stopping.signal);
    }
  };
  const discovery = discover();

  return {
    async caughtUp() {
      const since = performance.now();
      for (;;) {
        const open = [...started].filter((id) => !closed.has(id));
        if (described > since && open.every((id) => (emptyReadStartedAt.get(id) ?? -1) > since)) return;
        if (stopping.signal.aborted) return;
        await pause(20, stopping.signal);
      }
    },
    async stop() {
      stopping.abort();
      await discovery;
      await Promise.allSettled(lanes);
    },
  };
}

async function latestStreamArn(source: { dynamodb: DynamoDBClient; tableName: string }): Promise<string> {
  const table = await source.dynamodb.send(new DescribeTableCommand({ TableName: source.tableName }));
  const streamArn = table.Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`table ${source.tableName} has no stream`);
  return streamArn;
}

function hasShard(
  description: { StreamDescription?: { Shards?: { ShardId?: string }[] } },
  shardId: string,
): boolean {
  return (description.StreamDescription?.Shards ?? []).some((s) => s.ShardId === shardId);
}

/** Where a shard's reading starts: its checkpoint, or TRIM_HORIZON if it has none or it is gone. */
async function startingIterator(
  options: StreamPollerOptions,
  streamArn: string,
  shardId: string,
  checkpoint: ShardCheckpoint | undefined,
): Promise<string | undefined> {
  if (checkpoint !== undefined) {
    const type = checkpoint.type === "AT" ? "AT_SEQUENCE_NUMBER" : "AFTER_SEQUENCE_NUMBER";
    try {
      return await shardIterator(options.streams, streamArn, shardId, type, checkpoint.sequenceNumber);
    } catch (error) {
      // Trimmed (older than the stream keeps) or from another stream: start over, as Lambda would.
      options.logger.warn("stream checkpoint not usable; reading the shard from its start", {
        shardId,
        error: String(error),
      });
    }
  }
  return shardIterator(options.streams, streamArn, shardId, "TRIM_HORIZON");
}

async function shardIterator(
  streams: DynamoDBStreamsClient,
  streamArn: string,
  shardId: string,
  type: "TRIM_HORIZON" | "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER",
  sequenceNumber?: string,
): Promise<string | undefined> {
  const output = await streams.send(
    new GetShardIteratorCommand({
      StreamArn: streamArn,
      ShardId: shardId,
      ShardIteratorType: type,
      ...(sequenceNumber !== undefined ? { SequenceNumber: sequenceNumber } : {}),
    }),
  );
  return output.ShardIterator;
}

function compareSequenceNumbers(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * The Streams client deserializes an empty map or list attribute (`{"M":{}}`, `{"L":[]}`) to `{}`,
 * which no unmarshaller accepts. Lambda's event carries the raw JSON and has no such gap. The changes
 * are read for status, version and outcome, never for empty containers, so `{}` becomes an empty map.
 */
function repairImages(record: _Record): TaskStreamRecord {
  const repair = (value: unknown): unknown => {
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return value.map(repair);
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return { M: {} };
    return Object.fromEntries(entries.map(([k, v]) => [k, repairAttribute(k, v, repair)]));
  };
  const dynamodb = record.dynamodb;
  if (!dynamodb) return record as TaskStreamRecord;
  return {
    ...(record as TaskStreamRecord),
    dynamodb: {
      ...dynamodb,
      ...(dynamodb.NewImage ? { NewImage: repairMap(dynamodb.NewImage, repair) } : {}),
      ...(dynamodb.OldImage ? { OldImage: repairMap(dynamodb.OldImage, repair) } : {}),
    },
  } as TaskStreamRecord;
}

function repairMap(
  image: Record<string, unknown>,
  repair: (value: unknown) => unknown,
): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).map(([name, value]) => [name, repair(value)]));
}

/** Inside an attribute value: recurse into M (a map of values) and L (a list of values) only. */
function repairAttribute(type: string, value: unknown, repair: (value: unknown) => unknown): unknown {
  if (type === "M" && value !== null && typeof value === "object") {
    return repairMap(value as Record<string, unknown>, repair);
  }
  if (type === "L" && Array.isArray(value)) return value.map(repair);
  return value;
}
