import { ValidationError } from "#shared/domain/errors";
import type { Task } from "#shared/domain/task";
import { applyWrite, guardHolds } from "#shared/domain/transitions";
import {
  type CountedChange,
  type CreateTaskOutcome,
  type CreateTaskRequest,
  isTaskListingPosition,
  type ListTasksQuery,
  type TaskChange,
  type TaskPage,
  type TaskStore,
  type TransitionOutcome,
  type TransitionRequest,
  taskChangeId,
} from "#shared/ports/task-store";
import { deepCopy } from "./copy.ts";

/** Receives committed changes in batches; a rejection delivers the batch again from `failedAt`. */
export type TaskChangeHandler = (
  changes: readonly TaskChange[],
) => Promise<{ failedAt?: number } | undefined>;

/** How many counted change ids the store remembers to recognise a redelivered change. */
const COUNTED_WINDOW = 100_000;

export interface MemoryTaskStoreOptions {
  /** Most changes per delivered batch. @default 100 */
  readonly batchSize?: number;
  /** Pause before a failed batch is delivered again. @default 50 */
  readonly retryDelayMs?: number;
  /** Most tasks one `list` call reads, whatever the filter (as on DynamoDB). @default 1000 */
  readonly maxScannedPerList?: number;
}

/**
 * The embedded TaskStore: the same conditional-write semantics as the DynamoDB adapter, in process,
 * and the same change feed as the table's stream: every committed write becomes a change (task before
 * and after) delivered in order, in batches, to the handler given to `onChanges`, again from the first
 * change it reports failed. Records are deep-copied in and out so callers can never mutate stored
 * state.
 *
 * @example
 * const store = new MemoryTaskStore();
 * store.onChanges((changes) => stream.process(changes));
 * await store.create({ task });
 */
export class MemoryTaskStore implements TaskStore {
  private readonly tasks = new Map<string, Task>();
  private readonly idempotencyKeys = new Map<string, string>();
  private readonly counters = new Map<string, number>();
  /** Ids of the most recently counted changes, oldest first (a window: memory stays bounded). */
  private readonly counted = new Set<string>();
  private readonly pending: TaskChange[] = [];
  /** Listing positions (`createdAt#taskId`) in ascending order; createdAt never changes, so neither does a position. */
  private readonly positions: string[] = [];
  private readonly maxScannedPerList: number;
  private readonly batchSize: number;
  private readonly retryDelayMs: number;
  private handler: TaskChangeHandler | undefined;
  private draining: Promise<void> | undefined;

  constructor(options: MemoryTaskStoreOptions = {}) {
    this.batchSize = options.batchSize ?? 100;
    this.retryDelayMs = options.retryDelayMs ?? 50;
    this.maxScannedPerList = Math.max(1, options.maxScannedPerList ?? 1000);
  }

  /** Feeds every committed change, from now on, to `handler`. Returns a function that stops it. */
  onChanges(handler: TaskChangeHandler): () => void {
    this.handler = handler;
    this.drain();
    return () => {
      if (this.handler === handler) this.handler = undefined;
    };
  }

  /** Resolves once every change committed so far was delivered (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** True while changes wait to be delivered. */
  get busy(): boolean {
    return this.draining !== undefined || (this.handler !== undefined && this.pending.length > 0);
  }

  async create({ task }: CreateTaskRequest): Promise<CreateTaskOutcome> {
    if (task.idempotencyKey !== undefined) {
      const existingId = this.idempotencyKeys.get(task.idempotencyKey);
      const existing = existingId === undefined ? undefined : this.tasks.get(existingId);
      if (existing) return { created: false, task: deepCopy(existing) };
    }
    if (this.tasks.has(task.taskId)) throw new Error(`task ${task.taskId} already exists`);
    const stored = deepCopy(task);
    this.tasks.set(task.taskId, stored);
    this.insertPosition(sortKey(task));
    if (task.idempotencyKey !== undefined) this.idempotencyKeys.set(task.idempotencyKey, task.taskId);
    this.committed(undefined, stored);
    return { created: true, task: deepCopy(stored) };
  }

  async get(taskId: string): Promise<Task | undefined> {
    const task = this.tasks.get(taskId);
    return task === undefined ? undefined : deepCopy(task);
  }

  async findByIdempotencyKey(idempotencyKey: string): Promise<Task | undefined> {
    const taskId = this.idempotencyKeys.get(idempotencyKey);
    return taskId === undefined ? undefined : this.get(taskId);
  }

  /**
   * Walks the ordered positions from the cursor down, reading at most `maxScannedPerList` tasks: the
   * work of one call is bounded whatever the filter, as on DynamoDB. A page cut short by the budget
   * ends with a `nextCursor` at the last task read.
   */
  async list(query: ListTasksQuery): Promise<TaskPage> {
    const before = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const items: Task[] = [];
    let scanned = 0;
    let index = before === undefined ? this.positions.length - 1 : lowerBound(this.positions, before) - 1;
    // One match more than the page tells whether there is a next page.
    for (; index >= 0 && items.length <= query.limit; index--) {
      if (scanned === this.maxScannedPerList) {
        // Continue below the last task read.
        return { items, nextCursor: encodeCursor(this.positions[index + 1] as string) };
      }
      const position = this.positions[index] as string;
      scanned++;
      const task = this.tasks.get(position.slice(position.indexOf("#") + 1)) as Task;
      if (
        (query.status === undefined || task.status === query.status) &&
        (query.taskType === undefined || task.taskType === query.taskType) &&
        (query.updatedBefore === undefined || task.updatedAt < query.updatedBefore)
      ) {
        items.push(deepCopy(task));
      }
    }
    if (items.length <= query.limit) return { items };
    const page = items.slice(0, query.limit);
    return { items: page, nextCursor: encodeCursor(sortKey(page.at(-1) as Task)) };
  }

  async transition(request: TransitionRequest): Promise<TransitionOutcome> {
    const current = this.tasks.get(request.taskId);
    if (!current || !guardHolds(current, request)) {
      return { ok: false, current: current === undefined ? undefined : deepCopy(current) };
    }
    const next = applyWrite(current, request, deepCopy);
    this.tasks.set(next.taskId, next);
    this.committed(current, next);
    return { ok: true, task: deepCopy(next) };
  }

  async applyCounters(changes: readonly CountedChange[]): Promise<void> {
    for (const change of changes) {
      if (this.counted.has(change.id)) continue;
      this.counted.add(change.id);
      // A redelivery repeats changes of the last few batches, never ones this far back.
      if (this.counted.size > COUNTED_WINDOW)
        this.counted.delete(this.counted.values().next().value as string);
      for (const [name, delta] of Object.entries(change.deltas)) {
        this.counters.set(name, (this.counters.get(name) ?? 0) + delta);
      }
    }
  }

  async readCounters(): Promise<Record<string, number>> {
    return Object.fromEntries(this.counters);
  }

  /** Test hook: the stored record exactly as kept, internals included. */
  inspect(taskId: string): Task | undefined {
    const task = this.tasks.get(taskId);
    return task === undefined ? undefined : deepCopy(task);
  }

  private insertPosition(position: string): void {
    // Tasks mostly arrive in time order: appending is the common case.
    const last = this.positions.at(-1);
    if (last === undefined || last < position) this.positions.push(position);
    else this.positions.splice(lowerBound(this.positions, position), 0, position);
  }

  private committed(before: Task | undefined, after: Task): void {
    this.pending.push({
      id: taskChangeId(before, after),
      ...(before ? { before: deepCopy(before) } : {}),
      after: deepCopy(after),
    });
    this.drain();
  }

  /** One delivery loop at a time, so changes arrive in commit order, as a stream shard delivers them. */
  private drain(): void {
    if (this.draining || !this.handler || this.pending.length === 0) return;
    this.draining = (async () => {
      // Let the writes of the current tick join the batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.handler && this.pending.length > 0) {
        const batch = this.pending.slice(0, this.batchSize);
        let failedAt: number | undefined;
        try {
          failedAt = (await this.handler(batch))?.failedAt;
        } catch {
          failedAt = 0;
        }
        this.pending.splice(0, failedAt ?? batch.length);
        if (failedAt !== undefined) await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs));
      }
    })().finally(() => {
      this.draining = undefined;
      this.drain();
    });
  }
}

/** The first index whose value is not below `value` (binary search in an ascending array). */
function lowerBound(sorted: readonly string[], value: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as string) < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

function sortKey(task: Task): string {
  return `${task.createdAt}#${task.taskId}`;
}

function encodeCursor(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  const key = Buffer.from(cursor, "base64url").toString("utf8");
  // A cursor is a sort key this store handed out: "<ISO time>#<taskId>".
  if (!isTaskListingPosition(key)) {
    throw new ValidationError("invalid cursor", [
      { path: "cursor", message: "not a cursor this API returned" },
    ]);
  }
  return key;
}
