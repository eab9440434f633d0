import type { Supervisor } from "#shared/core/supervisor";
import { ValidationError } from "#shared/domain/errors";
import { SupervisorStatisticsSchema } from "#shared/domain/statistics";
import { MAX_BATCH_SIZE, type PublicTask, type Task, TaskSchema, toPublicTask } from "#shared/domain/task";
import { type ApiRoute, defineRoute, errorResponses, json, jsonBody } from "./route.ts";
import {
  IDEMPOTENCY_KEY_HEADER,
  ListTasksQuerySchema,
  parseSubmission,
  SubmitTasksHeadersSchema,
  SubmitTasksRequestSchema,
  SubmitTasksResponseSchema,
  submittedInputs,
  TaskPageResponseSchema,
  TaskPathSchema,
} from "./schemas.ts";

/** The supervisor use cases the task routes call (a Supervisor, or a stand-in in tests). */
export type TaskSupervisor = Pick<Supervisor, "submit" | "get" | "list" | "cancel" | "statistics">;

const tags = ["tasks"];

/**
 * The v1 task routes: submit, get, list, cancel, and the supervisor's statistics. Each reads its
 * validated input, calls one supervisor use case and shapes the answer; the rules live in the
 * supervisor.
 *
 * @example
 * const app = createApiApp({ routes: taskRoutes({ supervisor }), logger });
 */
export function taskRoutes({ supervisor }: { supervisor: TaskSupervisor }): ApiRoute[] {
  return [
    defineRoute(
      {
        method: "post",
        path: "/tasks",
        operationId: "submitTasks",
        summary: "Submit one task or a batch",
        description:
          `The body is one task input, or \`{ "tasks": [...] }\` with 1 to ${MAX_BATCH_SIZE} of them. ` +
          `The \`${IDEMPOTENCY_KEY_HEADER}\` header applies to a single task only; in a batch, set ` +
          "`idempotencyKey` per task. Replaying a key with the same body returns the task it created.",
        tags,
        request: { headers: SubmitTasksHeadersSchema, body: jsonBody(SubmitTasksRequestSchema) },
        responses: {
          202: json("Accepted; the tasks run asynchronously", SubmitTasksResponseSchema),
          ...errorResponses({
            400: "`invalid_json`: the body is not JSON; `validation_error`: it breaks the schema (see details)",
            409: "`idempotency_conflict`: the key was used with a different body",
            413: "`payload_too_large`: the body, or one task input (256 KiB), is too large",
          }),
        },
      },
      async (c) => {
        const inputs = submittedInputs(c.req.valid("json"));
        const idempotencyKey = idempotencyKeyOf(c.req.valid("header")["idempotency-key"], inputs);
        const tasks = await supervisor.submit(inputs, idempotencyKey === undefined ? {} : { idempotencyKey });
        return c.json({ tasks }, 202);
      },
      { parseBody: parseSubmission },
    ),
    defineRoute(
      {
        method: "get",
        path: "/tasks",
        operationId: "listTasks",
        summary: "List tasks, newest first",
        tags,
        request: { query: ListTasksQuerySchema },
        responses: {
          200: json("One page of tasks", TaskPageResponseSchema),
          ...errorResponses({ 400: "`validation_error`: a query parameter is invalid (see details)" }),
        },
      },
      async (c) => {
        const page = await supervisor.list(c.req.valid("query"));
        return c.json(
          {
            items: page.items.map(presentTask),
            ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}),
          },
          200,
        );
      },
    ),
    defineRoute(
      {
        method: "get",
        path: "/tasks/{taskId}",
        operationId: "getTask",
        summary: "Get a task: status, result or error",
        tags,
        request: { params: TaskPathSchema },
        responses: {
          200: json("The task", TaskSchema),
          ...errorResponses({ 404: "`not_found`: no such task" }),
        },
      },
      async (c) => c.json(presentTask(await supervisor.get(c.req.valid("param").taskId)), 200),
    ),
    defineRoute(
      {
        method: "post",
        path: "/tasks/{taskId}/cancel",
        operationId: "cancelTask",
        summary: "Cancel a task",
        description:
          "A submitted task is canceled at once. A working task is marked `cancelRequested`; its worker " +
          "stops cooperatively and the task ends `canceled`.",
        tags,
        request: { params: TaskPathSchema },
        responses: {
          200: json("The task after the cancel request", TaskSchema),
          ...errorResponses({
            404: "`not_found`: no such task",
            409: "`already_terminal`: the task has already finished",
          }),
        },
      },
      async (c) => c.json(presentTask(await supervisor.cancel(c.req.valid("param").taskId)), 200),
    ),
    defineRoute(
      {
        method: "get",
        path: "/stats",
        operationId: "getStatistics",
        summary: "Supervisor statistics",
        tags,
        responses: {
          200: json("Task counts and timings", SupervisorStatisticsSchema),
          ...errorResponses({}),
        },
      },
      async (c) => c.json(await supervisor.statistics(), 200),
    ),
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

/**
 * The `Idempotency-Key` header (already checked like the body's field). A single task that names a
 * different key in its body is refused: silently preferring either one would hide a client bug.
 */
function idempotencyKeyOf(
  header: string | undefined,
  inputs: readonly { idempotencyKey?: string }[],
): string | undefined {
  if (header === undefined) return undefined;
  const bodyKey = inputs.length === 1 ? inputs[0]?.idempotencyKey : undefined;
  if (bodyKey !== undefined && bodyKey !== header) {
    throw new ValidationError(`the ${IDEMPOTENCY_KEY_HEADER} header and the body's idempotencyKey differ`, [
      { path: IDEMPOTENCY_KEY_HEADER, message: "differs from idempotencyKey in the body" },
    ]);
  }
  return header;
}
