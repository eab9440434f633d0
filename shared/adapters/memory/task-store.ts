import { ValidationError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { Task } from "#shared/domain/task";
import { type Clock, systemClock } from "#shared/ports/clock";
import {
  type CreateTaskOutcome,
  type CreateTaskRequest,
  type ListTasksQuery,
  type OutboxEntry,
  outboxEntryId,
  type TaskPage,
  type TaskStore,
  type TransitionOutcome,
  type TransitionRequest,
} from "#shared/ports/task-store";

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
  private readonly clock: Clock;

  constructor(options: { clock?: Clock } = {}) {
    this.clock = options.clock ?? systemClock;
  }

  async create({ task, counters, events }: CreateTaskRequest): Promise<CreateTaskOutcome> {
    if (task.idempotencyKey !== undefined) {
      const existingId = this.idempotencyKeys.get(task.idempotencyKey);
      const existing = existingId === undefined ? undefined : this.tasks.get(existingId);
      if (existing) return { created: false, task: structuredClone(existing) };
    }
    if (this.tasks.has(task.taskId)) throw new Error(`task ${task.taskId} already exists`);
    this.tasks.set(task.taskId, structuredClone(task));
    if (task.idempotencyKey !== undefined) this.idempotencyKeys.set(task.idempotencyKey, task.taskId);
    this.applyCounters(counters);
    this.addOutbox(task.taskId, task.version, events);
    return { created: true, task: structuredClone(task) };
  }

  async get(taskId: string): Promise<Task | undefined> {
    const task = this.tasks.get(taskId);
    return task === undefined ? undefined : structuredClone(task);
  }

  async findByIdempotencyKey(idempotencyKey: string): Promise<Task | undefined> {
    const taskId = this.idempotencyKeys.get(idempotencyKey);
    return taskId === undefined ? undefined : this.get(taskId);
  }

  async list(query: ListTasksQuery): Promise<TaskPage> {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const matching = [...this.tasks.values()]
      .filter(
        (t) =>
          (query.status === undefined || t.status === query.status) &&
          (query.taskType === undefined || t.taskType === query.taskType) &&
          (query.updatedBefore === undefined || t.updatedAt < query.updatedBefore) &&
          (after === undefined || sortKey(t) < after),
      )
      .sort((a, b) => (sortKey(a) < sortKey(b) ? 1 : -1));
    const items = matching.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items: items.map((t) => structuredClone(t)),
      ...(matching.length > query.limit && last ? { nextCursor: encodeCursor(sortKey(last)) } : {}),
    };
  }

  async transition(request: TransitionRequest): Promise<TransitionOutcome> {
    const current = this.tasks.get(request.taskId);
    if (!current || !guardHolds(current, request)) {
      return { ok: false, current: current === undefined ? undefined : structuredClone(current) };
    }
    const fields: Record<string, unknown> = { ...current };
    for (const [key, value] of Object.entries(request.patch)) {
      if (value !== undefined) fields[key] = structuredClone(value);
    }
    for (const key of request.remove ?? []) delete fields[key];
    const next = { ...fields, status: request.to ?? current.status, version: current.version + 1 } as Task;
    this.tasks.set(next.taskId, next);
    this.applyCounters(request.counters ?? {});
    this.addOutbox(next.taskId, next.version, request.events ?? []);
    return { ok: true, task: structuredClone(next) };
  }

  async readCounters(): Promise<Record<string, number>> {
    return Object.fromEntries(this.counters);
  }

  async pendingEvents(olderThan: string, limit: number): Promise<readonly OutboxEntry[]> {
    return [...this.outbox.values()]
      .filter((e) => e.createdAt < olderThan)
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1))
      .slice(0, limit)
      .map((e) => structuredClone(e));
  }

  async clearEvents(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.outbox.delete(id);
  }

  /** Test hook: the stored record exactly as kept, internals included. */
  inspect(taskId: string): Task | undefined {
    const task = this.tasks.get(taskId);
    return task === undefined ? undefined : structuredClone(task);
  }

  /** Test hook: every outbox entry not yet cleared. */
  inspectOutbox(): OutboxEntry[] {
    return [...this.outbox.values()].map((e) => structuredClone(e));
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
      events: structuredClone([...events]),
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

function sortKey(task: Task): string {
  return `${task.createdAt}#${task.taskId}`;
}

function encodeCursor(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  const key = Buffer.from(cursor, "base64url").toString("utf8");
  // A cursor is a sort key this store handed out: "<ISO time>#<taskId>".
  if (!/^\d{4}-\d{2}-\d{2}T[^#]+#.+$/.test(key)) {
    throw new ValidationError("invalid cursor", [
      { path: "cursor", message: "not a cursor this API returned" },
    ]);
  }
  return key;
}
