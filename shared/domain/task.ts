import * as z from "zod";
import { JsonValueSchema } from "./json.ts";

/** Task states, named after the A2A protocol's task states. */
export const TASK_STATUSES = [
  "submitted",
  "working",
  "input-required",
  "completed",
  "failed",
  "canceled",
  "rejected",
] as const;
export const TaskStatusSchema = z.enum(TASK_STATUSES);
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

/** Largest task input or output accepted on the wire (Azure Service Bus Standard's message limit). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** Most tasks in one `POST /tasks` batch. */
export const MAX_BATCH_SIZE = 100;

const identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
    "must start with a letter or digit and use only A-Z a-z 0-9 . _ : -",
  );

export const MetadataSchema = z
  .record(z.string().max(128), z.string().max(1024))
  .refine((m) => Object.keys(m).length <= 32, {
    message: "at most 32 metadata entries",
  });

/** What a client submits: one unit of work for one worker. (WorkerTask in the original design.) */
export const TaskInputSchema = z.strictObject({
  taskType: identifier,
  input: JsonValueSchema,
  requiredCapability: identifier.optional(),
  preferredAgentId: identifier.optional(),
  priority: z.int().min(-100).max(100).optional(),
  timeoutSeconds: z.int().min(1).max(900).optional(),
  maxAttempts: z.int().min(1).max(10).optional(),
  idempotencyKey: z.string().min(1).max(128).optional(),
  metadata: MetadataSchema.optional(),
});
export type TaskInput = z.infer<typeof TaskInputSchema>;

/** The outcome a worker reports. (WorkerTaskResult in the original design.) */
export const TaskResultSchema = z.object({
  success: z.boolean(),
  output: JsonValueSchema.optional(),
  errorMessage: z.string().optional(),
  executionTimeMs: z.number().nonnegative(),
});
export type TaskResult = z.infer<typeof TaskResultSchema>;

export const TaskErrorSchema = z.object({ code: z.string(), message: z.string() });
export type TaskError = z.infer<typeof TaskErrorSchema>;

/** The persisted task record, as the API returns it. */
export const TaskSchema = z.object({
  taskId: z.string(),
  taskType: z.string(),
  status: TaskStatusSchema,
  input: JsonValueSchema,
  requiredCapability: z.string(),
  preferredAgentId: z.string().optional(),
  priority: z.int(),
  attempts: z.int(),
  maxAttempts: z.int(),
  timeoutSeconds: z.int().optional(),
  cancelRequested: z.boolean(),
  version: z.int(),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().optional(),
  completedAt: z.string().optional(),
  workerAgentId: z.string().optional(),
  result: TaskResultSchema.optional(),
  error: TaskErrorSchema.optional(),
  metadata: z.record(z.string(), z.string()),
  idempotencyKey: z.string().optional(),
  jobId: z.string().optional(),
});

/**
 * Internal fields that never leave the platform: the lease of the worker that holds the task, the hash
 * of the submitted body (for idempotency), and the time the next attempt may start.
 */
export interface TaskInternals {
  leaseToken?: string;
  leaseExpiresAt?: string;
  requestHash?: string;
  queue?: string;
  expiresAt?: number;
}

export type Task = z.infer<typeof TaskSchema> & TaskInternals;

/** What the API shows of a task: everything but the internals. */
export type PublicTask = z.infer<typeof TaskSchema>;

export function toPublicTask(task: Task): PublicTask {
  const { leaseToken: _l, leaseExpiresAt: _e, requestHash: _h, queue: _q, expiresAt: _x, ...rest } = task;
  return rest;
}

export const SubmittedTaskSchema = z.object({ taskId: z.string(), status: TaskStatusSchema });
export type SubmittedTask = z.infer<typeof SubmittedTaskSchema>;

/** Byte length of a JSON value as it travels on the wire. */
export function jsonByteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null), "utf8");
}
