import { ValidationError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import { applyTaskWrite, type Task } from "#shared/domain/task";
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
import { deepCopy } from "./copy.ts";

/**
 * The embedded TaskStore: the same conditional-write semantics as the DynamoDB adapter, in process.
 * Records are deep-copied in and out so callers can never mutate stored state.
 *
 * @example
 * const store = new MemoryTaskStore();
 * await store.create({ task, counters: { submitted: 1 }, events: [] });
 */
export class MemoryTaskStore implements TaskStore {
  private readonly tasks = new Map<string, Task>();
  private readonly idempotencyKeys = new Map<string, string>();
  private readonly counters = new Map<string, number>();
  private readonly outbox = new Map<string, OutboxEntry>();
  /** Listing positions (`createdAt#taskId`) in ascending order; createdAt never changes, so neither does a position. */
  private readonly positions: string[] = [];
  private readonly clock: Clock;
  private readonly maxScannedPerList: number;

  constructor(options: { clock?: Clock; maxScannedPerList?: number } = {}) {
    this.clock = options.clock ?? systemClock;
    this.maxScannedPerList = Math.max(1, options.maxScannedPerList ?? 1000);
  }

  async create({ task, counters, events }: CreateTaskRequest): Promise<CreateTaskOutcome> {
    if (task.idempotencyKey !== undefined) {
      const existingId = this.idempotencyKeys.get(task.idempotencyKey);
      const existing = existingId === undefined ? undefined : this.tasks.get(existingId);
      if (existing) return { created: false, task: deepCopy(existing) };
    }
    if (this.tasks.has(task.taskId)) throw new Error(`task ${task.taskId} already exists`);
    this.tasks.set(task.taskId, deepCopy(task));
    this.insertPosition(sortKey(task));
    if (task.idempotencyKey !== undefined) this.idempotencyKeys.set(task.idempotencyKey, task.taskId);
    this.applyCounters(counters);
    this.addOutbox(task.taskId, task.version, events);
    return { created: true, task: deepCopy(task) };
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
    const next = applyTaskWrite(
      current,
      request.patch,
      request.remove,
      request.to ?? current.status,
      deepCopy,
    );
    this.tasks.set(next.taskId, next);
    this.applyCounters(request.counters ?? {});
    this.addOutbox(next.taskId, next.version, request.events ?? []);
    return { ok: true, task: deepCopy(next) };
  }

  async readCounters(): Promise<Record<string, number>> {
    return Object.fromEntries(this.counters);
  }

  async pendingEvents(olderThan: string, limit: number): Promise<readonly OutboxEntry[]> {
    return [...this.outbox.values()]
      .filter((e) => e.createdAt < olderThan)
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1))
      .slice(0, limit)
      .map((e) => deepCopy(e));
  }

  async clearEvents(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.outbox.delete(id);
  }

  /** Test hook: the stored record exactly as kept, internals included. */
  inspect(taskId: string): Task | undefined {
    const task = this.tasks.get(taskId);
    return task === undefined ? undefined : deepCopy(task);
  }

  /** Test hook: every outbox entry not yet cleared. */
  inspectOutbox(): OutboxEntry[] {
    return [...this.outbox.values()].map((e) => deepCopy(e));
  }

  private insertPosition(position: string): void {
    // Tasks mostly arrive in time order: appending is the common case.
    const last = this.positions.at(-1);
    if (last === undefined || last < position) this.positions.push(position);
    else this.positions.splice(lowerBound(this.positions, position), 0, position);
  }

  private applyCounters(deltas: Readonly<Record<string, number>>): void {
    for (const [name, delta] of Object.entries(deltas)) {
      this.counters.set(name, (this.counters.get(name) ?? 0) + delta);
    }
  }

  private addOutbox(taskId: string, version: number, events: readonly BusEvent[]): void {
    if (events.length === 0) return;
    const id = outboxEntryId(taskId, version);
    this.outbox.set(id, {
      id,
      createdAt: this.clock.now().toISOString(),
      events: deepCopy([...events]),
    });
  }
}

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
