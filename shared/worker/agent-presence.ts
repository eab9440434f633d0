import type { PlatformConfig } from "#shared/config/platform";
import { INBOX_METADATA_KEY } from "#shared/core/agents/agent-selector";
import { AgentService } from "#shared/core/agents/agent-service";
import { agentInboxQueue } from "#shared/core/routing";
import type { AgentCapabilities } from "#shared/domain/agent";
import { NotFoundError } from "#shared/domain/errors";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import type { Clock } from "#shared/ports/clock";
import type { Logger } from "#shared/ports/logger";
import type { TaskStore } from "#shared/ports/task-store";
import type { WorkerDefinition } from "./define-worker.ts";

export interface AgentPresenceOptions {
  readonly registry: AgentRegistry;
  readonly store: TaskStore;
  readonly config: Pick<PlatformConfig, "agentStalenessSeconds">;
  readonly logger: Logger;
  readonly agentId: string;
  /** @default a third of `config.agentStalenessSeconds`, so one lost heartbeat never makes it stale */
  readonly heartbeatIntervalMs?: number;
  /** Declare the agent's task inbox (`agent-<agentId>`), so tasks that prefer it are routed to it. @default true */
  readonly inbox?: boolean;
  readonly clock?: Clock;
}

/** A running agent's presence in the registry. */
export interface AgentPresence {
  readonly agentId: string;
  /** Resolves once the first registration succeeded (it is retried on every heartbeat until then). */
  readonly registered: Promise<void>;
  /** Worker-pool bookkeeping: count a task this agent started / finished. Never throws. */
  taskStarted(): Promise<void>;
  taskFinished(): Promise<void>;
  /** Stops heartbeating and unregisters the agent. */
  stop(): Promise<void>;
}

/**
 * What the registry says about a worker: its capabilities are its tools (the queues it consumes), its
 * task types are its intents, so a capability query finds it by either.
 *
 * @example
 * agentCapabilitiesOf(textAnalysisWorker);
 * // { supportedTools: ["text-analysis"], supportedIntents: ["analyze_text"], maxConcurrentTasks: 8, metadata: {} }
 */
export function agentCapabilitiesOf(
  worker: WorkerDefinition,
  metadata: AgentCapabilities["metadata"] = {},
): AgentCapabilities {
  return {
    supportedTools: [...worker.capabilities],
    supportedIntents: Object.keys(worker.handlers),
    maxConcurrentTasks: worker.maxConcurrentTasks,
    metadata,
  };
}

/**
 * Keeps a long-running worker registered while it runs: registers it at once (as `available`, with its
 * inbox), heartbeats every interval (registering again if the registry forgot it, e.g. after
 * `DELETE /agents/{id}` or a registry restart), counts its running tasks, and unregisters it on stop.
 * Registry failures are logged and never stop the worker: tasks still flow through the capability queues.
 *
 * `startPoller` starts one when given a `registry`.
 *
 * @example
 * const presence = startAgentPresence(diagnosticsWorker, { registry, store, config, logger, agentId: "diag-1" });
 * await presence.registered;
 * // later
 * await presence.stop();
 */
export function startAgentPresence(worker: WorkerDefinition, options: AgentPresenceOptions): AgentPresence {
  const { agentId, logger } = options;
  const agents = new AgentService({
    registry: options.registry,
    store: options.store,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const metadata: AgentCapabilities["metadata"] = {
    runtime: "poller",
    ...(options.inbox === false ? {} : { [INBOX_METADATA_KEY]: agentInboxQueue(agentId) }),
  };
  const register = () =>
    agents.register({
      agentId,
      agentType: worker.agentType,
      capabilities: agentCapabilitiesOf(worker, metadata),
    });
  const warn = (message: string) => (error: unknown) => logger.warn(message, { agentId, error });

  let stopped = false;
  let markRegistered: () => void = () => {};
  const registered = new Promise<void>((resolve) => {
    markRegistered = resolve;
  });
  let isRegistered = false;
  const ensureRegistered = async () => {
    await register();
    isRegistered = true;
    markRegistered();
  };
  let pending: Promise<void> = ensureRegistered().catch(warn("agent registration failed; retrying"));

  const beat = async () => {
    if (!isRegistered) return ensureRegistered();
    try {
      await agents.heartbeat(agentId, { includeCancelRequests: false });
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      await ensureRegistered();
    }
  };
  const intervalMs =
    options.heartbeatIntervalMs ??
    Math.max(100, Math.floor((options.config.agentStalenessSeconds * 1000) / 3));
  const timer = setInterval(() => {
    // One heartbeat at a time: a slow registry must not pile them up.
    pending = pending.then(() => (stopped ? undefined : beat().catch(warn("agent heartbeat failed"))));
  }, intervalMs);
  // Presence alone must not keep a process alive.
  timer.unref?.();

  return {
    agentId,
    registered,
    taskStarted: () => agents.taskStarted(agentId).catch(warn("could not count the task start")),
    taskFinished: () => agents.taskFinished(agentId).catch(warn("could not count the task end")),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await pending;
      await options.registry.unregister(agentId).catch(warn("could not unregister the agent"));
    },
  };
}

export interface LambdaAgentPresenceOptions {
  readonly registry: AgentRegistry;
  readonly store: TaskStore;
  readonly config: Pick<PlatformConfig, "agentStalenessSeconds">;
  readonly logger: Logger;
  /** @default `lambda:<agentType>` - one agent per worker function, whatever its concurrency */
  readonly agentId?: string;
  /** Heartbeats at most this often, on invocations. @default a third of `config.agentStalenessSeconds` */
  readonly heartbeatIntervalMs?: number;
  readonly clock?: Clock;
}

/**
 * Registry presence for a Lambda worker: one agent per function (`lambda:<agentType>`), registered on
 * the cold start and heartbeating on invocations at most once per interval. It declares no inbox (the
 * function consumes its capability queues only), so routing never sends it a task directly. A function
 * that stays idle longer than the staleness threshold shows as `unavailable` until its next invocation,
 * which is the truth: no instance is warm.
 *
 * @example
 * const presence = lambdaAgentPresence(translator, { registry, store, config, logger });
 * export const handler = async (event: SQSEvent, context: Context) => {
 *   await presence.touch();
 *   return batchHandler(event, context);
 * };
 */
export function lambdaAgentPresence(
  worker: WorkerDefinition,
  options: LambdaAgentPresenceOptions,
): { readonly agentId: string; touch(): Promise<void> } {
  const agentId = options.agentId ?? `lambda:${worker.agentType}`;
  const agents = new AgentService({
    registry: options.registry,
    store: options.store,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const now = () => (options.clock ?? { now: () => new Date() }).now().getTime();
  const intervalMs =
    options.heartbeatIntervalMs ??
    Math.max(100, Math.floor((options.config.agentStalenessSeconds * 1000) / 3));
  let lastTouchMs: number | undefined;
  const register = () =>
    agents.register({
      agentId,
      agentType: worker.agentType,
      capabilities: agentCapabilitiesOf(worker, { runtime: "lambda" }),
    });
  return {
    agentId,
    async touch() {
      const at = now();
      if (lastTouchMs !== undefined && at - lastTouchMs < intervalMs) return;
      try {
        if (lastTouchMs === undefined) await register();
        else {
          await agents.heartbeat(agentId, { includeCancelRequests: false }).catch(async (error: unknown) => {
            if (!(error instanceof NotFoundError)) throw error;
            await register();
          });
        }
        lastTouchMs = at;
      } catch (error) {
        // Presence is bookkeeping: a registry outage must not fail a batch of tasks.
        options.logger.warn("agent presence update failed", {
          agentId,
          error,
        });
      }
    },
  };
}
