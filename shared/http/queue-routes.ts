import * as z from "zod";
import { type PlatformConfig, queuesForCapability } from "#shared/config/platform";
import type { QueueDepth } from "#shared/ports/task-queue";
import { type ApiRoute, defineRoute, json } from "./route.ts";

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

/** What the queue statistics route reads: each logical queue's depth, and the capabilities. */
export interface QueueRoutesDeps {
  /** `TaskQueue.depth`; without it (Service Bus) the route is not served. */
  readonly queueDepth?: (queue: string) => Promise<QueueDepth>;
  readonly config: Pick<PlatformConfig, "capabilities">;
}

/**
 * `GET /stats/queues`, read-only: for each configured capability, the counts of its two queues
 * (`TaskQueue.depth`) and their sum. The dashboard and `agentry stats` show them; SQS's counts are
 * approximate, so they are for watching, never for deciding. Served only where the queue adapter can
 * count (not on Service Bus, whose counts need its administration client).
 *
 * @example
 * const app = createApiApp({ routes: queueRoutes({ queueDepth: queue.depth.bind(queue), config }), logger });
 */
export function queueRoutes(deps: QueueRoutesDeps): ApiRoute[] {
  const { queueDepth } = deps;
  if (queueDepth === undefined) return [];
  return [
    defineRoute(
      {
        method: "get",
        path: "/stats/queues",
        operationId: "getQueueStatistics",
        summary: "Queue depth and dead-letter counts per capability",
        tags: ["tasks"],
        responses: { 200: json("Counts per capability", QueueStatisticsSchema) },
      },
      async (c) => {
        const capabilities = await Promise.all(
          deps.config.capabilities.map(async ({ name }) => {
            const queues = await Promise.all(
              queuesForCapability(name).map(async (queue) => ({ queue, ...(await queueDepth(queue)) })),
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
        return c.json({ capabilities }, 200);
      },
    ),
  ];
}
