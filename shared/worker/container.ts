import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { Logger as PowertoolsLogger } from "@aws-lambda-powertools/logger";
import * as z from "zod";
import { type AwsAdapters, ConfigurationError, createAwsAdapters } from "#shared/adapters/aws/clients";
import { loadPlatformConfig, type PlatformConfig, pollerLeaseSeconds } from "#shared/config/platform";
import type { Logger } from "#shared/ports/logger";
import { defineWorker, type WorkerDefinition } from "./define-worker.ts";
import { type PollerHealth, type RunningPoller, startPoller } from "./poller.ts";

type Env = Readonly<Record<string, string | undefined>>;

const optionalInt = (min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((value) => (value === undefined || value === "" ? undefined : Number(value)))
    .pipe(z.int().min(min).max(max).optional());

/** Longest the start-up waits for the first registration before it reports "started" anyway. */
const REGISTRATION_WAIT_MS = 10_000;
/**
 * The container worker's own environment, on top of the AWS adapters' (`TABLE_NAME`, `QUEUE_URLS`, …)
 * and `PLATFORM_CONFIG`. The Fargate construct sets all of it.
 */
export const ContainerWorkerEnvironmentSchema = z.object({
  /** Comma-separated capabilities to consume; each must be one the worker serves. @default all of them */
  CAPABILITIES: z
    .string()
    .optional()
    .transform((value) =>
      value === undefined || value.trim() === ""
        ? undefined
        : value
            .split(",")
            .map((c) => c.trim())
            .filter((c) => c.length > 0),
    ),
  /** Tasks one container runs at once. @default the worker's maxConcurrentTasks */
  WORKER_CONCURRENCY: optionalInt(1, 1000),
  /** The lease renewed while a task runs. @default the config's pollerLeaseSeconds */
  LEASE_SECONDS: optionalInt(3, 43_200),
  /** How long running tasks may finish after SIGTERM before they are released. @default 20 */
  DRAIN_SECONDS: optionalInt(0, 3600),
  /** Long-poll wait. @default 20 (SQS's maximum) */
  POLL_WAIT_SECONDS: optionalInt(0, 20),
  /** Port of the health endpoint on 127.0.0.1 (0 picks a free one). @default 8080 */
  HEALTH_PORT: optionalInt(0, 65_535),
  /** The agent id in the registry. @default `<agentType>-<host>-<random>`, unique per container */
  AGENT_ID: z.string().min(1).max(256).optional(),
});
export type ContainerWorkerEnvironment = z.infer<typeof ContainerWorkerEnvironmentSchema>;

/** The health endpoint answers 503 once the receive loop has not gone round for this long. */
const STALL_MARGIN_MS = 60_000;

export interface ContainerWorkerOptions {
  /** @default process.env */
  readonly env?: Env;
  /** @default built from the environment */
  readonly adapters?: AwsAdapters;
  /** @default loadPlatformConfig(env) */
  readonly config?: PlatformConfig;
  /** @default a Powertools JSON logger */
  readonly logger?: Logger;
}

export interface RunningContainerWorker {
  readonly agentId: string;
  readonly poller: RunningPoller;
  /** `http://127.0.0.1:<port>/health` */
  readonly healthUrl: string;
  /** Stops receiving, drains for DRAIN_SECONDS, releases the rest, unregisters, closes the health server. */
  shutdown(): Promise<void>;
}

/**
 * Starts a worker definition as a long-running container worker (ECS Fargate): the AWS adapters from
 * the environment, `startPoller` on the capabilities in `CAPABILITIES` with SQS long polling, bounded
 * concurrency, renewed leases, backoff, registry presence with heartbeats (no inbox), and an HTTP
 * health endpoint the container's health check calls.
 *
 * @example
 * const worker = await startContainerWorker(researchWorker);
 * process.once("SIGTERM", () => void worker.shutdown());
 */
export async function startContainerWorker(
  worker: WorkerDefinition,
  options: ContainerWorkerOptions = {},
): Promise<RunningContainerWorker> {
  const env = options.env ?? process.env;
  const parsed = ContainerWorkerEnvironmentSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigurationError(
      `invalid environment for the container worker:\n${z.prettifyError(parsed.error)}`,
      parsed.error,
    );
  }
  const settings = parsed.data;
  const capabilities = settings.CAPABILITIES ?? worker.capabilities;
  const unknown = capabilities.filter((c) => !worker.capabilities.includes(c));
  if (unknown.length > 0) {
    throw new ConfigurationError(
      `CAPABILITIES names ${unknown.join(", ")}, which worker "${worker.agentType}" does not serve (it serves ${worker.capabilities.join(", ")})`,
    );
  }
  const adapters = options.adapters ?? createAwsAdapters({ env });
  const config = options.config ?? loadPlatformConfig(env);
  const logger =
    options.logger ?? new PowertoolsLogger({ serviceName: env.POWERTOOLS_SERVICE_NAME ?? worker.agentType });
  const agentId =
    settings.AGENT_ID ?? `${worker.agentType}-${hostname().slice(0, 64)}-${randomUUID().slice(0, 8)}`;
  const waitSeconds = settings.POLL_WAIT_SECONDS ?? 20;
  const drainMs = (settings.DRAIN_SECONDS ?? 20) * 1000;

  const poller = startPoller(defineWorker({ ...worker, capabilities }), {
    store: adapters.taskStore,
    queue: adapters.taskQueue,
    config,
    logger,
    agentId,
    waitSeconds,
    registry: adapters.agentRegistry,
    inbox: false,
    leaseSeconds: settings.LEASE_SECONDS ?? pollerLeaseSeconds(config),
    ...(settings.WORKER_CONCURRENCY === undefined ? {} : { concurrency: settings.WORKER_CONCURRENCY }),
  });
  let server: Server;
  try {
    server = await serveHealth(settings.HEALTH_PORT ?? 8080, () => poller.health(), waitSeconds);
  } catch (error) {
    await poller.stop();
    throw error;
  }
  const { port } = server.address() as { port: number };
  // "Started" means findable in the registry, unless the registry is down: then start anyway (the
  // presence keeps retrying in the background) rather than hold a task-ready worker back.
  await Promise.race([poller.registered, sleep(REGISTRATION_WAIT_MS, undefined, { ref: false })]);
  logger.info("container worker started", { agentId, capabilities, port });

  let stopped: Promise<void> | undefined;
  return {
    agentId,
    poller,
    healthUrl: `http://127.0.0.1:${port}/health`,
    shutdown() {
      stopped ??= (async () => {
        logger.info("stopping: no more receives; draining running tasks", {
          agentId,
          runningTasks: poller.health().runningTasks,
          drainMs,
        });
        await poller.stop({ drainMs });
        await new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        logger.info("stopped", { agentId });
      })();
      return stopped;
    },
  };
}

/** Whether the poller is well: receiving, and its loop went round recently. */
export function isHealthy(health: PollerHealth, waitSeconds: number, now = Date.now()): boolean {
  return (
    health.state === "receiving" && now - health.lastLoopAt.getTime() < waitSeconds * 1000 + STALL_MARGIN_MS
  );
}

function serveHealth(port: number, read: () => PollerHealth, waitSeconds: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/health") {
      res.writeHead(404).end();
      return;
    }
    const health = read();
    res
      .writeHead(isHealthy(health, waitSeconds) ? 200 : 503, { "content-type": "application/json" })
      .end(JSON.stringify({ ...health, lastLoopAt: health.lastLoopAt.toISOString() }));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

/**
 * The container entry's one call: starts the worker, and on SIGTERM (ECS stopping the task: a deploy,
 * a scale-in) or SIGINT shuts it down and exits 0. A worker that cannot start exits 1 with the reason.
 *
 * @example
 * // functions/containers/worker.ts
 * runContainerWorker(researchWorker);
 */
export function runContainerWorker(worker: WorkerDefinition, options: ContainerWorkerOptions = {}): void {
  const fail = (what: string) => (error: unknown) => {
    console.error(
      JSON.stringify({
        level: "ERROR",
        message: what,
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      }),
    );
    process.exit(1);
  };
  const started = startContainerWorker(worker, options);
  // Installed at once: a SIGTERM during start-up still shuts down cleanly once started.
  const stop = () => {
    started.then((running) => running.shutdown()).then(() => process.exit(0), fail("shutdown failed"));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  started.catch(fail("container worker could not start"));
}
