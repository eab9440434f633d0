import { type BusEvent, DetailType, EVENT_SOURCE, type TaskEventDetail } from "./events.ts";
import { assertTransition, isTerminal } from "./lifecycle.ts";
import { Counter, type CounterDeltas } from "./statistics.ts";
import { applyTaskWrite, type Task, type TaskError, type TaskStatus } from "./task.ts";

/**
 * The one home of the task-transition rules (docs/adr/0007-write-path-cost.md). Every write that
 * changes a task is built here — its guard (which state it may start from), its fields, the fields it
 * removes — and every consequence of a committed write is derived here from the task before and after
 * it: the lifecycle event and the statistics deltas. The stores only apply a write under its guard;
 * the dispatcher, supervisor and sweeper only pick which write to make. Pure: no I/O, no clock.
 */

/** Fields a write may set; `undefined` values are ignored. */
export type TaskPatch = Partial<Omit<Task, "taskId" | "version" | "createdAt">>;

/** When a write may happen: the store's conditional write checks exactly this. */
export interface TransitionGuard {
  /** The stored status must be one of these. */
  readonly from: readonly TaskStatus[];
  /** The stored version must equal this. */
  readonly expectedVersion?: number;
  /** The stored lease token must equal this (the worker holding the task). */
  readonly leaseToken?: string;
  /** The stored lease must have expired before this ISO time. */
  readonly leaseExpiredBefore?: string;
}

/** A write: guard, new status (omit to keep it), fields to set and fields to delete. */
export interface TaskWrite extends TransitionGuard {
  readonly to?: TaskStatus;
  readonly patch: TaskPatch;
  readonly remove?: readonly (keyof Task)[];
}

/** Fields no write may change: the task's identity and its place in the listings. */
export const IMMUTABLE_FIELDS: ReadonlySet<string> = new Set(["taskId", "version", "createdAt"]);
const LEASE_FIELDS: (keyof Task)[] = ["leaseToken", "leaseExpiresAt"];

/** True when the stored task satisfies the write's guard. */
export function guardHolds(task: Task, guard: TransitionGuard): boolean {
  if (!guard.from.includes(task.status)) return false;
  if (guard.expectedVersion !== undefined && task.version !== guard.expectedVersion) return false;
  if (guard.leaseToken !== undefined && task.leaseToken !== guard.leaseToken) return false;
  if (guard.leaseExpiredBefore !== undefined) {
    if (task.leaseExpiresAt === undefined || !(task.leaseExpiresAt < guard.leaseExpiredBefore)) return false;
  }
  return true;
}

/**
 * The task as the write leaves it: fields set, removed fields deleted, the new status, version + 1,
 * in the one pass of `applyTaskWrite` (no `delete`, which slows every later copy). Immutable fields
 * are never touched. `copyValue` copies each patched value (a store that must not share the caller's
 * objects). (Throws IllegalTransitionError for a status change the lifecycle forbids.)
 */
export function applyWrite(
  task: Task,
  write: Pick<TaskWrite, "to" | "patch" | "remove">,
  copyValue?: (value: unknown) => unknown,
): Task {
  // A redrive (`redriveWrite`) is the one edge out of `failed` the lifecycle table does not have.
  const redrive = task.status === "failed" && write.to === "submitted";
  if (write.to !== undefined && write.to !== task.status && !redrive) assertTransition(task.status, write.to);
  const remove = write.remove?.some((key) => IMMUTABLE_FIELDS.has(key))
    ? write.remove.filter((key) => !IMMUTABLE_FIELDS.has(key))
    : write.remove;
  return applyTaskWrite(task, mutablePatch(write.patch), remove, write.to ?? task.status, copyValue);
}

/** The patch without the fields no write may set (status and version are set by the write itself). */
function mutablePatch(patch: TaskPatch): TaskPatch {
  for (const key in patch) {
    if (IMMUTABLE_FIELDS.has(key) || key === "status") {
      const kept: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(patch)) {
        if (!IMMUTABLE_FIELDS.has(name) && name !== "status") kept[name] = value;
      }
      return kept as TaskPatch;
    }
  }
  return patch;
}

/**
 * A failed task redriven from its dead-letter queue: back to `submitted` with a fresh attempt budget
 * on top of the attempts made (the history stays readable), its outcome and lease removed.
 */
export function redriveWrite(task: Task, now: string): TaskWrite {
  return {
    from: ["failed"],
    expectedVersion: task.version,
    to: "submitted",
    patch: { maxAttempts: task.attempts + task.maxAttempts, updatedAt: now },
    remove: ["completedAt", "expiresAt", "result", "leaseToken", "leaseExpiresAt"],
  };
}

/** Epoch seconds at which a task finished at `nowIso` may be deleted (the table's TTL). */
export function retentionExpiry(nowIso: string, retentionDays: number): number {
  return Math.floor(Date.parse(nowIso) / 1000) + retentionDays * 86_400;
}

// ---------------------------------------------------------------------------------------------------
// The writes.
// ---------------------------------------------------------------------------------------------------

/** A worker takes the task: `submitted → working`, or `working → working` over an expired lease. */
export function claimWrite(
  task: Task,
  claim: {
    readonly now: string;
    readonly leaseToken: string;
    readonly leaseSeconds: number;
    readonly agentId: string;
  },
): TaskWrite {
  return {
    from: [task.status],
    expectedVersion: task.version,
    ...(task.status === "working" ? { leaseExpiredBefore: claim.now } : {}),
    to: "working",
    patch: {
      attempts: task.attempts + 1,
      leaseToken: claim.leaseToken,
      leaseExpiresAt: new Date(Date.parse(claim.now) + claim.leaseSeconds * 1000).toISOString(),
      workerAgentId: claim.agentId,
      startedAt: task.startedAt ?? claim.now,
      updatedAt: claim.now,
    },
  };
}

/**
 * The task ends. Guarded by the caller's lease, or — for a task whose lease expired, or one not
 * running — by its version (and, with `expired`, by the lease having run out).
 */
export function finishWrite(
  task: Task,
  to: Extract<TaskStatus, "completed" | "failed" | "canceled">,
  finish: {
    readonly now: string;
    readonly retentionDays: number;
    readonly fields?: TaskPatch;
    readonly leaseToken?: string;
    readonly expired?: boolean;
  },
): TaskWrite {
  return {
    from: finish.leaseToken !== undefined ? ["working"] : [task.status],
    expectedVersion: task.version,
    ...(finish.leaseToken !== undefined ? { leaseToken: finish.leaseToken } : {}),
    ...(finish.expired ? { leaseExpiredBefore: finish.now } : {}),
    to,
    patch: {
      ...finish.fields,
      completedAt: finish.now,
      updatedAt: finish.now,
      expiresAt: retentionExpiry(finish.now, finish.retentionDays),
    },
    remove: LEASE_FIELDS,
  };
}

/** A failed attempt with attempts left: back to `submitted` (the worker's lease guards it). */
export function retryWrite(
  task: Task,
  retry: { readonly now: string; readonly leaseToken: string; readonly error: TaskError },
): TaskWrite {
  return {
    from: ["working"],
    expectedVersion: task.version,
    leaseToken: retry.leaseToken,
    to: "submitted",
    patch: { error: retry.error, updatedAt: retry.now },
    remove: LEASE_FIELDS,
  };
}

/** The holder's lease runs until `leaseExpiresAt`. Not a status change, no event. */
export function extendLeaseWrite(leaseToken: string, leaseExpiresAt: string): TaskWrite {
  return { from: ["working"], leaseToken, patch: { leaseExpiresAt } };
}

/** Marks a working task for cooperative cancellation (its worker's AbortSignal fires). */
export function requestCancelWrite(task: Task, now: string): TaskWrite {
  return {
    from: ["working"],
    expectedVersion: task.version,
    patch: { cancelRequested: true, updatedAt: now },
  };
}

/** Cancels a task no worker runs (`submitted`, `input-required`) at once. */
export function cancelWrite(task: Task, now: string, retentionDays: number): TaskWrite {
  return {
    from: [task.status],
    expectedVersion: task.version,
    to: "canceled",
    patch: {
      cancelRequested: true,
      updatedAt: now,
      completedAt: now,
      expiresAt: retentionExpiry(now, retentionDays),
    },
  };
}

/**
 * The sweeper's write for a working task whose lease expired: canceled if a cancel was asked for,
 * failed with `timeout` on its last attempt, otherwise back to `submitted` for another attempt.
 */
export function expiredLeaseWrite(task: Task, now: string, retentionDays: number): TaskWrite {
  const guard = { from: ["working"] as TaskStatus[], expectedVersion: task.version, leaseExpiredBefore: now };
  if (task.cancelRequested) {
    return { ...finishWrite(task, "canceled", { now, retentionDays, expired: true }), ...guard };
  }
  if (task.attempts >= task.maxAttempts) {
    return {
      ...finishWrite(task, "failed", {
        now,
        retentionDays,
        expired: true,
        fields: {
          error: { code: "timeout", message: `lease expired on the last attempt (${task.attempts})` },
        },
      }),
      ...guard,
    };
  }
  return { ...guard, to: "submitted", patch: { updatedAt: now }, remove: LEASE_FIELDS };
}

/** The sweeper touches a task stuck in `submitted` before enqueueing it again (a racing sweep then loses). */
export function touchWrite(task: Task, now: string): TaskWrite {
  return { from: ["submitted"], expectedVersion: task.version, patch: { updatedAt: now } };
}

// ---------------------------------------------------------------------------------------------------
// What a committed write means: derived from the task before and after it (a stream record).
// ---------------------------------------------------------------------------------------------------

/** Every status has its own event; "Task Retrying" is only ever said explicitly, by who retries. */
const DETAIL_TYPE_BY_STATUS: Readonly<Record<TaskStatus, string>> = {
  submitted: DetailType.TaskSubmitted,
  working: DetailType.TaskStarted,
  "input-required": DetailType.TaskInputRequired,
  completed: DetailType.TaskCompleted,
  failed: DetailType.TaskFailed,
  canceled: DetailType.TaskCanceled,
  rejected: DetailType.TaskRejected,
};

/**
 * The lifecycle event for a task as it stands after a write. Its id is `<taskId>:<version>`, so a
 * consumer can drop duplicates and stale replays. Inputs and outputs are left out: events carry
 * identifiers and outcomes, not payloads.
 */
export function lifecycleEvent(task: Task, detailType?: string): BusEvent<TaskEventDetail> {
  const detail: TaskEventDetail = {
    taskId: task.taskId,
    taskType: task.taskType,
    status: task.status,
    version: task.version,
    attempt: task.attempts,
    requiredCapability: task.requiredCapability,
    ...(task.workerAgentId !== undefined ? { workerAgentId: task.workerAgentId } : {}),
    ...(task.jobId !== undefined ? { jobId: task.jobId } : {}),
    ...(task.result !== undefined
      ? { success: task.result.success, executionTimeMs: task.result.executionTimeMs }
      : {}),
    ...(task.error !== undefined ? { error: task.error } : {}),
  };
  return {
    id: `${task.taskId}:${task.version}`,
    source: EVENT_SOURCE,
    "detail-type": detailType ?? DETAIL_TYPE_BY_STATUS[task.status],
    time: task.updatedAt,
    resources: [],
    detail,
  };
}

/**
 * The lifecycle event of a committed change, if it is one: a task created (`Task Submitted` or
 * `Task Rejected`), claimed (`Task Started`, a re-claim included), sent back for another attempt
 * (`Task Retrying`) or finished. Field-only writes (heartbeats, cancel requests, sweeper touches) and
 * deletions (TTL) are not lifecycle events.
 */
export function changeEvent(before: Task | undefined, after: Task | undefined): BusEvent | undefined {
  if (after === undefined) return undefined;
  if (before === undefined) return lifecycleEvent(after);
  if (after.status === "working" && after.attempts > before.attempts) return lifecycleEvent(after);
  if (after.status === before.status) return undefined;
  // A task sent back for another attempt, or a failed one redriven from the dead-letter queue.
  if ((before.status === "working" || before.status === "failed") && after.status === "submitted") {
    return lifecycleEvent(after, DetailType.TaskRetrying);
  }
  return lifecycleEvent(after);
}

/**
 * The statistics deltas of a committed change: `submitted` and `type:<t>` when a task is created,
 * the `status:<s>` gauges when its status moves, `agent:<id>` when a running task ends, and the
 * execution time of a finished attempt that recorded one. Deletions (TTL) change nothing: statistics
 * count history.
 */
export function changeCounters(before: Task | undefined, after: Task | undefined): CounterDeltas {
  if (after === undefined) return {};
  const deltas: CounterDeltas = {};
  const add = (name: string, delta: number) => {
    deltas[name] = (deltas[name] ?? 0) + delta;
  };
  if (before === undefined) {
    add(Counter.submitted, 1);
    add(Counter.type(after.taskType), 1);
    add(Counter.status(after.status), 1);
    return deltas;
  }
  if (before.status === after.status) return deltas;
  add(Counter.status(before.status), -1);
  add(Counter.status(after.status), 1);
  if (isTerminal(after.status) && before.status === "working") {
    if (after.workerAgentId !== undefined) add(Counter.agent(after.workerAgentId), 1);
    if (after.result?.executionTimeMs !== undefined) {
      add(Counter.execMsTotal, after.result.executionTimeMs);
      add(Counter.execCount, 1);
    }
  }
  return deltas;
}

/** Sums counter deltas, dropping the ones that cancel out. */
export function mergeCounters(...parts: readonly CounterDeltas[]): CounterDeltas {
  const merged: CounterDeltas = {};
  for (const part of parts) {
    for (const [name, delta] of Object.entries(part)) merged[name] = (merged[name] ?? 0) + delta;
  }
  for (const [name, delta] of Object.entries(merged)) if (delta === 0) delete merged[name];
  return merged;
}
