import { IllegalTransitionError } from "./errors.ts";
import type { TaskStatus } from "./task.ts";

/**
 * The legal task transitions, as data. Every write that changes a task's status is checked against
 * this table before it is attempted, and the store's conditional write re-checks the current status.
 *
 * `working → working` is a re-claim: a worker takes over a task whose previous lease expired.
 * `working → submitted` is a retry after a failed attempt; `input-required` is reserved for
 * human-in-the-loop handlers.
 */
export const TASK_TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  submitted: ["working", "canceled", "rejected", "failed"],
  working: ["working", "submitted", "completed", "failed", "canceled", "input-required"],
  "input-required": ["working", "canceled", "failed"],
  completed: [],
  failed: [],
  canceled: [],
  rejected: [],
};

export const TERMINAL_STATUSES: readonly TaskStatus[] = ["completed", "failed", "canceled", "rejected"];

export function isTerminal(status: TaskStatus): boolean {
  return TASK_TRANSITIONS[status].length === 0;
}

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}

export function assertTransition(from: TaskStatus, to: TaskStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}
