import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { EventBridgeEvent } from "aws-lambda";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { EmfMetrics } from "#shared/adapters/aws/emf-metrics";
import { loadPlatformConfig } from "#shared/config/platform";
import type { TaskEventReport } from "#shared/core/jobs/aggregator";
import { createPlatform, withMaintenance } from "#shared/core/platform";
import type { BusEvent } from "#shared/domain/events";

// Composition root: built once per container.
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "aggregator" });
// Jobs completed, failed and canceled (EMF), counted from the Job Completed events it publishes.
const metrics = new EmfMetrics();
const adapters = createAwsAdapters();
const { aggregator } = withMaintenance(
  createPlatform(
    { ...adapters, eventPublisher: metrics.counting(adapters.eventPublisher) },
    loadPlatformConfig(),
    logger,
  ),
);

/**
 * EventBridge delivers EventBridge's own event id; the aggregator deduplicates on the detail (task id
 * and the task record), never on the id, so the envelope is passed on as it came.
 */
const lambdaHandler = async (
  event: EventBridgeEvent<string, Record<string, unknown>>,
): Promise<TaskEventReport> => {
  const busEvent: BusEvent = {
    id: event.id,
    source: event.source,
    "detail-type": event["detail-type"],
    time: event.time,
    resources: event.resources ?? [],
    detail: event.detail ?? {},
  };
  try {
    const report = await aggregator.onTaskEvent(busEvent);
    if (report.kind !== "ignored") logger.debug("task event aggregated", { ...report });
    return report;
  } finally {
    metrics.flush();
  }
};

/**
 * The target of the aggregation rule (every `Task …` lifecycle event). A thrown error makes Lambda's
 * asynchronous retries, then the rule's dead-letter queue, deliver the event again; the aggregator is
 * idempotent, so that is always safe.
 *
 * @example
 * // infra/constructs/aggregation.ts: rule `source: agentry`, detail-type prefix "Task " → this handler
 * await handler({ source: "agentry", "detail-type": "Task Completed", detail: { taskId, jobId, version: 3 }, … }, context);
 */
export const handler = middy(lambdaHandler).use(injectLambdaContext(logger));
