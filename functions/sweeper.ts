import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { loadPlatformConfig } from "#shared/config/platform";
import { AgentLivenessSweeper } from "#shared/core/agents/liveness-sweeper";
import { Aggregator, type DueJobsReport } from "#shared/core/jobs/aggregator";
import { Supervisor } from "#shared/core/supervisor";
import { Sweeper, type SweepReport } from "#shared/core/sweeper";
import { toWorkerLogger } from "#shared/worker/aws-lambda";
import { lambdaJobDeps } from "./lib/job-deps.ts";

// Composition root: built once per container.
const adapters = createAwsAdapters();
const powertools = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "sweeper" });
const logger = toWorkerLogger(powertools);
const config = loadPlatformConfig();
const sweeper = new Sweeper({
  store: adapters.taskStore,
  queue: adapters.taskQueue,
  config,
});
// Jobs (issue #6): deadlines, interrupted pipeline steps, reconciliation and unconfirmed `Job Completed`
// events — built like the aggregator's (functions/lib/job-deps.ts).
const supervisor = new Supervisor({
  store: adapters.taskStore,
  queue: adapters.taskQueue,
  config,
  logger,
});
const jobs = new Aggregator(lambdaJobDeps(adapters, config, supervisor, logger));

const agentLiveness = new AgentLivenessSweeper({
  registry: adapters.agentRegistry,
  config,
});

const lambdaHandler = async (): Promise<
  SweepReport & { agentsMarkedUnavailable: readonly string[]; jobs: DueJobsReport }
> => {
  // Independent loops: a failure of one must not skip the others (the invocation still fails after all).
  const [tasks, agents, dueJobs] = await Promise.allSettled([
    sweeper.sweep(),
    agentLiveness.sweep(),
    jobs.advanceDueJobs(new Date()),
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
export const handler = middy(lambdaHandler).use(injectLambdaContext(powertools));
