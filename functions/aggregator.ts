import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { EmfMetrics } from "#shared/adapters/aws/emf-metrics";
import { createTaskStreamHandler, type TaskStreamRecord } from "#shared/adapters/aws/task-stream-records";
import { loadPlatformConfig } from "#shared/config/platform";
import { createPlatform, withMaintenance } from "#shared/core/platform";
import { taskEventPublishing } from "#shared/core/task-stream";

// Composition root: built once per container.
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "aggregator" });
// Tasks completed, failed and retried (from the stream's lifecycle events) and jobs completed,
// failed and canceled (from the Job Completed events it publishes), as EMF.
const metrics = new EmfMetrics();
const adapters = createAwsAdapters();
const { taskStream } = withMaintenance(
  createPlatform(
    { ...adapters, eventPublisher: metrics.counting(adapters.eventPublisher) },
    loadPlatformConfig(),
    logger,
    {
      taskEvents: taskEventPublishing(process.env.PUBLISH_TASK_EVENTS),
      observeTaskEvents: (events) => metrics.count(events),
    },
  ),
);
const streamHandler = createTaskStreamHandler(taskStream);

/**
 * The consumer of the task table's DynamoDB Stream (infra/constructs/aggregation.ts: batches,
 * ReportBatchItemFailures, retries, then the on-failure queue): for each batch, job tasks' lifecycle
 * events go to the aggregator, lifecycle events to EventBridge as `PUBLISH_TASK_EVENTS` says (default
 * none: nobody subscribes), and the batch's statistics are applied in one write. The first change not
 * processed is reported, so Lambda delivers again from its record.
 *
 * @example
 * await handler({ Records: [{ eventName: "MODIFY", dynamodb: { Keys, OldImage, NewImage, SequenceNumber } }] }, context);
 */
export const handler = middy<DynamoDBStreamEvent, DynamoDBBatchResponse>(
  async (event: DynamoDBStreamEvent) => {
    try {
      return await streamHandler({ Records: event.Records as TaskStreamRecord[] });
    } finally {
      metrics.flush();
    }
  },
).use(injectLambdaContext(logger));
