import type { CounterDeltas } from "#shared/domain/statistics";
import type { Task } from "#shared/domain/task";
import type { TaskWrite } from "#shared/domain/transitions";

export type { TaskPatch } from "#shared/domain/transitions";

export interface CreateTaskRequest {
  readonly task: Task;
}

export type CreateTaskOutcome =
  | { readonly created: true; readonly task: Task }
  /** The idempotency key was used before: this is the task it created. Nothing was written. */
  | { readonly created: false; readonly task: Task };

/**
 * One conditional write of one task (built by `shared/domain/transitions.ts`). Events and statistics
 * are not part of it: they are derived from the committed change (the table's stream).
 */
export interface TransitionRequest extends TaskWrite {
  readonly taskId: string;
}

export type TransitionOutcome =
  | { readonly ok: true; readonly task: Task }
  /** The condition failed: `current` is the stored task (undefined if there is none). Nothing was written. */
  | { readonly ok: false; readonly current: Task | undefined };

export interface ListTasksQuery {
  readonly status?: Task["status"];
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
 * A committed write as the change stream reports it: the task before and after. `id` names the change
 * (`<taskId>#<version>`, or `<taskId>#<version>#removed` for a deletion), so a redelivered change is
 * recognised.
 */
export interface TaskChange {
  readonly id: string;
  readonly before?: Task;
  readonly after?: Task;
}

export function taskChangeId(before: Task | undefined, after: Task | undefined): string {
  if (after) return `${after.taskId}#${after.version}`;
  return `${before?.taskId ?? "?"}#${before?.version ?? 0}#removed`;
}

/** The statistics deltas of one change, to be applied once. */
export interface CountedChange {
  readonly id: string;
  readonly deltas: CounterDeltas;
}

/**
 * Durable task records. Every write is one conditional write of one task item; statistics are
 * applied afterwards from the change stream (`applyCounters`), exactly once per change.
 *
 * Every successful write increments `version` by one.
 *
 * @example
 * const outcome = await store.transition({ taskId, ...claimWrite(task, { now, leaseToken, leaseSeconds, agentId }) });
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
  /**
   * Adds the deltas of consecutive changes of one stream partition, in stream order. A delivery that
   * starts again at the first change of an earlier call counts only what that call did not; every
   * change is counted once.
   */
  applyCounters(changes: readonly CountedChange[]): Promise<void>;
  /** The sum of all counter deltas ever applied. */
  readCounters(): Promise<Record<string, number>>;
}
