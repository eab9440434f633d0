import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { createTaskStreamHandler, type TaskStreamRecord } from "#shared/adapters/aws/task-stream-records";
import { loadPlatformConfig } from "#shared/config/platform";
import { Aggregator } from "#shared/core/jobs/aggregator";
import { Supervisor } from "#shared/core/supervisor";
import { type TaskEventPublishing, TaskStream } from "#shared/core/task-stream";
import { toWorkerLogger } from "#shared/worker/aws-lambda";
import { lambdaJobDeps } from "./lib/job-deps.ts";

// Composition root: built once per container.
const adapters = createAwsAdapters();
const powertools = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "aggregator" });
const logger = toWorkerLogger(powertools);
const config = loadPlatformConfig();
// Pipelines submit their next step's tasks from here, and jobs cancel the tasks they no longer need.
const supervisor = new Supervisor({ store: adapters.taskStore, queue: adapters.taskQueue, config, logger });
const aggregator = new Aggregator(lambdaJobDeps(adapters, config, supervisor, logger));
const stream = new TaskStream({
  store: adapters.taskStore,
  publisher: adapters.eventPublisher,
  publish: publishing(process.env.PUBLISH_TASK_EVENTS),
  jobs: aggregator,
  logger,
});
const streamHandler = createTaskStreamHandler(stream);

function publishing(value: string | undefined): TaskEventPublishing {
  if (value === undefined || value === "") return "none";
  if (value === "all" || value === "terminal" || value === "none") return value;
  throw new Error(`PUBLISH_TASK_EVENTS must be all, terminal or none, got "${value}"`);
}

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
export const handler = middy<DynamoDBStreamEvent, DynamoDBBatchResponse>(async (event: DynamoDBStreamEvent) =>
  streamHandler({ Records: event.Records as TaskStreamRecord[] }),
).use(injectLambdaContext(powertools));
