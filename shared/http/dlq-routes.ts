import * as z from "zod";
import type { DeadLetterService } from "#shared/core/dead-letters";
import { TaskErrorSchema, TaskStatusSchema } from "#shared/domain/task";
import { type ApiRoute, defineRoute, errorResponses, json, jsonBody } from "./route.ts";
import { TaskIdSchema } from "./schemas.ts";

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

const tags = ["operations"];

/**
 * The dead-letter routes: `GET /dlq` (per capability and tier: depth, oldest age, a page of
 * dead-lettered tasks with their status and last error) and `POST /dlq/redrive` (all, by capability,
 * or by task ids). A redriven task keeps its id and history and gets a fresh attempt budget. Served
 * only where the queue adapter has the dead-letter operations (not on Service Bus yet).
 *
 * @example
 * const app = createApiApp({ routes: dlqRoutes({ deadLetters }), logger });
 */
export function dlqRoutes({ deadLetters }: { deadLetters?: DeadLetterUseCases }): ApiRoute[] {
  if (deadLetters === undefined) return [];
  return [
    defineRoute(
      {
        method: "get",
        path: "/dlq",
        operationId: "listDeadLetters",
        summary: "What the dead-letter queues hold",
        tags,
        request: { query: ListDeadLettersQuerySchema },
        responses: {
          200: json("Each capability queue's DLQ", DeadLetterQueuesResponseSchema),
          ...errorResponses({
            400: "`validation_error`: a query parameter is invalid or names no capability",
          }),
        },
      },
      async (c) => {
        const query = c.req.valid("query");
        const queues = await deadLetters.list({
          limit: query.limit,
          ...(query.capability !== undefined ? { capability: query.capability } : {}),
        });
        return c.json({ queues } as z.infer<typeof DeadLetterQueuesResponseSchema>, 200);
      },
    ),
    defineRoute(
      {
        method: "post",
        path: "/dlq/redrive",
        operationId: "redriveDeadLetters",
        summary: "Send dead-lettered tasks back to their queues",
        description:
          "A failed task is reopened with its id and history and a fresh attempt budget; a task that " +
          "already completed or was canceled is not run again (its message is dropped). At most 500 " +
          "messages per queue per call: call again while `GET /dlq` shows more.",
        tags,
        request: { body: jsonBody(RedriveRequestSchema) },
        responses: {
          200: json("What was redriven and dropped", RedriveResponseSchema),
          ...errorResponses({ 400: "`validation_error`: the body is invalid or names no capability" }),
        },
      },
      async (c) => {
        const body = c.req.valid("json");
        const outcome = await deadLetters.redrive({
          ...(body.capability !== undefined ? { capability: body.capability } : {}),
          ...(body.taskIds !== undefined ? { taskIds: body.taskIds } : {}),
        });
        return c.json({ redriven: [...outcome.redriven], dropped: [...outcome.dropped] }, 200);
      },
    ),
  ];
}
