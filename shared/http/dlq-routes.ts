import * as z from "zod";
import type { DeadLetterService } from "#shared/core/dead-letters";
import { TaskErrorSchema, TaskStatusSchema } from "#shared/domain/task";
import { errorResponses, queryParameters } from "./openapi.ts";
import type { ApiRouteTable } from "./router.ts";
import { apiSchemas, parseRequest, readJsonBody, TaskIdSchema } from "./schemas.ts";

/** The dead-letter use cases the routes call (a DeadLetterService, or a stand-in in tests). */
export type DeadLetterUseCases = Pick<DeadLetterService, "list" | "redrive">;

/** Most dead-lettered tasks shown per queue (SQS returns at most 10 per receive). */
export const MAX_DLQ_PAGE = 10;

export const ListDeadLettersQuerySchema = z.object({
  capability: z.string().min(1).max(128).optional().describe("Only this capability's dead-letter queues."),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_DLQ_PAGE)
    .default(MAX_DLQ_PAGE)
    .describe(`Most tasks shown per queue (default and maximum ${MAX_DLQ_PAGE}).`),
});

export const DeadLetterQueuesResponseSchema = z.object({
  queues: z.array(
    z.object({
      capability: z.string(),
      queue: z.string(),
      depth: z.int(),
      oldestAgeSeconds: z.int().optional(),
      items: z.array(
        z.object({
          messageId: z.string(),
          taskId: z.string().optional(),
          status: TaskStatusSchema.optional(),
          lastError: TaskErrorSchema.optional(),
          reason: z.string().optional(),
          deadLetteredAt: z.string().optional(),
        }),
      ),
    }),
  ),
});

/** `POST /dlq/redrive`: everything, one capability, or named tasks (optionally within a capability). */
export const RedriveRequestSchema = z.strictObject({
  capability: z.string().min(1).max(128).optional(),
  taskIds: z.array(TaskIdSchema).min(1).max(100).optional(),
});

export const RedriveResponseSchema = z.object({
  redriven: z.array(z.string()),
  dropped: z.array(z.string()),
});

apiSchemas.add(DeadLetterQueuesResponseSchema, { id: "DeadLetterQueues" });
apiSchemas.add(RedriveRequestSchema, { id: "RedriveRequest", io: "input" });
apiSchemas.add(RedriveResponseSchema, { id: "RedriveResponse" });

const DLQ_TAG = ["operations"] as const;

/**
 * The dead-letter routes: `GET /dlq` (per capability and tier: depth, oldest age, a page of
 * dead-lettered tasks with their status and last error) and `POST /dlq/redrive` (all, by capability,
 * or by task ids). A redriven task keeps its id and history and gets a fresh attempt budget.
 *
 * @example
 * const handler = createSupervisorApiHandler({ supervisor, logger, extraRoutes: dlqRoutes(deadLetters) });
 */
export function dlqRoutes(deadLetters: DeadLetterUseCases): ApiRouteTable {
  return [
    {
      method: "GET",
      path: "/dlq",
      operation: {
        operationId: "listDeadLetters",
        summary: "What the dead-letter queues hold",
        tags: DLQ_TAG,
        parameters: queryParameters(ListDeadLettersQuerySchema),
        responses: {
          "200": { description: "Each capability queue's DLQ", schema: DeadLetterQueuesResponseSchema },
          ...errorResponses({
            "400": "`validation_error`: a query parameter is invalid or names no capability",
          }),
        },
      },
      handle: async (request) => {
        const query = parseRequest(ListDeadLettersQuerySchema, request.query, {
          message: "invalid query parameters",
        });
        const queues = await deadLetters.list({
          limit: query.limit,
          ...(query.capability !== undefined ? { capability: query.capability } : {}),
        });
        return { statusCode: 200, body: { queues } };
      },
    },
    {
      method: "POST",
      path: "/dlq/redrive",
      operation: {
        operationId: "redriveDeadLetters",
        summary: "Send dead-lettered tasks back to their queues",
        description:
          "A failed task is reopened with its id and history and a fresh attempt budget; a task that " +
          "already completed or was canceled is not run again (its message is dropped). At most 500 " +
          "messages per queue per call: call again while `GET /dlq` shows more.",
        tags: DLQ_TAG,
        requestBody: { schema: RedriveRequestSchema },
        responses: {
          "200": { description: "What was redriven and dropped", schema: RedriveResponseSchema },
          ...errorResponses({ "400": "`validation_error`: the body is invalid or names no capability" }),
        },
      },
      handle: async (request) => {
        const body = parseRequest(RedriveRequestSchema, readJsonBody(request), {
          message: "invalid redrive request",
        });
        const outcome = await deadLetters.redrive({
          ...(body.capability !== undefined ? { capability: body.capability } : {}),
          ...(body.taskIds !== undefined ? { taskIds: body.taskIds } : {}),
        });
        return { statusCode: 200, body: outcome };
      },
    },
  ];
}
