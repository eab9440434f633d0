import * as z from "zod";
import { PayloadTooLargeError, ValidationError } from "#shared/domain/errors";
import { findJsonProblem, MAX_REQUEST_DEPTH } from "#shared/domain/json";
import {
  jsonByteLength,
  MAX_BATCH_SIZE,
  MAX_PAYLOAD_BYTES,
  SubmittedTaskSchema,
  type TaskInput,
  TaskInputSchema,
  TaskSchema,
  TaskStatusSchema,
} from "#shared/domain/task";
import { validationErrorFromZod } from "./errors.ts";

/**
 * The request and response schemas of the v1 HTTP API. Requests are checked against them at the edge
 * and the OpenAPI document is generated from them, so the contract and the checks cannot drift apart.
 * Task shapes are the domain's own schemas, reused rather than restated.
 */

/** Most items on one page of `GET /tasks` (the supervisor enforces the same bound). */
export const MAX_PAGE_SIZE = 100;
/** Items on a page of `GET /tasks` when the request gives no `limit` (the supervisor's default). */
export const DEFAULT_PAGE_SIZE = 20;

/** `POST /tasks` with several tasks. Strict: a body with `tasks` and anything else is refused. */
export const TaskBatchRequestSchema = z.strictObject({
  tasks: z.array(TaskInputSchema).min(1).max(MAX_BATCH_SIZE),
});
export type TaskBatchRequest = z.infer<typeof TaskBatchRequestSchema>;

/** What `POST /tasks` accepts: one task input, or a batch of them under `tasks`. */
export const SubmitTasksRequestSchema = z.union([TaskInputSchema, TaskBatchRequestSchema]);
export type SubmitTasksRequest = z.output<typeof SubmitTasksRequestSchema>;

export const SubmitTasksResponseSchema = z.object({ tasks: z.array(SubmittedTaskSchema) });
export type SubmitTasksResponse = z.infer<typeof SubmitTasksResponseSchema>;

/**
 * A task id in a path. Ids are opaque to clients, so anything outside these bounds simply names no
 * task; the bound keeps absurd keys away from the store (DynamoDB refuses keys over 2 KiB).
 */
export const TaskIdSchema = z.string().min(1).max(128);

/** Path parameters: an id outside {@link TaskIdSchema}'s bounds names nothing, so it is a 404. */
export const TaskPathSchema = z.object({ taskId: TaskIdSchema });
export const JobPathSchema = z.object({ jobId: TaskIdSchema });

/**
 * The `Idempotency-Key` header: 1–128 visible ASCII characters, no comma. Header values travel as
 * bytes that servers decode as Latin-1, so anything beyond ASCII would be stored garbled; a UTF-8 key
 * goes in the body's `idempotencyKey` instead. Proxies and API Gateway join a repeated header with
 * commas, so a comma means two keys were sent, and is refused rather than taken as one joined key.
 */
export const IdempotencyKeyHeaderSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[\x21-\x2B\x2D-\x7E]+$/,
    "must be one header of visible ASCII characters without commas (a UTF-8 key goes in the body's idempotencyKey)",
  );
export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";
/** `POST /tasks` headers (names lower-cased, as both API Gateway and Node deliver them). */
export const SubmitTasksHeadersSchema = z.object({
  "idempotency-key": IdempotencyKeyHeaderSchema.optional().describe(
    "Makes a single-task submission safe to retry.",
  ),
});

/**
 * A page cursor is opaque, but always base64url: a store encodes its position that way, so anything
 * else cannot be one of ours and is refused here rather than handed to the store.
 */
export const CursorSchema = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^[A-Za-z0-9_-]+$/, "must be a nextCursor returned by a previous page");

/** `GET /tasks` query parameters. Unknown parameters are ignored, as HTTP APIs conventionally do. */
export const ListTasksQuerySchema = z.object({
  status: TaskStatusSchema.optional().describe("Only tasks currently in this status."),
  taskType: z.string().min(1).max(128).optional().describe("Only tasks of this type."),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_SIZE)
    .optional()
    .describe(`Most items on the page (default ${DEFAULT_PAGE_SIZE}).`),
  cursor: CursorSchema.optional().describe("The nextCursor of the previous page."),
});
export type ListTasksQueryParameters = z.infer<typeof ListTasksQuerySchema>;

export const TaskPageResponseSchema = z.object({
  items: z.array(TaskSchema),
  nextCursor: z.string().optional(),
});
export type TaskPageResponse = z.infer<typeof TaskPageResponseSchema>;

export const HealthResponseSchema = z.object({ status: z.literal("ok") });

export const ErrorDetailSchema = z.object({ path: z.string(), message: z.string() });

/** Every error response: `{ "error": { "code", "message", "details"? } }`; a 5xx also carries `requestId`. */
export const ErrorResponseSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.union([z.array(ErrorDetailSchema), z.record(z.string(), z.unknown())]).optional(),
    requestId: z.string().optional(),
  }),
});
export type ErrorResponse = z.infer<typeof ErrorResponseSchema>;

/**
 * Parses a request value, turning zod issues into a 400 `validation_error` whose details name each
 * offending field (`tasks.0.taskType`). `path` prefixes the details, for values that are not the body.
 *
 * @example
 * const query = parseRequest(ListTasksQuerySchema, request.query, { message: "invalid query parameters" });
 */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  value: unknown,
  options: { message: string; path?: readonly string[] },
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationErrorFromZod(result.error, options.message, options.path);
  return result.data;
}

/**
 * Reads a `POST /tasks` body. A body is a batch exactly when it has a `tasks` field: a single task
 * input is strict and can never carry one, so the two shapes cannot be confused, and validation
 * reports against the shape the client meant rather than against a union of both. Oversized inputs
 * are a 413 before anything else.
 *
 * @example
 * const body = parseSubmission({ tasks: [{ taskType: "echo", input: 1 }] }); // a TaskBatchRequest
 */
export function parseSubmission(body: unknown): SubmitTasksRequest {
  if (isPlainObject(body) && Object.hasOwn(body, "tasks")) {
    assertInputsWithinLimit(body.tasks, "tasks");
    return parseRequest(TaskBatchRequestSchema, body, { message: "invalid task batch" });
  }
  assertInputsWithinLimit(body, undefined);
  return parseRequest(TaskInputSchema, body, { message: "invalid task" });
}

/** The task inputs of a submission, one or a batch. */
export function submittedInputs(body: SubmitTasksRequest): TaskInput[] {
  return "tasks" in body ? body.tasks : [body];
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The one payload-size check of the edge: every task `input` in a list is at most 256 KiB of JSON.
 * It runs before the schema, so a huge input is a 413 whatever else is wrong and is never walked by zod.
 *
 * @example
 * assertInputsWithinLimit(body.tasks, "tasks"); // PayloadTooLargeError naming tasks.3.input
 */
export function assertInputsWithinLimit(tasks: unknown, path: string | undefined): void {
  const list = path === undefined ? [tasks] : Array.isArray(tasks) ? tasks : [];
  list.forEach((task: unknown, index) => {
    if (!isPlainObject(task) || !Object.hasOwn(task, "input")) return;
    const bytes = jsonByteLength(task.input);
    if (bytes > MAX_PAYLOAD_BYTES) {
      const which = path === undefined ? "task input" : `${path}.${index}.input`;
      throw new PayloadTooLargeError(
        `${which} is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`,
      );
    }
  });
}

/**
 * Refuses a body nested deeper than {@link MAX_REQUEST_DEPTH} before anything recursive (schema
 * validation, `JSON.stringify`) walks it: 2,000 levels overflow the stack of either. The check itself
 * is iterative. Every value inside is checked against the full JSON rule by its own schema.
 *
 * @example
 * assertRequestDepth(JSON.parse("[[[]]]")); // fine
 */
export function assertRequestDepth(body: unknown): void {
  const problem = findJsonProblem(body, { maxDepth: MAX_REQUEST_DEPTH, depthOnly: true });
  if (problem !== undefined) {
    throw new ValidationError(`request body nests deeper than ${MAX_REQUEST_DEPTH} levels`, [
      { path: problem.path, message: problem.message },
    ]);
  }
}
