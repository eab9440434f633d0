import type { PlatformConfig } from "#shared/config/platform";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import type { EventPublisher, EventSubscriber } from "#shared/ports/event-bus";
import type { JobStore } from "#shared/ports/job-store";
import type { Logger } from "#shared/ports/logger";
import type { TaskQueue } from "#shared/ports/task-queue";
import type { TaskStore } from "#shared/ports/task-store";
import { AgentRouter } from "./agents/agent-router.ts";
import { AgentService } from "./agents/agent-service.ts";
import { AgentLivenessSweeper } from "./agents/liveness-sweeper.ts";
import { MessagingService } from "./agents/messaging-service.ts";
import { EventRelay } from "./event-relay.ts";
import { Aggregator } from "./jobs/aggregator.ts";
import type { JobDeps } from "./jobs/job-runner.ts";
import { JobService } from "./jobs/job-service.ts";
import { createReducerRegistry, type ReducerDefinition } from "./jobs/reducers.ts";
import { Supervisor } from "./supervisor.ts";
import { Sweeper } from "./sweeper.ts";

/** The ports the platform is built on: memory adapters locally, AWS adapters on Lambda. */
export interface PlatformAdapters {
  readonly taskStore: TaskStore;
  readonly taskQueue: TaskQueue;
  readonly eventPublisher: EventPublisher;
  /** In-process delivery of messages; none on Lambda, where EventBridge rules deliver them. */
  readonly eventSubscriber?: EventSubscriber;
  readonly agentRegistry: AgentRegistry;
  readonly jobStore: JobStore;
}

export interface PlatformOptions {
  /** Custom job reducers (`defineReducer`), next to the built-in ones. @default none */
  readonly reducers?: readonly ReducerDefinition[];
}

/** Every use case of the platform, built once from one set of adapters, one config, one logger. */
export interface Platform {
  readonly config: PlatformConfig;
  readonly relay: EventRelay;
  readonly supervisor: Supervisor;
  readonly sweeper: Sweeper;
  readonly agents: AgentService;
  readonly agentLiveness: AgentLivenessSweeper;
  readonly messaging: MessagingService;
  /** What the job service and the aggregator are built from (one set: the same reducers in both). */
  readonly jobDeps: JobDeps;
  readonly jobs: JobService;
  readonly aggregator: Aggregator;
}

/**
 * The composition root: builds the whole platform from adapters, config and a logger. Every Lambda
 * entry (functions/*.ts, shared/worker/aws-lambda.ts) and the local runtime (local/runtime.ts) call
 * it, so the supervisor the API submits with is wired exactly like the one the aggregator submits a
 * pipeline's next step with. Construction does no I/O: a function builds it at module scope and
 * uses the parts it serves.
 *
 * @example
 * const platform = createPlatform(createAwsAdapters(), loadPlatformConfig(), logger);
 * await platform.sweeper.sweep();
 */
export function createPlatform(
  adapters: PlatformAdapters,
  config: PlatformConfig,
  logger: Logger,
  options: PlatformOptions = {},
): Platform {
  const { taskStore: store, taskQueue: queue, agentRegistry: registry } = adapters;
  const relay = new EventRelay({ store, publisher: adapters.eventPublisher, logger });
  // Routing by preferredAgentId (ADR 0004) applies wherever tasks are submitted: the API and a
  // pipeline's next step alike.
  const agentRouting = new AgentRouter({ registry, logger });
  const supervisor = new Supervisor({ store, queue, relay, config, logger, agentRouting });
  const jobDeps: JobDeps = {
    jobs: adapters.jobStore,
    tasks: store,
    supervisor,
    publisher: adapters.eventPublisher,
    reducers: createReducerRegistry(options.reducers ?? []),
    logger,
    reconcileSeconds: config.jobReconcileSeconds,
  };
  return {
    config,
    relay,
    supervisor,
    sweeper: new Sweeper({ store, queue, relay, config }),
    agents: new AgentService({ registry, store }),
    agentLiveness: new AgentLivenessSweeper({ registry, config }),
    messaging: new MessagingService({
      registry,
      publisher: adapters.eventPublisher,
      ...(adapters.eventSubscriber !== undefined ? { subscriber: adapters.eventSubscriber } : {}),
      logger,
    }),
    jobDeps,
    jobs: new JobService(jobDeps),
    aggregator: new Aggregator(jobDeps),
  };
}
