import type { PlatformConfig } from "#shared/config/platform";
import { queuesForCapability } from "#shared/config/platform";
import { Dispatcher, type DispatcherDeps } from "#shared/core/dispatcher";
import type { EventRelay } from "#shared/core/event-relay";
import { agentInboxQueue } from "#shared/core/routing";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import type { Clock } from "#shared/ports/clock";
import type { Logger } from "#shared/ports/logger";
import type { ReceivedTaskMessage, TaskQueue } from "#shared/ports/task-queue";
import type { TaskStore } from "#shared/ports/task-store";
import { type AgentPresence, startAgentPresence } from "./agent-presence.ts";
import type { WorkerDefinition } from "./define-worker.ts";
import { settleMessage } from "./settle.ts";

export interface PollerOptions {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  readonly relay: EventRelay;
  readonly config: PlatformConfig;
  readonly logger: Logger;
  /** Unique per running instance. */
  readonly agentId: string;
  /** Long-poll wait on an empty queue (20 on SQS; short for the embedded queue). */
  readonly waitSeconds?: number;
  readonly cancelCheckIntervalMs?: number;
  readonly clock?: Clock;
  readonly onTaskStart?: DispatcherDeps["onTaskStart"];
  readonly onTaskEnd?: DispatcherDeps["onTaskEnd"];
  /**
   * Registers the worker as an agent while it runs (heartbeats, running task count, unregistered on
   * stop) and consumes its own inbox (`agent-<agentId>`) before its capability queues.
   * @default - not registered
   */
  readonly registry?: AgentRegistry;
  /** @default a third of `config.agentStalenessSeconds` */
  readonly heartbeatIntervalMs?: number;
}

export interface RunningPoller {
  readonly agentId: string;
  /** Stops receiving, lets running tasks finish, and resolves when they have. */
  stop(): Promise<void>;
}

/**
 * Runs a worker as a long-lived poller: receives from each capability's high tier first, runs up to
 * `maxConcurrentTasks` tasks at once, and settles every message. Used in process by `npm start` and
 * as the ECS Fargate worker's main loop.
 *
 * @example
 * const poller = startPoller(diagnosticsWorker, { store, queue, relay, config, logger, agentId: "diag-1" });
 * // later
 * await poller.stop();
 */
export function startPoller(worker: WorkerDefinition, options: PollerOptions): RunningPoller {
  const presence: AgentPresence | undefined =
    options.registry === undefined
      ? undefined
      : startAgentPresence(worker, {
          registry: options.registry,
          store: options.store,
          config: options.config,
          logger: options.logger,
          agentId: options.agentId,
          ...(options.heartbeatIntervalMs !== undefined
            ? { heartbeatIntervalMs: options.heartbeatIntervalMs }
            : {}),
          ...(options.clock ? { clock: options.clock } : {}),
        });
  const onTaskStart = chainHooks(presence && (() => presence.taskStarted()), options.onTaskStart);
  const onTaskEnd = chainHooks(presence && (() => presence.taskFinished()), options.onTaskEnd);
  const dispatcher = new Dispatcher(
    {
      store: options.store,
      relay: options.relay,
      config: options.config,
      agentId: options.agentId,
      logger: options.logger,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.cancelCheckIntervalMs ? { cancelCheckIntervalMs: options.cancelCheckIntervalMs } : {}),
      ...(onTaskStart ? { onTaskStart } : {}),
      ...(onTaskEnd ? { onTaskEnd } : {}),
    },
    worker.handlers,
  );
  const queues = [
    // A registered agent's own inbox comes first: those tasks were routed to this agent only.
    ...(presence ? [agentInboxQueue(options.agentId)] : []),
    ...worker.capabilities.flatMap((c) => queuesForCapability(c)),
  ];
  const visibilitySeconds = options.config.defaultTimeoutSeconds + options.config.leaseGraceSeconds;
  const waitSeconds = options.waitSeconds ?? 20;
  const stopping = new AbortController();
  const running = new Set<Promise<void>>();
  let slotFreed: (() => void) | undefined;

  const runOne = (message: ReceivedTaskMessage) => {
    const work = (async () => {
      try {
        const settlement = await dispatcher.process(message, {
          extendMessageLease: async (seconds) => {
            if (seconds > visibilitySeconds) await options.queue.extendLease(message, seconds);
          },
        });
        await settleMessage(options.queue, message, settlement);
      } catch (error) {
        // The message becomes visible again after its lease; the store's guards make the rerun safe.
        options.logger.error("task message failed; it will be redelivered", {
          messageId: message.messageId,
          error,
        });
      }
    })();
    running.add(work);
    void work.finally(() => {
      running.delete(work);
      slotFreed?.();
    });
  };

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      const free = worker.maxConcurrentTasks - running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
        });
        continue;
      }
      try {
        let received: readonly ReceivedTaskMessage[] = [];
        // Drain higher tiers first; wait (long poll) only on the last queue.
        for (const [index, queue] of queues.entries()) {
          const last = index === queues.length - 1;
          received = await options.queue.receive(queue, {
            maxMessages: Math.min(10, free),
            waitSeconds: last ? waitSeconds : 0,
            visibilitySeconds,
            signal: stopping.signal,
          });
          if (received.length > 0) break;
        }
        for (const message of received) runOne(message);
      } catch (error) {
        if (stopping.signal.aborted) break;
        options.logger.error("receive failed; backing off", {
          error,
        });
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  })();

  return {
    agentId: options.agentId,
    async stop() {
      stopping.abort();
      slotFreed?.();
      await loop;
      await Promise.allSettled([...running]);
      await presence?.stop();
    },
  };
}

/** Runs the registry bookkeeping hook, then the caller's own. */
function chainHooks(
  first: (() => Promise<void>) | undefined,
  second: DispatcherDeps["onTaskStart"],
): DispatcherDeps["onTaskStart"] {
  if (first === undefined) return second;
  return async (task) => {
    await first();
    await second?.(task);
  };
}
