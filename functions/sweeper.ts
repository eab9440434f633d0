import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { loadPlatformConfig } from "#shared/config/platform";
import { AgentLivenessSweeper } from "#shared/core/agents/liveness-sweeper";
import { EventRelay } from "#shared/core/event-relay";
import { Sweeper, type SweepReport } from "#shared/core/sweeper";
import { toWorkerLogger } from "#shared/worker/aws-lambda";

// Composition root: built once per container.
const adapters = createAwsAdapters();
const powertools = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "sweeper" });
const logger = toWorkerLogger(powertools);
const sweeper = new Sweeper({
  store: adapters.taskStore,
  queue: adapters.taskQueue,
  relay: new EventRelay({ store: adapters.taskStore, publisher: adapters.eventPublisher, logger }),
  config: loadPlatformConfig(),
});

const agentLiveness = new AgentLivenessSweeper({
  registry: adapters.agentRegistry,
  config: loadPlatformConfig(),
});

const lambdaHandler = async (): Promise<SweepReport & { agentsMarkedUnavailable: readonly string[] }> => {
  // Independent loops: a failure of one must not skip the other (the invocation still fails after both).
  const [tasks, agents] = await Promise.allSettled([sweeper.sweep(), agentLiveness.sweep()]);
  if (tasks.status === "rejected") throw tasks.reason;
  if (agents.status === "rejected") throw agents.reason;
  const report = { ...tasks.value, agentsMarkedUnavailable: agents.value.markedUnavailable };
  logger.info("sweep finished", { ...report });
  return report;
};

/**
 * Runs every minute (EventBridge Scheduler): expired leases, stuck submissions, unpublished events,
 * and agents without a recent heartbeat (marked unavailable).
 */
export const handler = middy(lambdaHandler).use(injectLambdaContext(powertools));
