import type { BusEvent } from "#shared/domain/events";
import type { CounterDeltas } from "#shared/domain/statistics";
import type { Task, TaskStatus } from "#shared/domain/task";

/** Fields a transition may set; `undefined` values are ignored, names in `remove` are deleted. */
export type TaskPatch = Partial<Omit<Task, "taskId" | "version" | "createdAt">>;

export interface CreateTaskRequest {
  readonly task: Task;
  /** Counter deltas applied atomically with the write (statistics). */
  readonly counters: CounterDeltas;
  /** Events stored in the outbox atomically with the write, published afterwards. */
  readonly events: readonly BusEvent[];
}

export type CreateTaskOutcome =
  | { readonly created: true; readonly task: Task }
  /** The idempotency key was used before: this is the task it created. Nothing was written. */
  | { readonly created: false; readonly task: Task };

export interface TransitionRequest {
  readonly taskId: string;
  /** The write happens only if the task's current status is one of these. */
  readonly from: readonly TaskStatus[];
  /** The new status; omit to change fields without changing status. */
  readonly to?: TaskStatus;
  /** Optimistic concurrency: the write happens only if the stored version equals this. */
  readonly expectedVersion?: number;
  /** The write happens only if the stored lease token equals this (the worker that holds the task). */
  readonly leaseToken?: string;
  /** The write happens only if the stored lease expired before this ISO time (re-claiming a task). */
  readonly leaseExpiredBefore?: string;
  readonly patch: TaskPatch;
  /**
   * The task as the caller last read it from this store. An adapter may use it instead of reading
   * the item first (one request less per transition); it must still condition the write on the
   * snapshot's version, and on a mismatch decide again on the stored item.
   */
  readonly snapshot?: Task;
  /** Attribute names to delete. */
  readonly remove?: readonly (keyof Task)[];
  readonly counters?: CounterDeltas;
  readonly events?: readonly BusEvent[];
}

export type TransitionOutcome =
  | { readonly ok: true; readonly task: Task }
  /** The condition failed: `current` is the stored task (undefined if there is none). Nothing was written. */
  | { readonly ok: false; readonly current: Task | undefined };

export interface ListTasksQuery {
  readonly status?: TaskStatus;
  readonly taskType?: string;
  /** Only tasks last updated before this ISO time. */
  readonly updatedBefore?: string;
  readonly limit: number;
  readonly cursor?: string;
}

/**
 * A page of tasks. It may hold fewer than `limit` items, even none, and still have a `nextCursor`:
 * a store bounds the work of one call, and a filtered listing that read its budget without filling
 * the page says where to continue.
 */
export interface TaskPage {
  readonly items: readonly Task[];
  readonly nextCursor?: string;
}

/**
 * Whether `key` is a task listing position, `<createdAt ISO time>#<taskId>` — what a listing cursor
 * encodes. Stores check a decoded cursor with it, so a tampered one is a 400, never a store error.
 *
 * @example
 * isTaskListingPosition("2026-01-01T00:00:00.000Z#3f2a…"); // true
 */
export function isTaskListingPosition(key: string): boolean {
  return key.length <= 512 && /^\d{4}-\d{2}-\d{2}T[0-9:.]+Z#[^\p{Cc}\p{Cs}]{1,256}$/u.test(key);
}

/**
 * Events that were committed with a write and not yet confirmed as published. The entry id is
 * `<taskId>#<version>`, with the version the write produced, so the writer knows it without a read.
 */
export function outboxEntryId(taskId: string, version: number): string {
  return `${taskId}#${version}`;
}

export interface OutboxEntry {
  readonly id: string;
  readonly createdAt: string;
  readonly events: readonly BusEvent[];
}

/**
 * Durable task records. Every status change is one conditional write that also applies counter
 * deltas and stores the events to publish (a transactional outbox), so a crash between the write
 * and the publish loses nothing.
 *
 * Every successful write increments `version` by one and sets `updatedAt` from the patch.
 *
 * @example
 * const outcome = await store.transition({
 *   taskId, from: ["submitted"], to: "working", expectedVersion: task.version,
 *   patch: { attempts: task.attempts + 1, leaseToken, leaseExpiresAt, updatedAt: now },
 * });
 * if (!outcome.ok) return; // somebody else won the race; outcome.current says who
 */
export interface TaskStore {
  /** Writes a new task. With `task.idempotencyKey` set, a second create with the same key writes nothing. */
  create(request: CreateTaskRequest): Promise<CreateTaskOutcome>;
  get(taskId: string): Promise<Task | undefined>;
  /** The task an idempotency key created, if the key is known. */
  findByIdempotencyKey(idempotencyKey: string): Promise<Task | undefined>;
  /** Newest first (createdAt, then taskId, descending); every task appears on exactly one page. */
  list(query: ListTasksQuery): Promise<TaskPage>;
  transition(request: TransitionRequest): Promise<TransitionOutcome>;
  /** The sum of all counter deltas ever applied. */
  readCounters(): Promise<Record<string, number>>;
  /** Outbox entries created before `olderThan` (ISO), oldest first. */
  pendingEvents(olderThan: string, limit: number): Promise<readonly OutboxEntry[]>;
  /** Deletes outbox entries once their events were published. Unknown ids are ignored. */
  clearEvents(ids: readonly string[]): Promise<void>;
}
