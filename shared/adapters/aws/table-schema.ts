import {
  type AttributeValue,
  BatchGetItemCommand,
  type CancellationReason,
  CreateTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { DependencyError } from "#shared/domain/errors";

/**
 * The single table behind the DynamoDB adapters, as data. The CDK stack declares the same table; a
 * change here is a change of the deployed schema (see docs/adr/0002-single-table-design.md).
 *
 * @example
 * new dynamodb.TableV2(this, "Table", {
 *   partitionKey: { name: AGENTRY_TABLE_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
 *   sortKey: { name: AGENTRY_TABLE_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
 *   timeToLiveAttribute: AGENTRY_TABLE_SCHEMA.timeToLiveAttribute,
 * });
 */
export const AGENTRY_TABLE_SCHEMA = {
  partitionKey: "pk",
  sortKey: "sk",
  billingMode: "PAY_PER_REQUEST",
  timeToLiveAttribute: "expiresAt",
  /** Committed changes, before and after: lifecycle events, statistics and job fan-in follow from them. */
  streamViewType: "NEW_AND_OLD_IMAGES",
  globalSecondaryIndexes: [
    // Agents and jobs.
    { indexName: "gsi1", partitionKey: "gsi1pk", sortKey: "gsi1sk", projection: "ALL" },
    { indexName: "gsi2", partitionKey: "gsi2pk", sortKey: "gsi2sk", projection: "ALL" },
    // Tasks: keys only, so a transition rewrites no index entry unless it moves one (ADR 0007).
    { indexName: "gsi3", partitionKey: "gsi3pk", sortKey: "gsi3sk", projection: "KEYS_ONLY" },
    { indexName: "gsi4", partitionKey: "gsi4pk", sortKey: "gsi4sk", projection: "KEYS_ONLY" },
  ],
} as const;

export type IndexName = (typeof AGENTRY_TABLE_SCHEMA.globalSecondaryIndexes)[number]["indexName"];

/** Attributes the table layout owns; everything else on an item is domain data. */
export const KEY_ATTRIBUTES: ReadonlySet<string> = new Set([
  "pk",
  "sk",
  "gsi1pk",
  "gsi1sk",
  "gsi2pk",
  "gsi2sk",
  "gsi3pk",
  "gsi3sk",
  "gsi4pk",
  "gsi4sk",
  "entity",
]);

/**
 * Creates the table (and turns on TTL) for tests and the emulated local runtime. Resolves once the
 * table is ACTIVE.
 *
 * @example
 * await createAgentryTable(new DynamoDBClient({ endpoint: "http://127.0.0.1:8000" }), "agentry-local");
 */
export async function createAgentryTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const schema = AGENTRY_TABLE_SCHEMA;
  const keyAttributes = [
    schema.partitionKey,
    schema.sortKey,
    ...schema.globalSecondaryIndexes.flatMap((index) => [index.partitionKey, index.sortKey]),
  ];
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: schema.billingMode,
      AttributeDefinitions: keyAttributes.map((name) => ({ AttributeName: name, AttributeType: "S" })),
      KeySchema: [
        { AttributeName: schema.partitionKey, KeyType: "HASH" },
        { AttributeName: schema.sortKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: schema.globalSecondaryIndexes.map((index) => ({
        IndexName: index.indexName,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: "HASH" },
          { AttributeName: index.sortKey, KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: index.projection },
      })),
      StreamSpecification: { StreamEnabled: true, StreamViewType: schema.streamViewType },
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1 }, { TableName: tableName });
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { Enabled: true, AttributeName: schema.timeToLiveAttribute },
    }),
  );
}

// ---------------------------------------------------------------------------------------------------
// Keys. Every key of every item type is built here, so the layout is readable in one place.
// ---------------------------------------------------------------------------------------------------

export interface ItemKey {
  readonly pk: string;
  readonly sk: string;
}

/** Keys of the task store's items. */
export const TaskKeys = {
  task: (taskId: string): ItemKey => ({ pk: `TASK#${taskId}`, sk: "TASK" }),
  idempotency: (idempotencyKey: string): ItemKey => ({ pk: `IDEM#${idempotencyKey}`, sk: "IDEM" }),
  counters: (shard: number): ItemKey => ({ pk: `STATS#${shard}`, sk: "STATS" }),
  /** A statistics batch marker: which changes a stream delivery starting here counted (ADR 0007). */
  countedBatch: (firstChangeId: string): ItemKey => ({ pk: `COUNTED#${firstChangeId}`, sk: "COUNTED" }),
  /** gsi3 partition of the all-tasks listing (written once, at create). */
  allTasks: (shard: number): string => `TASKS#${shard}`,
  /** gsi4 partition of the tasks not yet finished (sparse: removed when a task ends). */
  active: (shard: number): string => `ACTIVE#${shard}`,
  /** Sort key of both listings: newest first is a descending query. */
  listing: (createdAt: string, taskId: string): string => `${createdAt}#${taskId}`,
} as const;

/** Keys of the agent registry's items. */
export const AgentKeys = {
  profile: (agentId: string): ItemKey => ({ pk: `AGENT#${agentId}`, sk: "PROFILE" }),
  /** currentTaskCount lives apart from the profile, so per-task updates never touch an index. */
  load: (agentId: string): ItemKey => ({ pk: `AGENT#${agentId}`, sk: "LOAD" }),
  /** gsi1 partition: agents of one type. */
  byType: (agentType: string): string => `AGENTTYPE#${agentType}`,
  /** gsi2 partition: agents in one status. */
  byStatus: (status: string): string => `AGENTSTATUS#${status}`,
  sort: (agentId: string): string => `AGENT#${agentId}`,
} as const;

export function keyAttributes(key: ItemKey): Record<string, AttributeValue> {
  return { pk: { S: key.pk }, sk: { S: key.sk } };
}

/**
 * The shard of an id: FNV-1a, so every process maps an id to the same shard without coordination.
 */
export function shardOf(id: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

// ---------------------------------------------------------------------------------------------------
// Retry policy shared by both DynamoDB adapters.
// ---------------------------------------------------------------------------------------------------

export interface DynamoRetryOptions {
  /** Attempts per logical write, the first included. @default 8 */
  readonly maxAttempts?: number;
  /** @default 25 */
  readonly baseDelayMs?: number;
  /** @default 2000 */
  readonly maxDelayMs?: number;
}

export type ResolvedRetryOptions = Required<DynamoRetryOptions>;

export function resolveRetryOptions(options: DynamoRetryOptions = {}): ResolvedRetryOptions {
  return {
    maxAttempts: Math.max(1, options.maxAttempts ?? 8),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? 25),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 2000),
  };
}

/** Exponential backoff with full jitter. */
export function backoffDelayMs(attempt: number, options: ResolvedRetryOptions): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * Math.random());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const RETRYABLE_CANCELLATION_CODES = new Set([
  "TransactionConflict",
  "ThrottlingError",
  "ProvisionedThroughputExceeded",
  "RequestLimitExceeded",
]);

const RETRYABLE_ERROR_NAMES = new Set([
  "TransactionConflictException",
  "TransactionInProgressException",
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
]);

const RETRYABLE_NETWORK_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT"]);

interface AwsErrorShape {
  name?: string;
  code?: string;
  message?: string;
  CancellationReasons?: CancellationReason[];
  Item?: Record<string, AttributeValue>;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

function asAwsError(error: unknown): AwsErrorShape {
  return typeof error === "object" && error !== null ? (error as AwsErrorShape) : {};
}

export function errorName(error: unknown): string | undefined {
  return asAwsError(error).name;
}

/**
 * The cancellation reasons of a TransactionCanceledException, one per action in request order.
 * Falls back to the codes listed in the message when the structured field is missing.
 */
export function cancellationReasons(error: unknown): readonly CancellationReason[] | undefined {
  const shape = asAwsError(error);
  if (shape.name !== "TransactionCanceledException") return undefined;
  if (shape.CancellationReasons && shape.CancellationReasons.length > 0) return shape.CancellationReasons;
  const listed = /\[([^\]]*)\]/.exec(shape.message ?? "")?.[1];
  return listed?.split(",").map((code) => ({ Code: code.trim() }));
}

/** True when the write failed because a condition did not hold (never worth retrying as is). */
export function isConditionFailure(error: unknown): boolean {
  if (errorName(error) === "ConditionalCheckFailedException") return true;
  return cancellationReasons(error)?.some((r) => r.Code === "ConditionalCheckFailed") ?? false;
}

/** The item a failed condition saw (ReturnValuesOnConditionCheckFailure=ALL_OLD), if any. */
export function conditionFailureItem(
  error: unknown,
  actionIndex = 0,
): Record<string, AttributeValue> | undefined {
  if (errorName(error) === "ConditionalCheckFailedException") return asAwsError(error).Item;
  return cancellationReasons(error)?.[actionIndex]?.Item;
}

/** How many times the SDK sent the request that produced this error (its own retries included). */
export function sdkAttempts(error: unknown): number {
  return asAwsError(error).$metadata?.attempts ?? 1;
}

/**
 * Throttling, transaction conflicts and transient server or network failures are worth another try;
 * a failed condition, a validation error or anything unknown is not.
 */
export function isRetryableDynamoError(error: unknown): boolean {
  const shape = asAwsError(error);
  const reasons = cancellationReasons(error);
  if (reasons) {
    if (reasons.some((r) => r.Code === "ConditionalCheckFailed")) return false;
    return reasons.some((r) => r.Code !== undefined && RETRYABLE_CANCELLATION_CODES.has(r.Code));
  }
  if (shape.name !== undefined && RETRYABLE_ERROR_NAMES.has(shape.name)) return true;
  if (shape.code !== undefined && RETRYABLE_NETWORK_CODES.has(shape.code)) return true;
  const status = shape.$metadata?.httpStatusCode;
  return status !== undefined && status >= 500;
}

function describeError(error: unknown): string {
  const shape = asAwsError(error);
  const reasons = cancellationReasons(error);
  const detail = reasons ? ` [${reasons.map((r) => r.Code ?? "?").join(", ")}]` : "";
  return `${shape.name ?? "Error"}: ${shape.message ?? String(error)}${detail}`;
}

/**
 * Runs one logical DynamoDB request, retrying retryable failures with exponential backoff and full
 * jitter. The callback must send the same request each time (for transactions: the same
 * ClientRequestToken, so a retry of a write that did commit is not applied twice).
 */
export async function withDynamoRetry<T>(
  operation: string,
  options: ResolvedRetryOptions,
  send: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send(attempt);
    } catch (error) {
      if (!isRetryableDynamoError(error)) throw error;
      if (attempt >= options.maxAttempts) {
        throw new DependencyError(
          `DynamoDB ${operation} still failing after ${attempt} attempts: ${describeError(error)}`,
          error,
        );
      }
      await sleep(backoffDelayMs(attempt, options));
    }
  }
}

/**
 * Reads any number of items with BatchGetItem: chunks of 100, UnprocessedKeys read again with
 * backoff. Missing items are simply absent from the result.
 */
export async function batchGetAll(
  client: DynamoDBClient,
  tableName: string,
  keys: readonly Record<string, AttributeValue>[],
  options: ResolvedRetryOptions & { consistentRead: boolean },
): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  for (let start = 0; start < keys.length; start += 100) {
    let pending: Record<string, AttributeValue>[] = keys.slice(start, start + 100);
    for (let round = 1; pending.length > 0; round++) {
      const output = await withDynamoRetry("BatchGetItem", options, () =>
        client.send(
          new BatchGetItemCommand({
            RequestItems: { [tableName]: { Keys: pending, ConsistentRead: options.consistentRead } },
          }),
        ),
      );
      items.push(...(output.Responses?.[tableName] ?? []));
      pending = output.UnprocessedKeys?.[tableName]?.Keys ?? [];
      if (pending.length === 0) break;
      if (round >= options.maxAttempts) {
        throw new DependencyError(
          `DynamoDB BatchGetItem left ${pending.length} keys unprocessed after ${round} attempts`,
        );
      }
      await sleep(backoffDelayMs(round, options));
    }
  }
  return items;
}
