import { randomUUID } from "node:crypto";
import { DynamoJobStore } from "#shared/adapters/aws/dynamo-job-store";
import type { CapacityMeter, RequestCounter } from "#shared/adapters/aws/request-accounting";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { MemoryJobStore } from "#shared/adapters/memory/job-store";
import { MemoryTaskQueue } from "#shared/adapters/memory/task-queue";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { platformConfig, workers as registeredWorkers } from "#shared/agents/workers";
import { assertEveryCapabilityServed, type PlatformConfig } from "#shared/config/platform";
import type { AgentService } from "#shared/core/agents/agent-service";
import type { AgentLivenessSweeper } from "#shared/core/agents/liveness-sweeper";
import type { MessagingService } from "#shared/core/agents/messaging-service";
import type { Aggregator } from "#shared/core/jobs/aggregator";
import type { JobService } from "#shared/core/jobs/job-service";
import type { ReducerDefinition } from "#shared/core/jobs/reducers";
import { createPlatform, withMaintenance } from "#shared/core/platform";
import type { Supervisor } from "#shared/core/supervisor";
import type { Sweeper } from "#shared/core/sweeper";
import type { TaskStream } from "#shared/core/task-stream";
import { createApiApp } from "#shared/http/app";
import { apiRoutes } from "#shared/http/routes";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import type { EventBus } from "#shared/ports/event-bus";
import type { JobStore } from "#shared/ports/job-store";
import type { Logger } from "#shared/ports/logger";
import type { TaskQueue } from "#shared/ports/task-queue";
import type { TaskStore } from "#shared/ports/task-store";
import type { WorkerDefinition } from "#shared/worker/define-worker";
import { type RunningPoller, startPoller } from "#shared/worker/poller";
import { type AzureInfrastructure, startAzureInfrastructure } from "./azure.ts";
import { dashboardResponse } from "./dashboard/index.ts";
import {
  type EmulatedInfrastructure,
  type InvocationRecorder,
  meteredInvocation,
  startEmulatedInfrastructure,
  startEmulatedLambdaWorkers,
  startEmulatedTaskStream,
} from "./emulated.ts";
import { serveApi } from "./http-server.ts";
import { createConsoleLogger, type LogLevel } from "./logger.ts";
import type { ProvisionedResources } from "./provision.ts";
import { repeat } from "./repeat.ts";

export type RuntimeMode = "embedded" | "emulated" | "azure";

export interface LocalRuntimeOptions {
  /**
   * `embedded`: memory adapters, workers as in-process pollers. `emulated`: the AWS adapters on
   * Amazon DynamoDB Local and the fauxqs SQS emulator (started and stopped here), workers as the
   * SQS-batch Lambda handlers they are deployed as, fed by a local event source mapping. `azure`: the
   * task queue and agent messaging on Azure Service Bus (the local peer, or the namespace of
   * AZURE_SERVICE_BUS_CONNECTION_STRING), workers as pollers; the rest embedded.
   * @default "embedded"
   */
  readonly mode?: RuntimeMode;
  /** 0 picks a free port. @default 3000 */
  readonly port?: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
  readonly logLevel?: LogLevel;
  /** @default - `platformConfig`: derived from the registered workers (`shared/agents/workers.ts`) */
  readonly config?: PlatformConfig;
  /**
   * Workers to run: in-process pollers (embedded) or Lambda handlers (emulated); a definition listed
   * twice runs twice. Every configured capability needs one, or the runtime refuses to start.
   * @default - the registered workers (`shared/agents/workers.ts`)
   */
  readonly workers?: readonly WorkerDefinition[];
  /** Pause between the end of one sweep (tasks, jobs, agents — each its own loop) and the next. @default 1000 */
  readonly sweepIntervalMs?: number;
  /** How often a running task checks for a cancel request. @default 200 */
  readonly cancelCheckIntervalMs?: number;
  /**
   * Emulated mode: where DynamoDB Local keeps its data, so tasks survive a restart (kill -9 included).
   * The SQS emulator stays in memory: the sweeper enqueues again what its queues lost. @default in memory
   */
  readonly dataDir?: string;
  /** Custom job reducers (`defineReducer`), next to the built-in ones. @default none */
  readonly reducers?: readonly ReducerDefinition[];
  /** Told of every Lambda-equivalent invocation and its duration (the cost bench). @default none */
  readonly onInvocation?: InvocationRecorder;
}

export interface LocalRuntime {
  readonly url: string;
  readonly mode: RuntimeMode;
  /** Emulated mode: every AWS request the platform made, by service and operation. */
  readonly requests?: RequestCounter;
  /**
   * Emulated mode: the emulators' endpoints and the table and queues provisioned on them, for
   * processes of your own beside the runtime (container workers, a chaos run's checks).
   */
  readonly emulated?: {
    readonly dynamoEndpoint: string;
    readonly sqsEndpoint: string;
    readonly resources: ProvisionedResources;
  };
  /** Emulated mode: DynamoDB capacity consumed by the platform's requests. */
  readonly capacity?: CapacityMeter;
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  readonly bus: EventBus;
  readonly supervisor: Supervisor;
  readonly sweeper: Sweeper;
  /** Agents: the registry the workers register in, its use cases, liveness, and messaging (issue #5). */
  readonly registry: AgentRegistry;
  readonly agents: AgentService;
  readonly agentLiveness: AgentLivenessSweeper;
  readonly messaging: MessagingService;
  /** Jobs: their store, use cases and the aggregator fed by the task stream (issues #6, #9). */
  readonly jobStore: JobStore;
  readonly jobs: JobService;
  readonly aggregator: Aggregator;
  /**
   * What the task changes are fed to (ADR 0007): job fan-in, statistics, lifecycle events. The memory
   * store's change feed or the emulated stream poller calls its `process` for every batch.
   */
  readonly taskStream: TaskStream;
  stop(): Promise<void>;
}

/**
 * The whole platform in one process: the supervisor API (the same handler Lambda runs, fed API
 * Gateway v2 events by a local HTTP server), the workers, the aggregation and the sweepers on a
 * timer — on the embedded adapters, or on the AWS adapters against local emulators (`mode`).
 *
 * @example
 * const runtime = await startLocalRuntime({ port: 0 });
 * await fetch(`${runtime.url}/health`);
 * await runtime.stop();
 */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const config = options.config ?? platformConfig;
  // A capability nobody consumes would leave its tasks `submitted` forever: refuse before starting.
  assertEveryCapabilityServed(config, options.workers ?? registeredWorkers);
  const mode = options.mode ?? "embedded";
  const logger = createConsoleLogger(options.logLevel ?? "info");
  const infra =
    mode === "emulated"
      ? await startEmulatedInfrastructure(
          config,
          options.dataDir !== undefined ? { dataDir: options.dataDir } : {},
        )
      : undefined;
  const azure =
    mode === "azure"
      ? await startAzureInfrastructure(config, {
          connectionString: process.env.AZURE_SERVICE_BUS_CONNECTION_STRING || undefined,
        })
      : undefined;
  try {
    return await compose(options, config, mode, logger, infra, azure);
  } catch (error) {
    await infra?.stop();
    await azure?.stop();
    throw error;
  }
}

async function compose(
  options: LocalRuntimeOptions,
  config: PlatformConfig,
  mode: RuntimeMode,
  logger: Logger,
  infra: EmulatedInfrastructure | undefined,
  azure?: AzureInfrastructure,
): Promise<LocalRuntime> {
  const memoryStore = infra ? undefined : new MemoryTaskStore();
  const store: TaskStore = infra?.store ?? (memoryStore as MemoryTaskStore);
  const queue: TaskQueue =
    infra?.queue ?? azure?.queue ?? new MemoryTaskQueue({ maxReceiveCount: config.maxReceiveCount });
  const bus = new MemoryEventBus({
    onError: (error, event) => logger.error("event delivery failed", { eventId: event.id, error }),
  });
  const registry: AgentRegistry = infra?.registry ?? new MemoryAgentRegistry();
  const jobStore: JobStore = infra ? emulatedJobStore(infra, config) : new MemoryJobStore();
  const platform = withMaintenance(
    createPlatform(
      {
        taskStore: store,
        taskQueue: queue,
        eventPublisher: bus,
        // On Azure, agent messages travel on the Service Bus topic; task events stay on the in-process bus.
        ...(azure ? { messagePublisher: azure.messagingBus } : {}),
        eventSubscriber: azure?.messagingBus ?? bus,
        agentRegistry: registry,
        jobStore,
      },
      config,
      logger,
      // Every lifecycle event goes on the in-process bus, where it costs nothing.
      { reducers: options.reducers ?? [], taskEvents: "all" },
    ),
  );
  const { supervisor, sweeper, agents, agentLiveness, messaging, jobs, aggregator, taskStream } = platform;
  // The HTTP server first: if its port is taken, nothing else has started yet. The local dashboard,
  // when there is one, is served next to the API through `serveApi`'s `pages`.
  const app = createApiApp({ routes: apiRoutes(platform), logger });
  const record = options.onInvocation;
  // The cost bench meters each request as one invocation of the API function.
  const served = record
    ? {
        fetch: (request: Request) =>
          meteredInvocation("supervisor-api", record, async () => app.fetch(request)),
      }
    : app;
  const server = await serveApi(served, {
    port: options.port ?? 3000,
    host: options.host ?? "127.0.0.1",
    pages: (request) => {
      if (request.method !== "GET") return undefined;
      const page = dashboardResponse(new URL(request.url).pathname);
      return page && new Response(page.body, { status: page.status, headers: page.headers });
    },
  });

  // What follows a committed task write (ADR 0007): job fan-in, statistics, and lifecycle events, fed
  // by the memory store's change feed, or by a poller over DynamoDB Local's stream as Lambda's event
  // source would.
  const stopChanges = memoryStore?.onChanges((changes) => taskStream.process(changes));
  const streamPoller = infra
    ? await startEmulatedTaskStream(infra, taskStream, {
        logger: scoped(logger, "task-stream"),
        ...(options.onInvocation ? { onInvocation: options.onInvocation } : {}),
      })
    : undefined;

  const workers = options.workers ?? registeredWorkers;
  const agentIds = workers.map((worker) => `${worker.agentType}-${randomUUID().slice(0, 8)}`);
  // Service Bus entities exist before use: each registered poller's inbox queue is created first.
  for (const agentId of azure ? agentIds : []) await azure?.addAgentInbox(agentId);
  const pollers: RunningPoller[] = infra
    ? []
    : workers.map((worker, index) =>
        startPoller(worker, {
          store,
          queue,
          config,
          logger: scoped(logger, worker.agentType),
          agentId: agentIds[index] as string,
          waitSeconds: 1,
          registry,
          cancelCheckIntervalMs: options.cancelCheckIntervalMs ?? 200,
        }),
      );
  const eventSources = infra
    ? await startEmulatedLambdaWorkers(infra, workers, {
        config,
        logger: (agentType) => scoped(logger, agentType),
        ...(options.onInvocation ? { onInvocation: options.onInvocation } : {}),
      })
    : [];

  // Each sweep runs again one interval after its previous run ended, never on top of it; stopping
  // waits for the runs in progress (one cut off by stopping DynamoDB Local would fail for nothing).
  const sweepIntervalMs = options.sweepIntervalMs ?? 1_000;
  const sweeping = (
    [
      [() => sweeper.sweep(), "sweep failed"],
      [() => aggregator.advanceDueJobs(new Date()), "job sweep failed"],
      [() => agentLiveness.sweep(), "agent sweep failed"],
    ] as const
  ).map(([run, failure]) => repeat(run, sweepIntervalMs, (error) => logger.error(failure, { error })));

  return {
    url: server.url,
    mode,
    ...(infra
      ? {
          requests: infra.requests,
          capacity: infra.capacity,
          emulated: {
            dynamoEndpoint: infra.emulators.dynamoEndpoint,
            sqsEndpoint: infra.emulators.sqsEndpoint,
            resources: infra.resources,
          },
        }
      : {}),
    store,
    queue,
    bus,
    supervisor,
    sweeper,
    registry,
    agents,
    agentLiveness,
    messaging,
    jobStore,
    jobs,
    aggregator,
    taskStream,
    async stop() {
      await server.close();
      await Promise.all(sweeping.map((loop) => loop.stop()));
      await Promise.all([...pollers, ...eventSources].map((p) => p.stop()));
      await memoryStore?.idle();
      stopChanges?.();
      await streamPoller?.stop();
      await bus.idle();
      await infra?.stop();
      await azure?.stop();
    },
  };
}

function scoped(logger: Logger, scope: string): Logger {
  const add = (extra?: Record<string, unknown>) => ({ agent: scope, ...extra });
  return {
    debug: (m, e) => logger.debug(m, add(e)),
    info: (m, e) => logger.info(m, add(e)),
    warn: (m, e) => logger.warn(m, add(e)),
    error: (m, e) => logger.error(m, add(e)),
  };
}

function emulatedJobStore(infra: EmulatedInfrastructure, config: PlatformConfig): JobStore {
  return new DynamoJobStore({
    client: infra.dynamodb,
    tableName: infra.resources.tableName,
    shards: config.shards,
  });
}
