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
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import {
  batchGetAll,
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
import { isTerminal } from "#shared/domain/lifecycle";
import type { CounterDeltas } from "#shared/domain/statistics";
import type { Task, TaskStatus } from "#shared/domain/task";
import { IMMUTABLE_FIELDS } from "#shared/domain/transitions";
import { type Clock, systemClock } from "#shared/ports/clock";
import {
  type CountedChange,
  type CreateTaskOutcome,
  type CreateTaskRequest,
  isTaskListingPosition,
  type ListTasksQuery,
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
   * Shards of the statistics counters and the task listings. Every process that shares
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
const MAX_CONDITION_VALUES = 100;
/** Statuses listed from the sparse index of unfinished tasks; the others filter the all-tasks index. */
const ACTIVE_STATUSES: ReadonlySet<TaskStatus> = new Set(["submitted", "working", "input-required"]);
/**
 * How long a statistics batch marker is kept: longer than a stream keeps a record (24 h), so any
 * redelivery still finds it.
 */
const COUNTED_MARKER_SECONDS = 2 * 86_400;

interface ExpressionParts {
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

/**
 * The TaskStore on one DynamoDB table (docs/adr/0002-single-table-design.md,
 * docs/adr/0007-write-path-cost.md). Every write is one conditional write of the task item: a PutItem
 * to create (a transaction only with an idempotency key), an UpdateItem per transition; a lost race
 * returns the stored item from the failed condition (ALL_OLD), without another read. Events and
 * statistics are not written here: they follow from the table's stream (`applyCounters`, one
 * transaction per stream batch). Throttling and transient failures are retried with backoff.
 *
 * @example
 * const store = new DynamoTaskStore({ client: new DynamoDBClient({}), tableName: process.env.TABLE_NAME! });
 * const outcome = await store.transition({
 *   taskId, from: ["submitted"], to: "working", expectedVersion: task.version,
 *   patch: { leaseToken, leaseExpiresAt, updatedAt: now },
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

  async create({ task }: CreateTaskRequest): Promise<CreateTaskOutcome> {
    const now = this.clock.now();
    const taskItem = this.taskItem(task);
    const stored = taskFromItem(taskItem);
    const taskPut = {
      TableName: this.tableName,
      Item: taskItem,
      ConditionExpression: "attribute_not_exists(pk)",
    };

    if (task.idempotencyKey === undefined) {
      let attempts = 0;
      try {
        await withDynamoRetry("PutItem", this.retry, () => {
          attempts++;
          return this.client.send(
            new PutItemCommand({ ...taskPut, ReturnValuesOnConditionCheckFailure: "ALL_OLD" }),
          );
        });
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // A put whose response was lost and that was sent again fails its own condition (a lone
        // PutItem has no request token): the task it finds is its own if it is the one this create
        // wrote, possibly moved on since by a worker.
        const item = conditionFailureItem(error);
        const resent = attempts > 1 || sdkAttempts(error) > 1;
        if (resent && item && isOwnCreate(taskFromItem(item), stored)) return { created: true, task: stored };
        throw new TaskAlreadyExistsError(task.taskId);
      }
      return { created: true, task: stored };
    }

    // A key whose task is gone (expired) may be taken over; that needs a second round at most.
    let staleTaskId: string | undefined;
    for (let round = 0; round < 3; round++) {
      const actions: TransactWriteItem[] = [{ Put: taskPut }];
      const idempotencyIndex =
        actions.push({ Put: this.idempotencyPut(task.idempotencyKey, task.taskId, now, staleTaskId) }) - 1;
      try {
        await this.transact(actions);
        return { created: true, task: stored };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const reasons = cancellationReasons(error) ?? [];
        const keyHolder = reasons[idempotencyIndex];
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
    const active = query.status !== undefined && ACTIVE_STATUSES.has(query.status);
    const index: IndexName = active ? "gsi4" : "gsi3";
    const partitions = Array.from({ length: this.shards }, (_, shard) =>
      active ? TaskKeys.active(shard) : TaskKeys.allTasks(shard),
    );
    const filtered =
      query.taskType !== undefined || query.updatedBefore !== undefined || query.status !== undefined;
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
    if (request.from.length === 0 || request.from.length > MAX_CONDITION_VALUES) {
      return { ok: false, current: await this.get(request.taskId) };
    }
    return this.updateTask(request);
  }

  /**
   * One transaction per call: the deltas, summed, are added to one statistics shard (picked by the
   * first change, so concurrent stream shards spread over the shards) together with a marker named
   * after the first change that records the last one counted. A delivery that starts again at that
   * change finds the marker and counts only what follows its last change.
   */
  async applyCounters(changes: readonly CountedChange[]): Promise<void> {
    // Every marker met drops at least one change, so this ends. No fixed bound on the rounds: a
    // delivery read again from the stream's start (a consumer restarted without its checkpoint, as
    // the emulated runtime on its data directory) meets one marker per earlier delivery it spans, and
    // giving up would fail that delivery again on every retry.
    let remaining = changes;
    while (remaining.length > 0) {
      const first = remaining[0]?.id ?? "";
      const deltas: CounterDeltas = {};
      for (const change of remaining) {
        for (const [name, delta] of Object.entries(change.deltas)) deltas[name] = (deltas[name] ?? 0) + delta;
      }
      const expiresAt = Math.floor(this.clock.now().getTime() / 1000) + COUNTED_MARKER_SECONDS;
      const actions: TransactWriteItem[] = [
        {
          Put: {
            TableName: this.tableName,
            Item: marshall({
              ...TaskKeys.countedBatch(first),
              last: remaining.at(-1)?.id ?? first,
              count: remaining.length,
              expiresAt,
            }),
            ConditionExpression: "attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          },
        },
      ];
      const update = counterAddUpdate(this.tableName, TaskKeys.counters(shardOf(first, this.shards)), deltas);
      if (update) actions.push({ Update: update });
      try {
        await this.transact(actions);
        return;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const marker = conditionFailureItem(error, 0);
        const last = marker ? unmarshall(marker).last : undefined;
        const at = remaining.findIndex((change) => change.id === last);
        // A marker whose last change is not in this delivery counted past its end: nothing is left.
        remaining = at < 0 ? [] : remaining.slice(at + 1);
      }
    }
  }

  async readCounters(): Promise<Record<string, number>> {
    const shardKeys = Array.from({ length: this.shards }, (_, shard) => TaskKeys.counters(shard));
    return readShardedCounters(this.client, this.tableName, shardKeys, this.retry);
  }

  /** A transition is a single UpdateItem (half the cost of a transaction, and no read). */
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

  /**
   * Reads the next keys of one shard's listing (the task indexes project keys only), then the tasks
   * themselves (BatchGetItem, consistent), and keeps those the query's filters accept.
   */
  private async fill(
    stream: ListingStream,
    index: IndexName,
    query: ListTasksQuery,
    before: string | undefined,
    budget: { scanned: number; readonly max: number },
  ): Promise<void> {
    const values: Record<string, string> = { ":pk": stream.partition };
    let keyCondition = "#pk = :pk";
    const names: Record<string, string> = { "#pk": `${index}pk` };
    if (before !== undefined) {
      names["#sk"] = `${index}sk`;
      values[":before"] = before;
      keyCondition += " AND #sk < :before";
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
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: marshall(values),
            ScanIndexForward: false,
            Limit: stream.pageSize,
            ...(stream.lastEvaluatedKey ? { ExclusiveStartKey: stream.lastEvaluatedKey } : {}),
          }),
        ),
      );
      const keys = (output.Items ?? []).map((item) => ({
        pk: item.pk ?? { S: "" },
        sk: item.sk ?? { S: "" },
      }));
      const items =
        keys.length === 0
          ? []
          : await batchGetAll(this.client, this.tableName, keys, {
              ...this.retry,
              consistentRead: true,
            });
      const byKey = new Map(items.map((item) => [item.pk?.S, taskFromItem(item)]));
      for (const key of keys) {
        const task = byKey.get(key.pk.S);
        if (!task || !matches(task, query)) continue;
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

  private taskItem(task: Task): Record<string, AttributeValue> {
    const shard = shardOf(task.taskId, this.shards);
    const listing = TaskKeys.listing(task.createdAt, task.taskId);
    return marshall(
      {
        ...task,
        ...TaskKeys.task(task.taskId),
        entity: "task",
        gsi3pk: TaskKeys.allTasks(shard),
        gsi3sk: listing,
        ...(isTerminal(task.status) ? {} : { gsi4pk: TaskKeys.active(shard), gsi4sk: listing }),
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
      parts.values[":status"] = status;
      sets.push("#status = :status");
    }
    sets.push("#version = #version + :one");
    const removes: string[] = [];
    // A task that ends leaves the sparse index of unfinished tasks: one index delete, then no more.
    if (status !== undefined && isTerminal(status)) {
      parts.names["#gsi4pk"] = "gsi4pk";
      parts.names["#gsi4sk"] = "gsi4sk";
      removes.push("#gsi4pk", "#gsi4sk");
    }
    for (const field of removed) {
      if (IMMUTABLE_FIELDS.has(field) || field === "status") continue;
      const name = `#r${removes.length}`;
      parts.names[name] = field;
      removes.push(name);
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

/** A task item as the domain sees it: key and layout attributes stripped. */
export function taskFromItem(item: Record<string, AttributeValue>): Task {
  const raw = unmarshall(item);
  for (const attribute of KEY_ATTRIBUTES) delete raw[attribute];
  return raw as Task;
}

/** The listing query's filters, on a task read from the table. */
function matches(task: Task, query: ListTasksQuery): boolean {
  return (
    (query.status === undefined || task.status === query.status) &&
    (query.taskType === undefined || task.taskType === query.taskType) &&
    (query.updatedBefore === undefined || task.updatedAt < query.updatedBefore)
  );
}

/** True when `current` is the task `created` describes: a task's creation fields never change. */
function isOwnCreate(current: Task, created: Task): boolean {
  return (
    current.createdAt === created.createdAt &&
    current.taskType === created.taskType &&
    current.jobId === created.jobId &&
    isDeepStrictEqual(current.input, created.input)
  );
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
