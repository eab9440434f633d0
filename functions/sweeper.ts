import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { loadPlatformConfig } from "#shared/config/platform";
import type { DueJobsReport } from "#shared/core/jobs/aggregator";
import { createPlatform, withMaintenance } from "#shared/core/platform";
import type { SweepReport } from "#shared/core/sweeper";

// Composition root: built once per container.
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "sweeper" });
// Tasks, agents and jobs (deadlines, interrupted pipeline steps, reconciliation, unconfirmed
// `Job Completed` events): each its own sweep.
const { sweeper, agentLiveness, aggregator } = withMaintenance(
  createPlatform(createAwsAdapters(), loadPlatformConfig(), logger),
);

const lambdaHandler = async (): Promise<
  SweepReport & { agentsMarkedUnavailable: readonly string[]; jobs: DueJobsReport }
> => {
  // Independent loops: a failure of one must not skip the others (the invocation still fails after all).
  const [tasks, agents, dueJobs] = await Promise.allSettled([
    sweeper.sweep(),
    agentLiveness.sweep(),
    aggregator.advanceDueJobs(new Date()),
  ]);
  if (tasks.status === "rejected") throw tasks.reason;
  if (agents.status === "rejected") throw agents.reason;
  if (dueJobs.status === "rejected") throw dueJobs.reason;
  const report = {
    ...tasks.value,
    agentsMarkedUnavailable: agents.value.markedUnavailable,
    jobs: dueJobs.value,
  };
  logger.info("sweep finished", { ...report });
  return report;
};

/**
 * Runs every minute (EventBridge Scheduler): expired leases, stuck submissions, jobs due or to
 * reconcile, and agents without a recent heartbeat (marked unavailable).
 */
export const handler = middy(lambdaHandler).use(injectLambdaContext(logger));
