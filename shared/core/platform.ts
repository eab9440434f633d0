import type { PlatformConfig } from "#shared/config/platform";
import type { BusEvent } from "#shared/domain/events";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import type { EventPublisher, EventSubscriber } from "#shared/ports/event-bus";
import type { JobStore } from "#shared/ports/job-store";
import type { Logger } from "#shared/ports/logger";
import type { QueueDepth, TaskQueue } from "#shared/ports/task-queue";
import type { TaskStore } from "#shared/ports/task-store";
import { AgentRouter } from "./agents/agent-router.ts";
import { AgentService } from "./agents/agent-service.ts";
import { AgentLivenessSweeper } from "./agents/liveness-sweeper.ts";
import { MessagingService } from "./agents/messaging-service.ts";
import { canRedrive, DeadLetterService } from "./dead-letters.ts";
import { Aggregator } from "./jobs/aggregator.ts";
import { JobService } from "./jobs/job-service.ts";
import type { JobDeps } from "./jobs/job-steps.ts";
import { createReducerRegistry, type ReducerDefinition } from "./jobs/reducers.ts";
import { Supervisor } from "./supervisor.ts";
import { Sweeper } from "./sweeper.ts";
import { type TaskEventPublishing, TaskStream } from "./task-stream.ts";

/** The ports the platform is built on: memory adapters locally, AWS adapters on Lambda. */
export interface PlatformAdapters {
  readonly taskStore: TaskStore;
  readonly taskQueue: TaskQueue;
  readonly eventPublisher: EventPublisher;
  /** Where agent messages are published. @default eventPublisher (Azure: the Service Bus topic) */
  readonly messagePublisher?: EventPublisher;
  /** In-process delivery of messages; none on Lambda, where EventBridge rules deliver them. */
  readonly eventSubscriber?: EventSubscriber;
  readonly agentRegistry: AgentRegistry;
  readonly jobStore: JobStore;
}

/**
 * Custom job reducers of the deployed functions, next to the built-in ones. Register yours here: the
 * API, the aggregator and the sweeper all build their jobs with this list, so a job the API accepts
 * is one the aggregator can reduce.
 */
export const DEPLOYED_REDUCERS: readonly ReducerDefinition[] = [];

export interface PlatformOptions {
  /** Custom job reducers (`defineReducer`), next to the built-in ones. @default DEPLOYED_REDUCERS */
  readonly reducers?: readonly ReducerDefinition[];
  /**
   * Which task lifecycle events the task stream publishes to the bus (on AWS each is a billed
   * EventBridge event). @default "none" — only what someone consumes (docs/adr/0007-write-path-cost.md)
   */
  readonly taskEvents?: TaskEventPublishing;
  /** Sees every lifecycle event the task stream derives, published or not (metrics). */
  readonly observeTaskEvents?: (events: readonly BusEvent[]) => void;
}

/** Every use case of the request path, built once from one set of adapters, one config, one logger. */
export interface Platform {
  readonly adapters: PlatformAdapters;
  readonly config: PlatformConfig;
  readonly options: PlatformOptions;
  readonly supervisor: Supervisor;
  readonly agents: AgentService;
  readonly messaging: MessagingService;
  /** What the job service and the aggregator are built from (one set: the same reducers in both). */
  readonly jobDeps: JobDeps;
  readonly jobs: JobService;
  /** The dead-letter queues (`GET /dlq`, `POST /dlq/redrive`), where the queue adapter has them. */
  readonly deadLetters?: DeadLetterService;
  /** Each logical queue's depth (`GET /stats/queues`), where the queue adapter can count. */
  readonly queueDepth?: (queue: string) => Promise<QueueDepth>;
}

/** The platform and what runs beside requests: aggregation, and the sweeps of tasks, agents and jobs. */
export interface PlatformWithMaintenance extends Platform {
  readonly aggregator: Aggregator;
  readonly sweeper: Sweeper;
  /**
   * Everything that follows a committed task write (lifecycle events, statistics, aggregation of job
   * tasks), fed by the table's change stream: the deployed stream Lambda, the emulated stream poller,
   * the memory store's change feed.
   */
  readonly taskStream: TaskStream;
  readonly agentLiveness: AgentLivenessSweeper;
}

/**
 * The composition root: builds the platform from adapters, config and a logger. Every Lambda entry
 * (functions/*.ts, shared/worker/aws-lambda.ts) and the local runtime (local/runtime.ts) call it, so
 * the supervisor the API submits with is wired exactly like the one the aggregator submits a
 * pipeline's next step with. Construction does no I/O: a function builds it at module scope and
 * uses the parts it serves. What runs beside requests is added by {@link withMaintenance}, kept
 * apart so that the API's bundle does not carry the aggregator and the sweepers (its 500 KB budget,
 * docs/adr/0011-http-app-composition-logging.md).
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
  const { taskStore: store, agentRegistry: registry } = adapters;
  const queue = adapters.taskQueue;
  // Routing by preferredAgentId (ADR 0004) applies wherever tasks are submitted: the API and a
  // pipeline's next step alike.
  const agentRouting = new AgentRouter({ registry, logger });
  const supervisor = new Supervisor({ store, queue, config, logger, agentRouting });
  const jobDeps: JobDeps = {
    jobs: adapters.jobStore,
    tasks: store,
    supervisor,
    publisher: adapters.eventPublisher,
    reducers: createReducerRegistry(options.reducers ?? DEPLOYED_REDUCERS),
    logger,
    reconcileSeconds: config.jobReconcileSeconds,
  };
  return {
    adapters,
    config,
    options,
    supervisor,
    agents: new AgentService({ registry, store }),
    messaging: new MessagingService({
      registry,
      publisher: adapters.messagePublisher ?? adapters.eventPublisher,
      ...(adapters.eventSubscriber !== undefined ? { subscriber: adapters.eventSubscriber } : {}),
      logger,
    }),
    jobDeps,
    jobs: new JobService(jobDeps),
    ...(queue.depth !== undefined ? { queueDepth: queue.depth.bind(queue) } : {}),
    // Not every adapter has the dead-letter operations yet (Service Bus does not).
    ...(canRedrive(queue) ? { deadLetters: new DeadLetterService({ store, queue, config }) } : {}),
  };
}

/**
 * Adds what runs beside requests to a platform: the aggregator and the task stream that feeds it, and
 * the sweeps of tasks, agent liveness and jobs, all on the platform's own adapters and job dependencies.
 *
 * The caller connects `taskStream.process` to its store's change source, which is a deployment
 * concern like a queue's event source: the stream event source mapping on AWS
 * (functions/aggregator.ts), a poller over DynamoDB Local's stream (local/dynamo-stream-poller.ts),
 * or a `MemoryTaskStore`'s `onChanges` (local/runtime.ts). Until it is connected, nothing counts
 * statistics or advances jobs from events (the job sweep still reconciles them).
 *
 * @example
 * const { sweeper, agentLiveness, aggregator } = withMaintenance(createPlatform(adapters, config, logger));
 */
export function withMaintenance(platform: Platform): PlatformWithMaintenance {
  const { adapters, config, options } = platform;
  const aggregator = new Aggregator(platform.jobDeps);
  return {
    ...platform,
    aggregator,
    sweeper: new Sweeper({ store: adapters.taskStore, queue: adapters.taskQueue, config }),
    taskStream: new TaskStream({
      store: adapters.taskStore,
      publisher: adapters.eventPublisher,
      publish: options.taskEvents ?? "none",
      jobs: aggregator,
      logger: platform.jobDeps.logger,
      ...(options.observeTaskEvents !== undefined ? { observe: options.observeTaskEvents } : {}),
    }),
    agentLiveness: new AgentLivenessSweeper({ registry: adapters.agentRegistry, config }),
  };
}
