import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";
import { createAwsAdapters, createAwsClients, readAwsAdapterEnvironment } from "#shared/adapters/aws/clients";
import { DynamoJobStore } from "#shared/adapters/aws/dynamo-job-store";
import { loadPlatformConfig } from "#shared/config/platform";
import { AgentRouter } from "#shared/core/agents/agent-router";
import { AgentService } from "#shared/core/agents/agent-service";
import { MessagingService } from "#shared/core/agents/messaging-service";
import { EventRelay } from "#shared/core/event-relay";
import { JobService } from "#shared/core/jobs/job-service";
import { createReducerRegistry } from "#shared/core/jobs/reducers";
import { Supervisor } from "#shared/core/supervisor";
import { agentRoutes } from "#shared/http/agent-routes";
import { createSupervisorApiHandler } from "#shared/http/handler";
import { jobRoutes } from "#shared/http/job-routes";

/**
 * The supervisor HTTP API on Lambda (API Gateway HTTP API, payload v2). Composition root only:
 * everything is built once per execution environment, at module scope, and reused while warm.
 * Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE.
 * A malformed environment fails the cold start with a ConfigurationError naming every problem.
 */
const logger = new Logger();
const tracer = new Tracer();
const metrics = new Metrics();

const environment = readAwsAdapterEnvironment();
const clients = createAwsClients({ region: environment.AWS_REGION });
// Instrumented before the adapters get them, so every DynamoDB, SQS and EventBridge call is traced.
tracer.captureAWSv3Client(clients.dynamodb);
tracer.captureAWSv3Client(clients.sqs);
tracer.captureAWSv3Client(clients.eventBridge);
const { taskStore: store, taskQueue: queue, eventPublisher, agentRegistry } = createAwsAdapters({ clients });

// The core's loggers take an optional `extra`, which Powertools' variadic signature does not accept as is.
const coreLogger = {
  warn: (message: string, extra?: Record<string, unknown>) => logger.warn(message, extra ?? {}),
};
const relay = new EventRelay({ store, publisher: eventPublisher, logger: coreLogger });
// Agents (issue #5): routing by preferredAgentId, the registry routes, and messaging published to the
// bus (its subscribers are EventBridge rules, see ADR 0004).
const agentRouting = new AgentRouter({ registry: agentRegistry, logger: coreLogger });
const supervisor = new Supervisor({
  store,
  queue,
  relay,
  config: loadPlatformConfig(),
  logger: coreLogger,
  agentRouting,
});
const agents = new AgentService({ registry: agentRegistry, store });
const messaging = new MessagingService({
  registry: agentRegistry,
  publisher: eventPublisher,
  logger: coreLogger,
});
// Jobs (issue #6): the same table, the same shards. Custom reducers are registered here and in
// functions/aggregator.ts: the same list in both, so a job the API accepts is one the aggregator can reduce.
const jobs = new JobService({
  jobs: new DynamoJobStore({
    client: clients.dynamodb,
    tableName: environment.TABLE_NAME,
    shards: environment.STORE_SHARDS,
  }),
  tasks: store,
  supervisor,
  publisher: eventPublisher,
  reducers: createReducerRegistry(),
  logger: coreLogger,
});

export const handler = createSupervisorApiHandler({
  supervisor,
  logger,
  tracer,
  metrics,
  extraRoutes: [...agentRoutes({ agents, messaging }), ...jobRoutes(jobs)],
});
