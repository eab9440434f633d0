import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { type AwsAdapters, createAwsAdapters } from "#shared/adapters/aws/clients";
import { loadPlatformConfig, type PlatformConfig } from "#shared/config/platform";
import { lambdaAgentPresence } from "./agent-presence.ts";
import type { WorkerDefinition } from "./define-worker.ts";
import { createLambdaWorkerHandler } from "./lambda-handler.ts";

/** Physical SQS queue name (the URL's last path segment) → logical queue name. */
export function queueNamesFromUrls(queueUrls: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(queueUrls).map(([logical, url]) => [
      new URL(url).pathname.split("/").at(-1) ?? logical,
      logical,
    ]),
  );
}

/**
 * A worker definition as a deployable SQS-triggered Lambda handler: builds the AWS adapters from
 * the function's environment once per container, and wraps the batch handler with the Powertools
 * logger. The one Lambda worker entry (functions/workers/worker.ts) exports it for the registered
 * worker its `CAPABILITY` names.
 *
 * @example
 * export const handler = lambdaWorker(workerForCapability(process.env.CAPABILITY));
 */
export function lambdaWorker(
  worker: WorkerDefinition,
  options: { adapters?: AwsAdapters; config?: PlatformConfig } = {},
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const adapters = options.adapters ?? createAwsAdapters();
  const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? worker.agentType });
  const config = options.config ?? loadPlatformConfig();
  // No events and no metrics here: a worker's writes reach the task table's stream, whose consumer
  // (functions/aggregator.ts) publishes and counts them (docs/adr/0007-write-path-cost.md).
  // One registry entry per agent type: every container of the function is the same agent.
  const presence = lambdaAgentPresence(worker, {
    registry: adapters.agentRegistry,
    store: adapters.taskStore,
    config,
    logger,
    ...(process.env.AGENT_ID ? { agentId: process.env.AGENT_ID } : {}),
  });
  const batchHandler = createLambdaWorkerHandler(worker, {
    store: adapters.taskStore,
    queue: adapters.taskQueue,
    config,
    logger,
    queueNames: queueNamesFromUrls(adapters.environment.QUEUE_URLS),
    agentId: presence.agentId,
  });
  return middy<SQSEvent, SQSBatchResponse>(async (event: SQSEvent, context: Context) => {
    // Registration and heartbeats are best effort (touch() never throws): tasks run regardless.
    await presence.touch();
    return batchHandler(event, context);
  }).use(injectLambdaContext(logger));
}
