import { setTimeout as sleep } from "node:timers/promises";
import type { PlatformConfig } from "#shared/config/platform";
import { queuesForCapability } from "#shared/config/platform";
import { Dispatcher, type DispatcherDeps } from "#shared/core/dispatcher";
import { agentInboxQueue } from "#shared/core/routing";
import { ValidationError } from "#shared/domain/errors";
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
  /**
   * With a registry: declare and consume the agent's own task inbox (`agent-<agentId>`). A deployed
   * poller has no queue of its own and consumes its capability queues only. @default true
   */
  readonly inbox?: boolean;
  /** Most tasks this instance runs at once. @default the worker's `maxConcurrentTasks` */
  readonly concurrency?: number;
  /**
   * The lease a received message and a claimed task are held for, renewed every third of it while the
   * handler runs (ChangeMessageVisibility and the task's lease): a crashed poller's tasks are taken
   * over after at most this. @default - the task's timeout + leaseGraceSeconds, not renewed
   */
  readonly leaseSeconds?: number;
  /** Backoff after failed receives (throttling, outages) and idle rounds: full jitter, doubling. */
  readonly backoff?: PollerBackoff;
  /** @default Math.random */
  readonly random?: () => number;
}

export interface PollerBackoff {
  /** First delay after a failed receive. @default 200 */
  readonly errorBaseMs?: number;
  /** @default 20_000 */
  readonly errorMaxMs?: number;
  /**
   * Ceiling of the pause after consecutive empty receive rounds (100 ms, doubling), counting the time
   * the receive itself waited: an honoured long poll adds nothing, while an empty answer that comes
   * back early (an endpoint that does not long-poll, a short wait) no longer spins the loop.
   * @default waitSeconds × 1000
   */
  readonly idleMaxMs?: number;
}

export interface PollerStopOptions {
  /**
   * How long running tasks may take to finish; the ones still running then are released: their
   * handlers are aborted, their leases ended and their messages made visible, so another poller
   * takes them over at once. @default - wait for every task to finish
   */
  readonly drainMs?: number;
}

/** What a running poller reports to its health check. */
export interface PollerHealth {
  /** `receiving`, `draining` (stop called), or `stopped`. */
  readonly state: "receiving" | "draining" | "stopped";
  readonly runningTasks: number;
  /** When the receive loop last went round (a receive returned or failed). */
  readonly lastLoopAt: Date;
  /** Receives that failed in a row (0 once one succeeds). */
  readonly consecutiveReceiveFailures: number;
}

export interface RunningPoller {
  readonly agentId: string;
  /** Settles once the agent is first registered (at once without a registry); retries never reject it. */
  readonly registered: Promise<void>;
  health(): PollerHealth;
  /** Stops receiving, lets running tasks finish (or releases them after `drainMs`), unregisters. */
  stop(options?: PollerStopOptions): Promise<void>;
}

/**
 * Runs a worker as a long-lived poller: receives from each capability's high tier first (long
 * polling on the last queue), runs up to `concurrency` tasks at once, keeps the leases of running
 * tasks alive (with `leaseSeconds`), backs off on failed and empty receives, and settles every
 * message. Used in process by `npm start` and as the ECS Fargate worker's main loop
 * (`runContainerWorker`).
 *
 * @example
 * const poller = startPoller(diagnosticsWorker, { store, queue, config, logger, agentId: "diag-1" });
 * // later: let running tasks finish for up to 25 s, release the rest
 * await poller.stop({ drainMs: 25_000 });
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
          ...(options.inbox === false ? { inbox: false } : {}),
        });
  const onTaskStart = chainHooks(presence && (() => presence.taskStarted()), options.onTaskStart);
  const onTaskEnd = chainHooks(presence && (() => presence.taskFinished()), options.onTaskEnd);
  const dispatcher = new Dispatcher(
    {
      store: options.store,
      config: options.config,
      agentId: options.agentId,
      logger: options.logger,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.cancelCheckIntervalMs ? { cancelCheckIntervalMs: options.cancelCheckIntervalMs } : {}),
      ...(options.leaseSeconds !== undefined ? { leaseSeconds: options.leaseSeconds } : {}),
      ...(onTaskStart ? { onTaskStart } : {}),
      ...(onTaskEnd ? { onTaskEnd } : {}),
    },
    worker.handlers,
  );
  const queues = [
    // A registered agent's own inbox comes first: those tasks were routed to this agent only.
    ...(presence && options.inbox !== false ? [agentInboxQueue(options.agentId)] : []),
    ...worker.capabilities.flatMap((c) => queuesForCapability(c)),
  ];
  const concurrency = options.concurrency ?? worker.maxConcurrentTasks;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ValidationError(`poller concurrency must be a positive integer, got ${concurrency}`);
  }
  if (options.leaseSeconds !== undefined && !(options.leaseSeconds >= 3 && options.leaseSeconds <= 43_200)) {
    throw new ValidationError(`leaseSeconds must be between 3 and 43200, got ${options.leaseSeconds}`);
  }
  const visibilitySeconds =
    options.leaseSeconds ?? options.config.defaultTimeoutSeconds + options.config.leaseGraceSeconds;
  const waitSeconds = options.waitSeconds ?? 20;
  const random = options.random ?? Math.random;
  const errorBaseMs = options.backoff?.errorBaseMs ?? 200;
  const errorMaxMs = options.backoff?.errorMaxMs ?? 20_000;
  const idleMaxMs = options.backoff?.idleMaxMs ?? waitSeconds * 1000;
  const stopping = new AbortController();
  const release = new AbortController();
  const running = new Set<Promise<void>>();
  let slotFreed: (() => void) | undefined;
  let state: PollerHealth["state"] = "receiving";
  let lastLoopAt = new Date();
  let receiveFailures = 0;
  let emptyRounds = 0;

  const runOne = (message: ReceivedTaskMessage) => {
    const work = (async () => {
      try {
        const settlement = await dispatcher.process(message, {
          extendMessageLease: async (seconds) => {
            if (options.leaseSeconds !== undefined || seconds > visibilitySeconds)
              await options.queue.extendLease(message, seconds);
          },
          release: release.signal,
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

  /** Sleeps, unless the poller stops first. */
  const pause = (ms: number) =>
    ms <= 0 ? Promise.resolve() : sleep(ms, undefined, { signal: stopping.signal }).catch(() => undefined);

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      const free = concurrency - running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
        });
        continue;
      }
      const startedMs = Date.now();
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
          if (received.length > 0 || stopping.signal.aborted) break;
        }
        lastLoopAt = new Date();
        receiveFailures = 0;
        if (stopping.signal.aborted) {
          // Received as the stop came: hand them back at once rather than start them.
          await Promise.allSettled(received.map((m) => options.queue.release(m, 0)));
          break;
        }
        for (const message of received) runOne(message);
        emptyRounds = received.length > 0 ? 0 : emptyRounds + 1;
        if (emptyRounds > 1) {
          const ceiling = Math.min(idleMaxMs, 100 * 2 ** Math.min(emptyRounds - 2, 16));
          await pause(ceiling - (Date.now() - startedMs));
        }
      } catch (error) {
        lastLoopAt = new Date();
        if (stopping.signal.aborted) break;
        receiveFailures++;
        const delayMs = Math.round(
          Math.min(errorMaxMs, errorBaseMs * 2 ** Math.min(receiveFailures - 1, 16)) * random(),
        );
        options.logger.warn(
          isThrottling(error) ? "receive throttled; backing off" : "receive failed; backing off",
          {
            error,
            consecutiveFailures: receiveFailures,
            delayMs,
          },
        );
        await pause(delayMs);
      }
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    agentId: options.agentId,
    registered: presence?.registered ?? Promise.resolve(),
    health: () => ({
      state,
      runningTasks: running.size,
      lastLoopAt,
      consecutiveReceiveFailures: receiveFailures,
    }),
    stop(stopOptions = {}) {
      stopped ??= (async () => {
        state = "draining";
        stopping.abort();
        slotFreed?.();
        await loop;
        const all = Promise.allSettled([...running]);
        if (stopOptions.drainMs !== undefined && running.size > 0) {
          const timer = new AbortController();
          const finished = await Promise.race([
            all.then(() => true),
            sleep(Math.max(0, stopOptions.drainMs), false, { signal: timer.signal }),
          ]);
          timer.abort();
          if (!finished) {
            options.logger.warn("releasing tasks that could not finish before the stop timeout", {
              runningTasks: running.size,
            });
            release.abort();
          }
        }
        await all;
        await presence?.stop();
        state = "stopped";
      })();
      return stopped;
    },
  };
}

/** SQS (and most AWS services) say "slow down" with one of these error names, or HTTP 429. */
function isThrottling(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === 429 || /throttl|RequestLimitExceeded|TooManyRequests|SlowDown/i.test(error.name);
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
