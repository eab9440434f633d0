import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  type Update,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import {
  batchWriteAll,
  cancellationReasons,
  conditionFailureItem,
  type DynamoRetryOptions,
  type IndexName,
  isConditionFailure,
  KEY_ATTRIBUTES,
  keyAttributes,
  type ResolvedRetryOptions,
  resolveRetryOptions,
  sdkAttempts,
  shardOf,
  TaskKeys,
  withDynamoRetry,
} from "#shared/adapters/aws/table-schema";
import { AgentryError, DependencyError, ValidationError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { CounterDeltas } from "#shared/domain/statistics";
import type { Task } from "#shared/domain/task";
import { type Clock, systemClock } from "#shared/ports/clock";
import {
  type CreateTaskOutcome,
  type CreateTaskRequest,
  isTaskListingPosition,
  type ListTasksQuery,
  type OutboxEntry,
  outboxEntryId,
  type TaskPage,
  type TaskStore,
  type TransitionOutcome,
  type TransitionRequest,
} from "#shared/ports/task-store";
import { counterAddUpdate, readShardedCounters } from "./sharded-counters.ts";

export interface DynamoTaskStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /**
   * Shards of the statistics counters, status listings and outbox index. Every process that shares
   * the table must use the same number.
   * @default 16
   */
  readonly shards?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * How long an idempotency key is remembered (its item's TTL).
   * @default 30 days
   */
  readonly idempotencyWindowSeconds?: number;
  /** @default 8 attempts, 25 ms base delay, 2 s cap */
  readonly retry?: DynamoRetryOptions;
  /**
   * Most index items one `list` call reads. A filter that matches little (`taskType` of a rare type)
   * would otherwise page through the whole index in one request; past the budget the page ends early,
   * possibly empty, with a `nextCursor` that continues where the reading stopped.
   * @default 1000
   */
  readonly maxScannedPerList?: number;
}

/** A create reused a task id that is already stored (and no idempotency key explains it). */
export class TaskAlreadyExistsError extends AgentryError {
  constructor(taskId: string) {
    super(`task ${taskId} already exists`, { code: "task_exists", statusCode: 409 });
    this.name = "TaskAlreadyExistsError";
  }
}

const MARSHALL_OPTIONS = { removeUndefinedValues: true } as const;
/** Fields no transition may change: they are part of the item's keys or its identity. */
const IMMUTABLE_FIELDS: ReadonlySet<string> = new Set(["taskId", "version", "createdAt"]);
/** Counter attributes carry a prefix so no counter name can collide with a key attribute. */
/** Re-reads allowed when only the version moved under a transition that does not pin one. */
const MAX_RACE_ROUNDS = 8;
const MAX_TRANSACTION_CHECK_VALUES = 100;

interface ExpressionParts {
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

/**
 * The TaskStore on one DynamoDB table (docs/adr/0002-single-table-design.md). Every status change is
 * a single TransactWriteItems that updates the task under a condition, adds the counter deltas to
 * the task's statistics shard and puts the outbox entry; a lost race returns the stored item from
 * the failed condition (ALL_OLD), without another read. Transaction conflicts and throttling are
 * retried with backoff under the same ClientRequestToken, so a retried write is applied once.
 *
 * @example
 * const store = new DynamoTaskStore({ client: new DynamoDBClient({}), tableName: process.env.TABLE_NAME! });
 * const outcome = await store.transition({
 *   taskId, from: ["submitted"], to: "working", expectedVersion: task.version,
 *   patch: { leaseToken, leaseExpiresAt, updatedAt: now },
 *   counters: { "status:submitted": -1, "status:working": 1 },
 * });
 */
export class DynamoTaskStore implements TaskStore {
  readonly tableName: string;
  readonly shards: number;
  private readonly client: DynamoDBClient;
  private readonly clock: Clock;
  private readonly idempotencyWindowSeconds: number;
  private readonly retry: ResolvedRetryOptions;
  private readonly maxScannedPerList: number;

  constructor(options: DynamoTaskStoreOptions) {
    const shards = options.shards ?? 16;
    if (!Number.isInteger(shards) || shards < 1 || shards > 1000) {
      throw new AgentryError(`shards must be an integer from 1 to 1000, got ${shards}`, {
        code: "configuration_error",
      });
    }
    if (options.tableName.length < 3) {
      throw new AgentryError(`tableName must have at least 3 characters, got "${options.tableName}"`, {
        code: "configuration_error",
      });
    }
    this.client = options.client;
    this.tableName = options.tableName;
    this.shards = shards;
    this.clock = options.clock ?? systemClock;
    this.idempotencyWindowSeconds = options.idempotencyWindowSeconds ?? 30 * 86_400;
    this.retry = resolveRetryOptions(options.retry);
    this.maxScannedPerList = Math.max(1, options.maxScannedPerList ?? 1000);
  }

  async create({ task, counters, events }: CreateTaskRequest): Promise<CreateTaskOutcome> {
    const now = this.clock.now();
    const taskItem = this.taskItem(task);
    const stored = taskFromItem(taskItem);
    const counterUpdate = this.counterUpdate(task.taskId, counters);
    const outboxPut = events.length > 0 ? this.outboxItem(task.taskId, task.version, events, now) : undefined;
    const taskPut = {
      TableName: this.tableName,
      Item: taskItem,
      ConditionExpression: "attribute_not_exists(pk)",
    };

    if (task.idempotencyKey === undefined && !counterUpdate && !outboxPut) {
      try {
        await withDynamoRetry("PutItem", this.retry, () => this.client.send(new PutItemCommand(taskPut)));
      } catch (error) {
        if (isConditionFailure(error)) throw new TaskAlreadyExistsError(task.taskId);
        throw error;
      }
      return { created: true, task: stored };
    }

    // A key whose task is gone (expired) may be taken over; that needs a second round at most.
    let staleTaskId: string | undefined;
    for (let round = 0; round < 3; round++) {
      const actions: TransactWriteItem[] = [{ Put: taskPut }];
      const idempotencyIndex =
        task.idempotencyKey === undefined
          ? -1
          : actions.push({ Put: this.idempotencyPut(task.idempotencyKey, task.taskId, now, staleTaskId) }) -
            1;
      if (counterUpdate) actions.push({ Update: counterUpdate });
      if (outboxPut) actions.push({ Put: { TableName: this.tableName, Item: outboxPut } });
      try {
        await this.transact(actions);
        return { created: true, task: stored };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const reasons = cancellationReasons(error) ?? [];
        const keyHolder = idempotencyIndex >= 0 ? reasons[idempotencyIndex] : undefined;
        if (keyHolder?.Code !== "ConditionalCheckFailed") throw new TaskAlreadyExistsError(task.taskId);
        const holderId = keyHolder.Item ? unmarshall(keyHolder.Item).taskId : undefined;
        const existing = typeof holderId === "string" ? await this.get(holderId) : undefined;
        if (existing) return { created: false, task: existing };
        staleTaskId = typeof holderId === "string" ? holderId : undefined;
      }
    }
    throw new DependencyError(
      `could not claim idempotency key "${task.idempotencyKey}" for task ${task.taskId}`,
    );
  }

  async get(taskId: string): Promise<Task | undefined> {
    const output = await withDynamoRetry("GetItem", this.retry, () =>
      this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: keyAttributes(TaskKeys.task(taskId)),
          ConsistentRead: true,
        }),
      ),
    );
    return output.Item ? taskFromItem(output.Item) : undefined;
  }

  async findByIdempotencyKey(idempotencyKey: string): Promise<Task | undefined> {
    const output = await withDynamoRetry("GetItem", this.retry, () =>
      this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: keyAttributes(TaskKeys.idempotency(idempotencyKey)),
          ConsistentRead: true,
        }),
      ),
    );
    const taskId = output.Item ? unmarshall(output.Item).taskId : undefined;
    return typeof taskId === "string" ? this.get(taskId) : undefined;
  }

  async list(query: ListTasksQuery): Promise<TaskPage> {
    const limit = Math.max(1, Math.floor(query.limit));
    const before = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const budget = { scanned: 0, max: this.maxScannedPerList };
    const index: IndexName = query.status === undefined ? "gsi1" : "gsi2";
    const { status } = query;
    const partitions = Array.from({ length: this.shards }, (_, shard) =>
      status === undefined ? TaskKeys.allTasks(shard) : TaskKeys.byStatus(status, shard),
    );
    const filtered = query.taskType !== undefined || query.updatedBefore !== undefined;
    const streams = partitions.map(
      (partition): ListingStream => ({
        partition,
        buffer: [],
        done: false,
        pageSize: Math.min(limit + 1, Math.ceil((limit + 1) / this.shards) + 1),
        maxPageSize: filtered ? Math.max(limit + 1, 500) : limit + 1,
      }),
    );
    // A k-way merge of the shards, newest first; one task more than the page tells whether there is a next page.
    const picked: ListedTask[] = [];
    // Past the scan budget a stream that ran dry stops the merge: below its position nothing is known.
    // Everything above the highest such position has been read in every shard, so it can still be
    // merged, and the page continues from there.
    let frontier: string | undefined;
    while (picked.length <= limit) {
      await Promise.all(
        streams
          .filter((s) => s.buffer.length === 0 && !s.done)
          .map((s) => this.fill(s, index, query, before, budget)),
      );
      if (frontier === undefined) {
        for (const stream of streams) {
          if (stream.buffer.length > 0 || stream.done || stream.position === undefined) continue;
          if (frontier === undefined || stream.position > frontier) frontier = stream.position;
        }
      }
      let best: ListingStream | undefined;
      for (const stream of streams) {
        const head = stream.buffer[0];
        if (head && (best === undefined || head.sortKey > best.buffer[0]!.sortKey)) best = stream;
      }
      if (!best || (frontier !== undefined && best.buffer[0]!.sortKey <= frontier)) break;
      picked.push(best.buffer.shift()!);
    }
    const items = picked.slice(0, limit);
    const last = items.at(-1);
    const nextCursor =
      picked.length > limit && last
        ? encodeCursor(last.sortKey)
        : frontier !== undefined
          ? encodeCursor(frontier)
          : undefined;
    return {
      items: items.map((listed) => listed.task),
      ...(nextCursor !== undefined ? { nextCursor } : {}),
    };
  }

  async transition(request: TransitionRequest): Promise<TransitionOutcome> {
    if (request.from.length === 0 || request.from.length > MAX_TRANSACTION_CHECK_VALUES) {
      return { ok: false, current: await this.get(request.taskId) };
    }
    const counterUpdate = this.counterUpdate(request.taskId, request.counters ?? {});
    const events = request.events ?? [];
    if (!counterUpdate && events.length === 0) return this.updateTask(request);

    // Write pinned to the version of the caller's snapshot (or of a fresh read without one): the
    // outcome is exactly the item written, and the outbox entry can be named after the version the
    // write produces. A stale snapshot fails the condition and hands back the stored item.
    let base =
      request.snapshot?.taskId === request.taskId ? request.snapshot : await this.get(request.taskId);
    for (let round = 0; round < MAX_RACE_ROUNDS; round++) {
      if (!base || !guardHolds(base, request)) return { ok: false, current: base };
      const next = applyTransition(base, request);
      const now = this.clock.now();
      const update = this.taskUpdate(request, base.version);
      const actions: TransactWriteItem[] = [{ Update: update }];
      if (counterUpdate) actions.push({ Update: counterUpdate });
      if (events.length > 0) {
        actions.push({
          Put: {
            TableName: this.tableName,
            Item: this.outboxItem(request.taskId, next.version, events, now),
          },
        });
      }
      try {
        await this.transact(actions);
        return { ok: true, task: next };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const item = conditionFailureItem(error, 0);
        base = item ? taskFromItem(item) : undefined;
      }
    }
    return { ok: false, current: base };
  }

  async readCounters(): Promise<Record<string, number>> {
    const shardKeys = Array.from({ length: this.shards }, (_, shard) => TaskKeys.counters(shard));
    return readShardedCounters(this.client, this.tableName, shardKeys, this.retry);
  }

  async pendingEvents(olderThan: string, limit: number): Promise<readonly OutboxEntry[]> {
    if (limit < 1) return [];
    const perShard = await Promise.all(
      Array.from({ length: this.shards }, (_, shard) => this.pendingInShard(shard, olderThan, limit)),
    );
    return perShard
      .flat()
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
      .slice(0, limit)
      .map((pending) => pending.entry);
  }

  async clearEvents(ids: readonly string[]): Promise<void> {
    const keys = new Map<string, Record<string, AttributeValue>>();
    for (const id of ids) {
      const separator = id.lastIndexOf("#");
      const version = Number(id.slice(separator + 1));
      if (separator <= 0 || !Number.isInteger(version)) continue;
      keys.set(id, keyAttributes(TaskKeys.outbox(id.slice(0, separator), version)));
    }
    await batchWriteAll(
      this.client,
      this.tableName,
      [...keys.values()].map((Key) => ({ DeleteRequest: { Key } })),
      this.retry,
    );
  }

  /** A transition with no counters and no events is a single UpdateItem (half the cost of a transaction). */
  private async updateTask(request: TransitionRequest): Promise<TransitionOutcome> {
    const update = this.taskUpdate(request, request.expectedVersion);
    let attempts = 0;
    try {
      const output = await withDynamoRetry("UpdateItem", this.retry, () => {
        attempts++;
        return this.client.send(new UpdateItemCommand({ ...update, ReturnValues: "ALL_NEW" }));
      });
      return { ok: true, task: taskFromItem(output.Attributes ?? {}) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const item = conditionFailureItem(error);
      const current = item ? taskFromItem(item) : undefined;
      // A write whose response was lost and that was sent again fails its own condition: recognise it.
      const resent = attempts > 1 || sdkAttempts(error) > 1;
      if (current && resent && isOwnWrite(current, request)) return { ok: true, task: current };
      return { ok: false, current };
    }
  }

  private async transact(actions: TransactWriteItem[]): Promise<void> {
    const token = randomUUID();
    await withDynamoRetry("TransactWriteItems", this.retry, () =>
      this.client.send(new TransactWriteItemsCommand({ TransactItems: actions, ClientRequestToken: token })),
    );
  }

  private async fill(
    stream: ListingStream,
    index: IndexName,
    query: ListTasksQuery,
    before: string | undefined,
    budget: { scanned: number; readonly max: number },
  ): Promise<void> {
    const parts: ExpressionParts = { names: { "#pk": `${index}pk` }, values: { ":pk": stream.partition } };
    let keyCondition = "#pk = :pk";
    if (before !== undefined) {
      parts.names["#sk"] = `${index}sk`;
      parts.values[":before"] = before;
      keyCondition += " AND #sk < :before";
    }
    const filters: string[] = [];
    if (query.taskType !== undefined) {
      parts.names["#taskType"] = "taskType";
      parts.values[":taskType"] = query.taskType;
      filters.push("#taskType = :taskType");
    }
    if (query.updatedBefore !== undefined) {
      parts.names["#updatedAt"] = "updatedAt";
      parts.values[":updatedBefore"] = query.updatedBefore;
      filters.push("#updatedAt < :updatedBefore");
    }
    // Every stream reads at least once, so a page always makes progress however small the budget.
    while (
      stream.buffer.length === 0 &&
      !stream.done &&
      (stream.position === undefined || budget.scanned < budget.max)
    ) {
      const output = await withDynamoRetry("Query", this.retry, () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: index,
            KeyConditionExpression: keyCondition,
            ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
            ExpressionAttributeNames: parts.names,
            ExpressionAttributeValues: marshall(parts.values, MARSHALL_OPTIONS),
            ScanIndexForward: false,
            Limit: stream.pageSize,
            ...(stream.lastEvaluatedKey ? { ExclusiveStartKey: stream.lastEvaluatedKey } : {}),
          }),
        ),
      );
      for (const item of output.Items ?? []) {
        const task = taskFromItem(item);
        stream.buffer.push({ task, sortKey: TaskKeys.listing(task.createdAt, task.taskId) });
      }
      budget.scanned += output.ScannedCount ?? output.Items?.length ?? 0;
      stream.lastEvaluatedKey = output.LastEvaluatedKey;
      stream.done = output.LastEvaluatedKey === undefined;
      const position = output.LastEvaluatedKey?.[`${index}sk`]?.S;
      if (position !== undefined) stream.position = position;
      stream.pageSize = Math.min(stream.maxPageSize, stream.pageSize * 2);
    }
  }

  private async pendingInShard(
    shard: number,
    olderThan: string,
    limit: number,
  ): Promise<{ sortKey: string; entry: OutboxEntry }[]> {
    const found: { sortKey: string; entry: OutboxEntry }[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const output = await withDynamoRetry("Query", this.retry, () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: "gsi1",
            KeyConditionExpression: "gsi1pk = :pk AND gsi1sk < :before",
            ExpressionAttributeValues: marshall(
              { ":pk": TaskKeys.pendingOutbox(shard), ":before": olderThan },
              MARSHALL_OPTIONS,
            ),
            ScanIndexForward: true,
            Limit: limit - found.length,
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        ),
      );
      for (const item of output.Items ?? []) {
        const raw = unmarshall(item);
        found.push({
          sortKey: String(raw.gsi1sk),
          entry: { id: String(raw.id), createdAt: String(raw.createdAt), events: raw.events as BusEvent[] },
        });
      }
      startKey = output.LastEvaluatedKey;
    } while (startKey && found.length < limit);
    return found;
  }

  private taskItem(task: Task): Record<string, AttributeValue> {
    const shard = shardOf(task.taskId, this.shards);
    const listing = TaskKeys.listing(task.createdAt, task.taskId);
    return marshall(
      {
        ...task,
        ...TaskKeys.task(task.taskId),
        entity: "task",
        gsi1pk: TaskKeys.allTasks(shard),
        gsi1sk: listing,
        gsi2pk: TaskKeys.byStatus(task.status, shard),
        gsi2sk: listing,
      },
      MARSHALL_OPTIONS,
    );
  }

  private idempotencyPut(idempotencyKey: string, taskId: string, now: Date, staleTaskId: string | undefined) {
    const expiresAt = Math.floor(now.getTime() / 1000) + this.idempotencyWindowSeconds;
    return {
      TableName: this.tableName,
      Item: marshall(
        {
          ...TaskKeys.idempotency(idempotencyKey),
          entity: "idempotency",
          taskId,
          createdAt: now.toISOString(),
          expiresAt,
        },
        MARSHALL_OPTIONS,
      ),
      ConditionExpression:
        staleTaskId === undefined
          ? "attribute_not_exists(pk)"
          : "attribute_not_exists(pk) OR taskId = :stale",
      ...(staleTaskId === undefined
        ? {}
        : { ExpressionAttributeValues: marshall({ ":stale": staleTaskId }) }),
      ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
    };
  }

  private outboxItem(
    taskId: string,
    version: number,
    events: readonly BusEvent[],
    now: Date,
  ): Record<string, AttributeValue> {
    const createdAt = now.toISOString();
    return marshall(
      {
        ...TaskKeys.outbox(taskId, version),
        entity: "outbox",
        gsi1pk: TaskKeys.pendingOutbox(shardOf(taskId, this.shards)),
        gsi1sk: TaskKeys.pendingOutboxSort(createdAt, taskId, version),
        id: outboxEntryId(taskId, version),
        createdAt,
        events,
      },
      MARSHALL_OPTIONS,
    );
  }

  private counterUpdate(taskId: string, counters: CounterDeltas): Update | undefined {
    return counterAddUpdate(this.tableName, TaskKeys.counters(shardOf(taskId, this.shards)), counters);
  }

  /**
   * The task's conditional update: SET patch, status (and its listing key), version + 1; REMOVE the
   * named fields; under the request's guards and, when given, a pinned version.
   */
  private taskUpdate(request: TransitionRequest, version: number | undefined) {
    const parts: ExpressionParts = {
      names: { "#status": "status", "#version": "version" },
      values: { ":one": 1 },
    };
    const removed = new Set<string>(request.remove ?? []);
    const status = request.to ?? request.patch.status;
    const sets: string[] = [];
    let i = 0;
    for (const [field, value] of Object.entries(request.patch)) {
      if (value === undefined || field === "status" || IMMUTABLE_FIELDS.has(field) || removed.has(field))
        continue;
      parts.names[`#f${i}`] = field;
      parts.values[`:f${i}`] = value;
      sets.push(`#f${i} = :f${i}`);
      i++;
    }
    if (status !== undefined) {
      parts.names["#gsi2pk"] = "gsi2pk";
      parts.values[":status"] = status;
      parts.values[":statusKey"] = TaskKeys.byStatus(status, shardOf(request.taskId, this.shards));
      sets.push("#status = :status", "#gsi2pk = :statusKey");
    }
    sets.push("#version = #version + :one");
    const removes: string[] = [];
    for (const field of removed) {
      if (IMMUTABLE_FIELDS.has(field) || field === "status") continue;
      parts.names[`#r${removes.length}`] = field;
      removes.push(`#r${removes.length}`);
    }

    const conditions = [`#status IN (${request.from.map((_, j) => `:from${j}`).join(", ")})`];
    request.from.forEach((from, j) => {
      parts.values[`:from${j}`] = from;
    });
    if (version !== undefined) {
      parts.values[":version"] = version;
      conditions.push("#version = :version");
    }
    if (request.leaseToken !== undefined) {
      parts.names["#leaseToken"] = "leaseToken";
      parts.values[":leaseToken"] = request.leaseToken;
      conditions.push("#leaseToken = :leaseToken");
    }
    if (request.leaseExpiredBefore !== undefined) {
      parts.names["#leaseExpiresAt"] = "leaseExpiresAt";
      parts.values[":leaseExpiredBefore"] = request.leaseExpiredBefore;
      conditions.push("#leaseExpiresAt < :leaseExpiredBefore");
    }
    return {
      TableName: this.tableName,
      Key: keyAttributes(TaskKeys.task(request.taskId)),
      UpdateExpression: `SET ${sets.join(", ")}${removes.length > 0 ? ` REMOVE ${removes.join(", ")}` : ""}`,
      ConditionExpression: conditions.join(" AND "),
      ExpressionAttributeNames: parts.names,
      ExpressionAttributeValues: marshall(parts.values, MARSHALL_OPTIONS),
      ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
    };
  }
}

interface ListedTask {
  readonly task: Task;
  readonly sortKey: string;
}

interface ListingStream {
  readonly partition: string;
  readonly buffer: ListedTask[];
  readonly maxPageSize: number;
  lastEvaluatedKey?: Record<string, AttributeValue> | undefined;
  /** Sort key of the last item read (matching the filter or not): everything above it has been seen. */
  position?: string;
  done: boolean;
  pageSize: number;
}

function taskFromItem(item: Record<string, AttributeValue>): Task {
  const raw = unmarshall(item);
  for (const attribute of KEY_ATTRIBUTES) delete raw[attribute];
  return raw as Task;
}

/** The same guards as the write's condition expression, evaluated on an item in hand. */
function guardHolds(task: Task, request: TransitionRequest): boolean {
  if (!request.from.includes(task.status)) return false;
  if (request.expectedVersion !== undefined && task.version !== request.expectedVersion) return false;
  if (request.leaseToken !== undefined && task.leaseToken !== request.leaseToken) return false;
  if (request.leaseExpiredBefore !== undefined) {
    if (task.leaseExpiresAt === undefined || !(task.leaseExpiresAt < request.leaseExpiredBefore))
      return false;
  }
  return true;
}

/** What the update expression does to `base`, normalised the way DynamoDB stores it. */
function applyTransition(base: Task, request: TransitionRequest): Task {
  const next: Record<string, unknown> = { ...base };
  const removed = new Set<string>(request.remove ?? []);
  for (const [field, value] of Object.entries(request.patch)) {
    if (value === undefined || IMMUTABLE_FIELDS.has(field) || removed.has(field)) continue;
    next[field] = value;
  }
  for (const field of removed) {
    if (!IMMUTABLE_FIELDS.has(field) && field !== "status") delete next[field];
  }
  const status = request.to ?? request.patch.status;
  if (status !== undefined) next.status = status;
  next.version = base.version + 1;
  return unmarshall(marshall(next, MARSHALL_OPTIONS)) as Task;
}

/** True when `current` is exactly what this request would have written. */
function isOwnWrite(current: Task, request: TransitionRequest): boolean {
  if (request.expectedVersion !== undefined && current.version !== request.expectedVersion + 1) return false;
  const status = request.to ?? request.patch.status;
  if (status !== undefined && current.status !== status) return false;
  const stored = current as unknown as Record<string, unknown>;
  const removed = new Set<string>(request.remove ?? []);
  for (const field of removed) {
    if (!IMMUTABLE_FIELDS.has(field) && field !== "status" && field in stored) return false;
  }
  for (const [field, value] of Object.entries(request.patch)) {
    if (value === undefined || IMMUTABLE_FIELDS.has(field) || removed.has(field) || field === "status")
      continue;
    const normalised = unmarshall(marshall({ value }, MARSHALL_OPTIONS)).value;
    if (!isDeepStrictEqual(stored[field], normalised)) return false;
  }
  return true;
}

function encodeCursor(sortKey: string): string {
  return Buffer.from(JSON.stringify({ before: sortKey }), "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (
      typeof parsed === "object" &&
      parsed !== null &&
      "before" in parsed &&
      typeof parsed.before === "string" &&
      // Only a listing key this store wrote reaches DynamoDB: anything else (empty, too long for a sort
      // key) would be a ValidationException there, a 500 here.
      isTaskListingPosition(parsed.before)
    ) {
      return parsed.before;
    }
  } catch {
    // reported below
  }
  throw new ValidationError("invalid cursor", [
    { path: "cursor", message: "not a cursor this store issued" },
  ]);
}
