import * as z from "zod";
import { findJsonProblem, JsonValueSchema, StorableJsonSchema } from "./json.ts";

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
  .record(z.string().min(1).max(128), z.string().max(1024))
  .refine((m) => Object.keys(m).length <= 32, {
    message: "at most 32 metadata entries",
  });

/**
 * An idempotency key in a body: 1–128 characters of UTF-8 text, no control characters (they are
 * invisible in logs and listings) and no unpaired surrogates (they cannot be stored as UTF-8). The
 * `Idempotency-Key` header is stricter: HTTP header values are bytes, so it takes visible ASCII only.
 */
export const IdempotencyKeySchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\p{Cc}\p{Cs}]+$/u, "must be text without control characters or unpaired surrogates");

/** What a client submits: one unit of work for one worker. (WorkerTask in the original design.) */
export const TaskInputSchema = z.strictObject({
  taskType: identifier,
  input: StorableJsonSchema,
  requiredCapability: identifier.optional(),
  preferredAgentId: identifier.optional(),
  priority: z.int().min(-100).max(100).optional(),
  timeoutSeconds: z.int().min(1).max(900).optional(),
  maxAttempts: z.int().min(1).max(10).optional(),
  idempotencyKey: IdempotencyKeySchema.optional(),
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

/**
 * Most bytes of JSON one task record may hold in its input, output and metadata together. A DynamoDB
 * item holds 400 KB; the rest of the record (ids, times, error) needs the remaining 40 KiB. Input and
 * output are each limited to 256 KiB, so a large input leaves less room for the output.
 */
export const MAX_RECORD_PAYLOAD_BYTES = 360 * 1024;

/** Why a handler's output cannot be recorded: `output_too_large` or `output_not_storable`. */
export interface OutputProblem {
  readonly code: "output_too_large" | "output_not_storable";
  readonly message: string;
}

/**
 * Prepares a handler's output for the task record: the JSON it serializes to (a `Date` becomes its ISO
 * string, `undefined` null), or the reason it cannot be recorded. Recording must never fail after the
 * handler succeeded, so everything a store would refuse is found here first: values that are not JSON
 * (a BigInt, a cycle), values that break the JSON acceptance rule, and outputs too large on their own
 * or beside the task's input.
 *
 * @example
 * const prepared = prepareOutput(task, await handler(task.input, ctx));
 * if ("problem" in prepared) fail(prepared.problem); else complete(prepared.output);
 */
export function prepareOutput(
  task: Pick<Task, "input" | "metadata">,
  output: unknown,
): { readonly output: z.core.util.JSONType } | { readonly problem: OutputProblem } {
  let text: string;
  try {
    text = JSON.stringify(output ?? null) ?? "null";
  } catch (error) {
    // JSON.stringify throws only Errors: TypeError (a cycle, a BigInt) or RangeError (too deep).
    return {
      problem: { code: "output_not_storable", message: `output is not JSON: ${(error as Error).message}` },
    };
  }
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_PAYLOAD_BYTES) {
    return {
      problem: {
        code: "output_too_large",
        message: `output is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES}`,
      },
    };
  }
  const json = JSON.parse(text) as z.core.util.JSONType;
  const problem = findJsonProblem(json, { path: ["output"] });
  if (problem !== undefined) {
    return { problem: { code: "output_not_storable", message: `${problem.path}: ${problem.message}` } };
  }
  const total = bytes + jsonByteLength(task.input) + jsonByteLength(task.metadata);
  if (total > MAX_RECORD_PAYLOAD_BYTES) {
    return {
      problem: {
        code: "output_not_storable",
        message: `output (${bytes} bytes) and input together are ${total} bytes; a task record holds ${MAX_RECORD_PAYLOAD_BYTES}`,
      },
    };
  }
  return { output: json };
}

/** Byte length of a JSON value as it travels on the wire. */
export function jsonByteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null), "utf8");
}

/**
 * `task` as a write leaves it: `patch` applied (`undefined` values ignored), the `remove` fields gone,
 * `status` set and the version one up. One pass building a fresh object, with no `delete`: deleting
 * a property turns a V8 object into a slow dictionary, and every later copy of it paid for that on
 * the hot path (`afterWrite` and the memory store's `transition` were ~6 % of the embedded runtime's
 * CPU). `copyValue` copies each patched value (a store that must not share the caller's objects).
 *
 * @example
 * const next = applyTaskWrite(task, { attempts: 2 }, ["leaseToken"], "submitted");
 */
export function applyTaskWrite(
  task: Task,
  patch: Readonly<Partial<Task>>,
  remove: readonly (keyof Task)[] | undefined,
  status: TaskStatus,
  copyValue: (value: unknown) => unknown = (value) => value,
): Task {
  const removed: readonly string[] = remove ?? [];
  const patched = patch as Readonly<Record<string, unknown>>;
  const current = task as unknown as Readonly<Record<string, unknown>>;
  const next: Record<string, unknown> = {};
  for (const key of Object.keys(task)) {
    if (removed.length > 0 && removed.includes(key)) continue;
    const value = Object.hasOwn(patched, key) ? patched[key] : undefined;
    next[key] = value === undefined ? current[key] : copyValue(value);
  }
  for (const key of Object.keys(patched)) {
    const value = patched[key];
    if (value === undefined || Object.hasOwn(current, key) || removed.includes(key)) continue;
    next[key] = copyValue(value);
  }
  next.status = status;
  next.version = task.version + 1;
  return next as unknown as Task;
}
