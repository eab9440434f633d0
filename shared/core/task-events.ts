import { type BusEvent, DetailType, EVENT_SOURCE, type TaskEventDetail } from "#shared/domain/events";
import { assertTransition } from "#shared/domain/lifecycle";
import { Counter, type CounterDeltas } from "#shared/domain/statistics";
import { applyTaskWrite, type Task, type TaskStatus } from "#shared/domain/task";
import type { TaskPatch } from "#shared/ports/task-store";

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

/** Counter deltas for a task moving from one status to another (gauges per status). */
export function statusCounters(from: TaskStatus | undefined, to: TaskStatus): CounterDeltas {
  if (from === to) return {};
  const deltas: CounterDeltas = { [Counter.status(to)]: 1 };
  if (from !== undefined) deltas[Counter.status(from)] = -1;
  return deltas;
}

export function mergeCounters(...parts: readonly CounterDeltas[]): CounterDeltas {
  const merged: CounterDeltas = {};
  for (const part of parts) {
    for (const [name, delta] of Object.entries(part)) merged[name] = (merged[name] ?? 0) + delta;
  }
  return merged;
}

/**
 * The task as a write will leave it: lets a writer build the event it commits to the outbox in the
 * same write, without reading the task back.
 */
export function afterWrite(
  task: Task,
  write: { readonly to?: TaskStatus; readonly patch: TaskPatch; readonly remove?: readonly (keyof Task)[] },
): Task {
  if (write.to !== undefined) assertTransition(task.status, write.to);
  return applyTaskWrite(task, write.patch, write.remove, write.to ?? task.status);
}
