import type { AwsAdapters } from "#shared/adapters/aws/clients";
import { dynamoJobStoreFor } from "#shared/adapters/aws/dynamo-job-store";
import type { PlatformConfig } from "#shared/config/platform";
import type { JobDeps, JobLogger, JobTaskSupervisor } from "#shared/core/jobs/job-runner";
import { createReducerRegistry } from "#shared/core/jobs/reducers";

/**
 * What the supervisor API (JobService), the aggregator and the sweeper (Aggregator) build jobs from,
 * in one place: the same table and shards, the same reconciliation interval and — above all — the
 * same reducers. Register custom reducers here: a job the API accepts is then one the aggregator can
 * reduce.
 *
 * @example
 * const jobs = new JobService(lambdaJobDeps(adapters, config, supervisor, logger));
 */
export function lambdaJobDeps(
  adapters: AwsAdapters,
  config: PlatformConfig,
  supervisor: JobTaskSupervisor,
  logger: JobLogger,
): JobDeps {
  return {
    jobs: dynamoJobStoreFor(adapters),
    tasks: adapters.taskStore,
    supervisor,
    publisher: adapters.eventPublisher,
    reducers: createReducerRegistry(),
    logger,
    reconcileSeconds: config.jobReconcileSeconds,
  };
}
