import { Logger } from "@aws-lambda-powertools/logger";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { loadPlatformConfig } from "#shared/config/platform";
import { AgentRouter } from "#shared/core/agents/agent-router";
import { AgentService } from "#shared/core/agents/agent-service";
import { MessagingService } from "#shared/core/agents/messaging-service";
import { canRedrive, DeadLetterService } from "#shared/core/dead-letters";
import { EventRelay } from "#shared/core/event-relay";
import { JobService } from "#shared/core/jobs/job-service";
import { Supervisor } from "#shared/core/supervisor";
import { agentRoutes } from "#shared/http/agent-routes";
import { dlqRoutes } from "#shared/http/dlq-routes";
import { createSupervisorApiHandler } from "#shared/http/handler";
import { jobRoutes } from "#shared/http/job-routes";
import { queueRoutes } from "#shared/http/queue-routes";
import { lambdaJobDeps } from "./lib/job-deps.ts";

/**
 * The supervisor HTTP API on Lambda (API Gateway HTTP API, payload v2). Composition root only:
 * everything is built once per execution environment, at module scope, and reused while warm.
 * The service name comes from POWERTOOLS_SERVICE_NAME. A malformed environment fails the cold start
 * with a ConfigurationError naming every problem.
 *
 * Tracing is Lambda's active X-Ray tracing and metrics are API Gateway's own (Count, 4xx, 5xx,
 * Latency): the Powertools Tracer (X-Ray SDK) and Metrics would add ~130 KiB to the bundle and push
 * it past the 500 KB budget (ADR 0006).
 */
const logger = new Logger();

const adapters = createAwsAdapters();
const { taskStore: store, taskQueue: queue, eventPublisher, agentRegistry } = adapters;

// The core's loggers take an optional `extra`, which Powertools' variadic signature does not accept as is.
const coreLogger = {
  warn: (message: string, extra?: Record<string, unknown>) => logger.warn(message, extra ?? {}),
};
const config = loadPlatformConfig();
const relay = new EventRelay({ store, publisher: eventPublisher, logger: coreLogger });
// Agents (issue #5): routing by preferredAgentId, the registry routes, and messaging published to the
// bus (its subscribers are EventBridge rules, see ADR 0004).
const agentRouting = new AgentRouter({ registry: agentRegistry, logger: coreLogger });
const supervisor = new Supervisor({
  store,
  queue,
  relay,
  config,
  logger: coreLogger,
  agentRouting,
});
const agents = new AgentService({ registry: agentRegistry, store });
const messaging = new MessagingService({
  registry: agentRegistry,
  publisher: eventPublisher,
  logger: coreLogger,
});
// Jobs (issue #6): built like the aggregator's (functions/lib/job-deps.ts), custom reducers included.
const jobs = new JobService(lambdaJobDeps(adapters, config, supervisor, coreLogger));

export const handler = createSupervisorApiHandler({
  supervisor,
  logger,
  extraRoutes: [
    ...agentRoutes({ agents, messaging }),
    ...jobRoutes(jobs),
    // Operations (infra/constructs/supervisor-api.ts grants them): queue depths and the dead-letter queues.
    ...(queue.depth ? queueRoutes({ queue: { depth: queue.depth.bind(queue) }, config }) : []),
    ...(canRedrive(queue) ? dlqRoutes(new DeadLetterService({ store, queue, relay, config })) : []),
  ],
});
