/** Every event Agentry publishes has this source. */
export const EVENT_SOURCE = "agentry";

export const DetailType = {
  TaskSubmitted: "Task Submitted",
  TaskStarted: "Task Started",
  TaskCompleted: "Task Completed",
  TaskFailed: "Task Failed",
  TaskCanceled: "Task Canceled",
  TaskRejected: "Task Rejected",
  TaskInputRequired: "Task Input Required",
  /** A task back to `submitted` for another attempt (a retry, a lease recovery, a redrive). */
  TaskRetrying: "Task Retrying",
  JobCompleted: "Job Completed",
  AgentMessage: "Agent Message",
} as const;
export type DetailTypeName = (typeof DetailType)[keyof typeof DetailType];

/** The lifecycle events that end a task: the only ones that move a job. */
export const TERMINAL_TASK_DETAIL_TYPES: readonly string[] = [
  DetailType.TaskCompleted,
  DetailType.TaskFailed,
  DetailType.TaskCanceled,
  DetailType.TaskRejected,
];

/**
 * An event in EventBridge's envelope shape, so the same patterns match locally and on AWS.
 * `id` is unique per logical event (for lifecycle events: `<taskId>:<version>`), which lets
 * consumers deduplicate at-least-once deliveries.
 */
export interface BusEvent<D = Record<string, unknown>> {
  readonly id: string;
  readonly source: string;
  readonly "detail-type": string;
  readonly time: string;
  readonly resources?: readonly string[];
  readonly detail: D;
}

/** The detail of a task lifecycle event. */
export interface TaskEventDetail {
  readonly taskId: string;
  readonly taskType: string;
  readonly status: string;
  readonly version: number;
  readonly attempt: number;
  readonly requiredCapability: string;
  readonly workerAgentId?: string;
  readonly jobId?: string;
  readonly [key: string]: unknown;
}
