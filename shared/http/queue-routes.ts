import * as z from "zod";
import { type PlatformConfig, queuesForCapability } from "#shared/config/platform";
import type { TaskQueue } from "#shared/ports/task-queue";
import type { ApiRouteTable } from "./router.ts";
import { apiSchemas } from "./schemas.ts";

const QueueCountsSchema = z.object({
  available: z.int().describe("Ready to be received."),
  inFlight: z.int().describe("Held by a worker, or waiting out a retry backoff."),
  delayed: z.int().describe("Sent with a delay that has not run out."),
  deadLettered: z.int().describe("In the dead-letter queue."),
});

/** `GET /stats/queues`: depth and dead-letter count of every capability's queues (both tiers). */
export const QueueStatisticsSchema = z.object({
  capabilities: z.array(
    QueueCountsSchema.extend({
      capability: z.string(),
      /** Per logical queue: the high tier first, then the normal one. */
      queues: z.array(QueueCountsSchema.extend({ queue: z.string() })),
    }),
  ),
});
export type QueueStatistics = z.infer<typeof QueueStatisticsSchema>;

apiSchemas.add(QueueStatisticsSchema, { id: "QueueStatistics" });

/**
 * `GET /stats/queues`, read-only: for each configured capability, the counts of its two queues
 * (`TaskQueue.depth`) and their sum. The dashboard and `agentry stats` show them; SQS's counts are
 * approximate, so they are for watching, never for deciding.
 *
 * @example
 * const router = createApiRouter({ supervisor, extraRoutes: queueRoutes({ queue, config }) });
 */
export function queueRoutes(deps: {
  readonly queue: Required<Pick<TaskQueue, "depth">>;
  readonly config: Pick<PlatformConfig, "capabilities">;
}): ApiRouteTable {
  return [
    {
      method: "GET",
      path: "/stats/queues",
      operation: {
        operationId: "getQueueStatistics",
        summary: "Queue depth and dead-letter counts per capability",
        tags: ["tasks"],
        responses: { "200": { description: "Counts per capability", schema: QueueStatisticsSchema } },
      },
      handle: async () => {
        const capabilities = await Promise.all(
          deps.config.capabilities.map(async ({ name }) => {
            const queues = await Promise.all(
              queuesForCapability(name).map(async (queue) => ({ queue, ...(await deps.queue.depth(queue)) })),
            );
            const sum = (field: keyof z.infer<typeof QueueCountsSchema>) =>
              queues.reduce((total, queue) => total + queue[field], 0);
            return {
              capability: name,
              available: sum("available"),
              inFlight: sum("inFlight"),
              delayed: sum("delayed"),
              deadLettered: sum("deadLettered"),
              queues,
            };
          }),
        );
        return { statusCode: 200, body: { capabilities } };
      },
    },
  ];
}
