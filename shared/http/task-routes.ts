import type { Supervisor } from "#shared/core/supervisor";
import { NotFoundError, PayloadTooLargeError, ValidationError } from "#shared/domain/errors";
import { SupervisorStatisticsSchema } from "#shared/domain/statistics";
import {
  jsonByteLength,
  MAX_BATCH_SIZE,
  MAX_PAYLOAD_BYTES,
  type PublicTask,
  type Task,
  TaskSchema,
  toPublicTask,
} from "#shared/domain/task";
import { errorResponses, queryParameters } from "./openapi.ts";
import type { ApiRequest, ApiRouteTable } from "./router.ts";
import {
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyKeyHeaderSchema,
  isPlainObject,
  ListTasksQuerySchema,
  parseRequest,
  parseSubmission,
  readJsonBody,
  SubmitTasksRequestSchema,
  SubmitTasksResponseSchema,
  TaskIdSchema,
  TaskPageResponseSchema,
} from "./schemas.ts";

/** The supervisor use cases the task routes call (a Supervisor, or a stand-in in tests). */
export type TaskSupervisor = Pick<Supervisor, "submit" | "get" | "list" | "cancel" | "statistics">;

const TASKS_TAG = ["tasks"] as const;

/**
 * The v1 task routes: submit, get, list, cancel, and the supervisor's statistics. Each parses its
 * input at the boundary, calls one supervisor use case and shapes the answer; the rules live in the
 * supervisor.
 *
 * @example
 * const router = createApiRouter({ supervisor }); // includes taskRoutes(supervisor)
 */
export function taskRoutes(supervisor: TaskSupervisor): ApiRouteTable {
  return [
    {
      method: "POST",
      path: "/tasks",
      operation: {
        operationId: "submitTasks",
        summary: "Submit one task or a batch",
        description:
          `The body is one task input, or \`{ "tasks": [...] }\` with 1 to ${MAX_BATCH_SIZE} of them. ` +
          `The \`${IDEMPOTENCY_KEY_HEADER}\` header applies to a single task only; in a batch, set ` +
          "`idempotencyKey` per task. Replaying a key with the same body returns the task it created.",
        tags: TASKS_TAG,
        parameters: [
          {
            name: IDEMPOTENCY_KEY_HEADER,
            in: "header",
            description: "Makes a single-task submission safe to retry.",
            schema: IdempotencyKeyHeaderSchema,
          },
        ],
        requestBody: { schema: SubmitTasksRequestSchema },
        responses: {
          "202": { description: "Accepted; the tasks run asynchronously", schema: SubmitTasksResponseSchema },
          ...errorResponses({
            "400":
              "`invalid_json`: the body is not JSON; `validation_error`: it breaks the schema (see details)",
            "409": "`idempotency_conflict`: the key was used with a different body",
            "413": "`payload_too_large`: the body, or one task input (256 KiB), is too large",
          }),
        },
      },
      handle: async (request) => {
        const body = readJsonBody(request);
        // Before the schema: a huge input is a 413 whatever else is wrong, and is never walked by zod.
        assertInputsWithinLimit(body);
        const inputs = parseSubmission(body);
        const idempotencyKey = idempotencyKeyOf(request, inputs);
        const tasks = await supervisor.submit(inputs, idempotencyKey === undefined ? {} : { idempotencyKey });
        return { statusCode: 202, body: { tasks } };
      },
    },
    {
      method: "GET",
      path: "/tasks",
      operation: {
        operationId: "listTasks",
        summary: "List tasks, newest first",
        tags: TASKS_TAG,
        parameters: queryParameters(ListTasksQuerySchema),
        responses: {
          "200": { description: "One page of tasks", schema: TaskPageResponseSchema },
          ...errorResponses({ "400": "`validation_error`: a query parameter is invalid (see details)" }),
        },
      },
      handle: async (request) => {
        const query = parseRequest(ListTasksQuerySchema, request.query, {
          message: "invalid query parameters",
        });
        const page = await supervisor.list(query);
        return {
          statusCode: 200,
          body: {
            items: page.items.map(presentTask),
            ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}),
          },
        };
      },
    },
    {
      method: "GET",
      path: "/tasks/{taskId}",
      operation: {
        operationId: "getTask",
        summary: "Get a task: status, result or error",
        tags: TASKS_TAG,
        responses: {
          "200": { description: "The task", schema: TaskSchema },
          ...errorResponses({ "404": "`not_found`: no such task" }),
        },
      },
      handle: async (request) => ({
        statusCode: 200,
        body: presentTask(await supervisor.get(taskIdOf(request))),
      }),
    },
    {
      method: "POST",
      path: "/tasks/{taskId}/cancel",
      operation: {
        operationId: "cancelTask",
        summary: "Cancel a task",
        description:
          "A submitted task is canceled at once. A working task is marked `cancelRequested`; its worker " +
          "stops cooperatively and the task ends `canceled`.",
        tags: TASKS_TAG,
        responses: {
          "200": { description: "The task after the cancel request", schema: TaskSchema },
          ...errorResponses({
            "404": "`not_found`: no such task",
            "409": "`already_terminal`: the task has already finished",
          }),
        },
      },
      handle: async (request) => ({
        statusCode: 200,
        body: presentTask(await supervisor.cancel(taskIdOf(request))),
      }),
    },
    {
      method: "GET",
      path: "/stats",
      operation: {
        operationId: "getStatistics",
        summary: "Supervisor statistics",
        tags: TASKS_TAG,
        responses: { "200": { description: "Task counts and timings", schema: SupervisorStatisticsSchema } },
      },
      handle: async () => ({ statusCode: 200, body: await supervisor.statistics() }),
    },
  ];
}

const PUBLIC_TASK_FIELDS = Object.keys(TaskSchema.shape) as readonly (keyof PublicTask)[];

/**
 * The task as the API shows it. `toPublicTask` drops the internals the domain knows of; keeping only
 * the fields of the public schema on top of that means an attribute a store adds (a DynamoDB key,
 * a shard number) can never reach a client either.
 */
function presentTask(task: Task): PublicTask {
  const visible = toPublicTask(task) as Record<string, unknown>;
  return Object.fromEntries(
    PUBLIC_TASK_FIELDS.filter((field) => visible[field] !== undefined).map((field) => [
      field,
      visible[field],
    ]),
  ) as PublicTask;
}

/** A path id that no task could have names no task: 404, like any other unknown id. */
function taskIdOf(request: ApiRequest): string {
  const taskId = request.params.taskId ?? "";
  if (!TaskIdSchema.safeParse(taskId).success)
    throw new NotFoundError(`task ${taskId.slice(0, 128)} not found`);
  return taskId;
}

function assertInputsWithinLimit(body: unknown): void {
  const candidates = isPlainObject(body) && Array.isArray(body.tasks) ? body.tasks : [body];
  candidates.forEach((candidate: unknown, index) => {
    if (!isPlainObject(candidate) || !Object.hasOwn(candidate, "input")) return;
    const bytes = jsonByteLength(candidate.input);
    if (bytes > MAX_PAYLOAD_BYTES) {
      const which = candidates === body ? "task input" : `tasks.${index}.input`;
      throw new PayloadTooLargeError(
        `${which} is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`,
      );
    }
  });
}

/**
 * The `Idempotency-Key` header, checked like the body's field. A single task that names a different
 * key in its body is refused: silently preferring either one would hide a client bug.
 */
function idempotencyKeyOf(
  request: ApiRequest,
  inputs: readonly { idempotencyKey?: string }[],
): string | undefined {
  const header = request.headers[IDEMPOTENCY_KEY_HEADER.toLowerCase()];
  if (header === undefined) return undefined;
  const key = parseRequest(IdempotencyKeyHeaderSchema, header, {
    message: `invalid ${IDEMPOTENCY_KEY_HEADER} header`,
    path: [IDEMPOTENCY_KEY_HEADER],
  });
  const bodyKey = inputs.length === 1 ? inputs[0]?.idempotencyKey : undefined;
  if (bodyKey !== undefined && bodyKey !== key) {
    throw new ValidationError(`the ${IDEMPOTENCY_KEY_HEADER} header and the body's idempotencyKey differ`, [
      { path: IDEMPOTENCY_KEY_HEADER, message: "differs from idempotencyKey in the body" },
    ]);
  }
  return key;
}
