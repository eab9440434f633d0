import { randomUUID } from "node:crypto";
import * as z from "zod";
import type { PlatformConfig } from "#shared/config/platform";
import { NonRetryableError } from "#shared/domain/errors";
import { isTerminal } from "#shared/domain/lifecycle";
import { prepareOutput, type Task, type TaskError, type TaskStatus } from "#shared/domain/task";
import {
  claimWrite,
  extendLeaseWrite,
  finishWrite,
  retryWrite,
  type TaskPatch,
  type TaskWrite,
} from "#shared/domain/transitions";
import { type Clock, systemClock } from "#shared/ports/clock";
import type { Logger } from "#shared/ports/logger";
import type { ReceivedTaskMessage } from "#shared/ports/task-queue";
import type { TaskStore } from "#shared/ports/task-store";
import { retryDelaySeconds } from "./backoff.ts";

/** What a task handler gets besides its input. */
export interface TaskContext {
  readonly taskId: string;
  readonly taskType: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  /** Fires when the task is canceled, times out, or this worker lost its lease. `reason` says which. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly metadata: Readonly<Record<string, string>>;
  /** Extends this worker's lease on the task (and its message); throws if the lease is lost. */
  heartbeat(): Promise<void>;
}

export type TaskHandler = (input: unknown, context: TaskContext) => Promise<unknown> | unknown;

/** What to do with the delivery that carried the task. */
export type Settlement =
  /** Delete it: the task was handled, or there is nothing left to do for it. */
  | { readonly kind: "ack"; readonly reason: string }
  /** Delete it and send a new message for the next attempt after `delaySeconds`. */
  | { readonly kind: "retry"; readonly delaySeconds: number; readonly attempt: number }
  /** Leave it: make it visible again after `delaySeconds` (another worker holds the task now). */
  | { readonly kind: "release"; readonly delaySeconds: number; readonly reason: string }
  /** Move it to the dead-letter queue with a reason. */
  | { readonly kind: "dead-letter"; readonly reason: string };

export interface ProcessOptions {
  /** Keeps the delivery invisible for `seconds` from now (called after a claim and on heartbeats). */
  readonly extendMessageLease?: (seconds: number) => Promise<void>;
  /** Epoch ms by which the handler must be done (a Lambda invocation's deadline). */
  readonly deadlineMs?: number;
  /**
   * Fires when the worker must give the task up (a poller shutting down): the handler is aborted,
   * the lease is ended at once so another worker can take the task over, and the settlement is a
   * `release` with no delay. The interrupted attempt counts, as a crash's would.
   */
  readonly release?: AbortSignal;
}

export interface DispatcherDeps {
  readonly store: TaskStore;
  readonly config: PlatformConfig;
  /** The agent id recorded as `workerAgentId` on the tasks this dispatcher runs. */
  readonly agentId: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** How often a running task's record is read to notice a cancel request or a lost lease. */
  readonly cancelCheckIntervalMs?: number;
  /**
   * A long-running poller's lease: a claim holds the task (and its message) this long, renewed every
   * third of it while the handler runs, so a crashed worker's task is taken over after at most this,
   * not after its whole timeout. @default - the task's timeout + leaseGraceSeconds, never renewed
   */
  readonly leaseSeconds?: number;
  /** Called when this worker starts and finishes running a task (worker-pool bookkeeping). */
  readonly onTaskStart?: (task: Task) => Promise<void> | void;
  readonly onTaskEnd?: (task: Task) => Promise<void> | void;
}

const MessageBodySchema = z.object({ taskId: z.string().min(1), attempt: z.int().positive() });
const MAX_RELEASE_SECONDS = 900;
/** Time kept back from a Lambda invocation's deadline to record the outcome. */
const DEADLINE_SAFETY_MS = 1_000;
/** A task is not started with less than this left before the invocation's deadline. */
const MIN_RUN_MS = 1_000;
/** Times a lease holder's write is rebuilt on a task whose version moved under it. */
const LEASED_WRITE_ROUNDS = 5;

class AbortReason extends Error {
  constructor(
    readonly kind: "canceled" | "timeout" | "lease_lost" | "released",
    message: string,
  ) {
    super(message);
    this.name = "AbortReason";
  }
}

/**
 * The worker runtime's core: claims the task a message points at, runs its handler with an
 * AbortSignal and a timeout, records exactly one outcome with a write guarded by the lease, and says
 * how to settle the message. Duplicate, late and stale deliveries end in a no-op. Each step is one
 * conditional write built by `shared/domain/transitions.ts`; its event and statistics follow from the
 * committed change (the table's stream), not from here.
 *
 * @example
 * const dispatcher = new Dispatcher({ store, config, agentId, logger }, { echo: async (input) => input });
 * const settlement = await dispatcher.process(message);
 */
export class Dispatcher {
  private readonly deps: DispatcherDeps;
  private readonly handlers: Readonly<Record<string, TaskHandler>>;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(deps: DispatcherDeps, handlers: Readonly<Record<string, TaskHandler>>) {
    this.deps = deps;
    this.handlers = handlers;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
  }

  async process(message: ReceivedTaskMessage, options: ProcessOptions = {}): Promise<Settlement> {
    const settlement = await this.decide(message, options);
    // A released message comes back with its receive count up by one, and the queue dead-letters it
    // once the count passes maxReceiveCount. A release is never a poison signal (another worker holds
    // the task, or this one could not start or finish it): at the last receive, drop the message
    // instead. The task is not lost: its lease holder finishes it, or the sweeper puts it back when
    // the lease expires or it sits `submitted` too long. Otherwise the DLQ (and its alarm) would hold a
    // task that is alive, or already completed by then.
    if (settlement.kind === "release" && message.receiveCount >= this.deps.config.maxReceiveCount) {
      return {
        kind: "ack",
        reason: `${settlement.reason}; dropped at the queue's receive limit (${message.receiveCount}), the table brings the task back`,
      };
    }
    return settlement;
  }

  private async decide(message: ReceivedTaskMessage, options: ProcessOptions): Promise<Settlement> {
    const parsed = parseBody(message.body);
    if (!parsed.success) return { kind: "dead-letter", reason: `malformed task message: ${parsed.error}` };
    let task = await this.deps.store.get(parsed.data.taskId);
    if (!task) return { kind: "dead-letter", reason: `unknown task ${parsed.data.taskId}` };

    // A lost race hands back the current task; decide again on it, a bounded number of times.
    for (let round = 0; round < 4; round++) {
      const next = await this.step(task, options);
      if ("settlement" in next) return next.settlement;
      task = next.current;
      if (!task) return { kind: "ack", reason: "task disappeared" };
    }
    return { kind: "release", delaySeconds: 1 + Math.floor(this.random() * 5), reason: "contended task" };
  }

  private async step(
    task: Task,
    options: ProcessOptions,
  ): Promise<{ settlement: Settlement } | { current: Task | undefined }> {
    const now = this.clock.now();
    if (isTerminal(task.status))
      return { settlement: { kind: "ack", reason: `task already ${task.status}` } };
    if (task.status === "input-required") return { settlement: { kind: "ack", reason: "task awaits input" } };

    const leaseActive =
      task.status === "working" &&
      task.leaseExpiresAt !== undefined &&
      Date.parse(task.leaseExpiresAt) > now.getTime();
    if (leaseActive) {
      const waitMs = Date.parse(task.leaseExpiresAt ?? "") - now.getTime();
      const delaySeconds = Math.min(MAX_RELEASE_SECONDS, Math.ceil(waitMs / 1000) + 1);
      return { settlement: { kind: "release", delaySeconds, reason: "another worker holds the task" } };
    }

    // A cancel asked for between attempts wins over running the task again.
    if (task.status === "submitted" && task.cancelRequested) return this.finish(task, "canceled", {}, {});

    if (task.status === "working") {
      // The previous holder's lease ran out: it crashed or stalled. Cancel it, fail it, or take it over.
      if (task.cancelRequested) return this.finish(task, "canceled", {}, { expired: true });
      if (task.attempts >= task.maxAttempts) {
        return this.finish(
          task,
          "failed",
          { error: { code: "timeout", message: `lease expired on the last attempt (${task.attempts})` } },
          { expired: true, deadLetterReason: "attempts exhausted: lease expired" },
        );
      }
    }

    const handler = this.handlers[task.taskType];
    if (!handler) {
      return this.finish(
        task,
        "failed",
        {
          error: {
            code: "no_handler",
            message: `no handler for task type "${task.taskType}" on this worker`,
          },
        },
        { expired: task.status === "working" },
      );
    }

    // Too little of the invocation left to run anything: hand the message back without claiming, so
    // no attempt is spent on a run that could only time out.
    if (
      options.deadlineMs !== undefined &&
      options.deadlineMs - now.getTime() < DEADLINE_SAFETY_MS + MIN_RUN_MS
    ) {
      return {
        settlement: { kind: "release", delaySeconds: 1, reason: "invocation deadline too close to start" },
      };
    }

    const claimed = await this.claim(task, now);
    if (!claimed.ok) return { current: claimed.current };
    return { settlement: await this.run(claimed.task, handler, options) };
  }

  private async claim(task: Task, now: Date) {
    const write = claimWrite(task, {
      now: now.toISOString(),
      leaseToken: randomUUID(),
      leaseSeconds: this.leaseSeconds(this.timeoutSeconds(task)),
      agentId: this.deps.agentId,
    });
    return this.deps.store.transition({ taskId: task.taskId, ...write });
  }

  private async run(task: Task, handler: TaskHandler, options: ProcessOptions): Promise<Settlement> {
    const leaseToken = task.leaseToken ?? "";
    const timeoutSeconds = this.timeoutSeconds(task);
    const leaseSeconds = this.leaseSeconds(timeoutSeconds);
    const renewEveryMs = this.deps.leaseSeconds === undefined ? undefined : (leaseSeconds * 1000) / 3;
    let renewedMs = this.clock.now().getTime();
    const controller = new AbortController();
    const abort = (reason: AbortReason) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    const logger = this.deps.logger;
    await options
      .extendMessageLease?.(leaseSeconds)
      .catch((error: unknown) =>
        logger.warn("could not extend the message lease", { taskId: task.taskId, error }),
      );

    const startedMs = this.clock.now().getTime();
    let budgetMs = timeoutSeconds * 1000;
    if (options.deadlineMs !== undefined)
      budgetMs = Math.min(budgetMs, options.deadlineMs - startedMs - DEADLINE_SAFETY_MS);
    const timer = setTimeout(
      () => abort(new AbortReason("timeout", `task timed out after ${Math.round(budgetMs / 1000)} s`)),
      Math.max(0, budgetMs),
    );
    // The task as last read while this worker holds it: heartbeats and cancel requests move its
    // version, and the outcome is written (and its event named) on top of the newest one.
    let latest = task;
    const checkLease = async (extend: boolean) => {
      const current = extend
        ? await this.extendLease(latest, leaseToken, leaseSeconds)
        : await this.deps.store.get(task.taskId);
      if (current?.status !== "working" || current.leaseToken !== leaseToken) {
        abort(new AbortReason("lease_lost", "this worker no longer holds the task"));
        return;
      }
      if (current.version > latest.version) latest = current;
      if (current.cancelRequested) abort(new AbortReason("canceled", "the task was canceled"));
    };
    const watcher = setInterval(
      () => {
        const renew = renewEveryMs !== undefined && this.clock.now().getTime() - renewedMs >= renewEveryMs;
        if (renew) renewedMs = this.clock.now().getTime();
        void checkLease(renew)
          .then(() =>
            renew && !controller.signal.aborted ? options.extendMessageLease?.(leaseSeconds) : undefined,
          )
          .catch((error: unknown) => logger.warn("lease check failed", { error }));
      },
      Math.min(this.deps.cancelCheckIntervalMs ?? 1_000, renewEveryMs ?? Number.POSITIVE_INFINITY),
    );
    const onRelease = () => abort(new AbortReason("released", "the worker is shutting down"));
    if (options.release?.aborted) onRelease();
    else options.release?.addEventListener("abort", onRelease, { once: true });

    const context: TaskContext = {
      taskId: task.taskId,
      taskType: task.taskType,
      attempt: task.attempts,
      signal: controller.signal,
      logger,
      metadata: task.metadata,
      heartbeat: async () => {
        await checkLease(true);
        await options.extendMessageLease?.(leaseSeconds);
        if (
          controller.signal.reason instanceof AbortReason &&
          controller.signal.reason.kind === "lease_lost"
        ) {
          throw controller.signal.reason;
        }
      },
    };

    let outcome: { ok: true; output: unknown } | { ok: false; error: unknown };
    try {
      // Inside the try: a throwing hook must not leave the timer and the watcher running.
      await this.deps.onTaskStart?.(task);
      outcome = {
        ok: true,
        output: await untilAborted(
          Promise.resolve().then(() => handler(task.input, context)),
          controller.signal,
        ),
      };
    } catch (error) {
      outcome = { ok: false, error: controller.signal.aborted ? controller.signal.reason : error };
    } finally {
      clearTimeout(timer);
      clearInterval(watcher);
      options.release?.removeEventListener("abort", onRelease);
    }
    const executionTimeMs = this.clock.now().getTime() - startedMs;
    try {
      return await this.record(latest, leaseToken, outcome, executionTimeMs);
    } finally {
      await this.deps.onTaskEnd?.(task);
    }
  }

  private async record(
    task: Task,
    leaseToken: string,
    outcome: { ok: true; output: unknown } | { ok: false; error: unknown },
    executionTimeMs: number,
  ): Promise<Settlement> {
    if (outcome.ok) {
      // An output the store would refuse fails the task once, not retried: the handler would produce it again.
      const prepared = prepareOutput(task, outcome.output);
      if ("problem" in prepared) {
        return this.settleFinish(
          await this.finish(
            task,
            "failed",
            {
              error: prepared.problem,
              result: { success: false, errorMessage: prepared.problem.message, executionTimeMs },
            },
            { leaseToken },
          ),
        );
      }
      return this.settleFinish(
        await this.finish(
          task,
          "completed",
          { result: { success: true, output: prepared.output, executionTimeMs } },
          { leaseToken },
        ),
      );
    }

    const error = outcome.error;
    if (error instanceof AbortReason && error.kind === "lease_lost") {
      return { kind: "ack", reason: "lease lost; the current holder records the outcome" };
    }
    if (error instanceof AbortReason && error.kind === "released") {
      // Ends the lease now (a guarded no-op if it is already lost): the next delivery takes over.
      await this.extendLease(task, leaseToken, 0);
      return { kind: "release", delaySeconds: 0, reason: "released by a stopping worker" };
    }
    if (error instanceof AbortReason && error.kind === "canceled") {
      return this.settleFinish(await this.finish(task, "canceled", {}, { leaseToken }));
    }
    const taskError: TaskError =
      error instanceof AbortReason
        ? { code: "timeout", message: error.message }
        : {
            code: error instanceof NonRetryableError ? error.code : "handler_error",
            message: errorMessage(error),
          };
    const retryable = !(error instanceof NonRetryableError);

    if (retryable && task.attempts < task.maxAttempts) {
      const retried = await this.leasedWrite(task, leaseToken, (base) =>
        retryWrite(base, { now: this.clock.now().toISOString(), leaseToken, error: taskError }),
      );
      if (!retried.ok) return { kind: "ack", reason: "lease lost before the retry was recorded" };
      // A cancel that arrived while this attempt ran: end the task now rather than retry it.
      if (retried.task.cancelRequested)
        return this.settleFinish(await this.finish(retried.task, "canceled", {}, {}));
      this.deps.logger.warn("task attempt failed; retrying", {
        taskId: task.taskId,
        attempt: task.attempts,
        error: taskError,
      });
      return {
        kind: "retry",
        attempt: task.attempts + 1,
        delaySeconds: retryDelaySeconds(this.deps.config.retry, task.attempts, this.random),
      };
    }

    const finished = await this.finish(
      task,
      "failed",
      { error: taskError, result: { success: false, errorMessage: taskError.message, executionTimeMs } },
      {
        leaseToken,
        ...(retryable
          ? { deadLetterReason: `attempts exhausted (${task.attempts}): ${taskError.message}` }
          : {}),
      },
    );
    return this.settleFinish(finished);
  }

  /** Writes a terminal status; the guard is the caller's lease, or (for an expired lease) the version. */
  private async finish(
    task: Task,
    to: Extract<TaskStatus, "completed" | "failed" | "canceled">,
    fields: TaskPatch,
    how: { leaseToken?: string; expired?: boolean; deadLetterReason?: string },
  ): Promise<{ settlement: Settlement } | { current: Task | undefined }> {
    const now = this.clock.now().toISOString();
    const build = (base: Task, leaseToken?: string) =>
      finishWrite(base, to, {
        now,
        retentionDays: this.deps.config.finishedTaskRetentionDays,
        fields,
        ...(leaseToken !== undefined ? { leaseToken } : {}),
        ...(how.expired ? { expired: true } : {}),
      });
    if (how.leaseToken !== undefined) {
      const leaseToken = how.leaseToken;
      const outcome = await this.leasedWrite(task, leaseToken, (base) => build(base, leaseToken));
      if (!outcome.ok) return { settlement: { kind: "ack", reason: "lease lost; the result was refused" } };
    } else {
      const outcome = await this.deps.store.transition({ taskId: task.taskId, ...build(task) });
      if (!outcome.ok) return { current: outcome.current };
    }
    if (how.deadLetterReason !== undefined) {
      return { settlement: { kind: "dead-letter", reason: how.deadLetterReason } };
    }
    return { settlement: { kind: "ack", reason: `task ${to}` } };
  }

  /**
   * A write by the worker holding the task's lease, guarded by the lease *and* the version, so that
   * its events describe exactly the version the write produces. When something else moved the
   * version while the lease is still ours (a cancel request, a lease extension), the write and its
   * events are built again on the stored task.
   */
  private async leasedWrite(
    task: Task,
    leaseToken: string,
    build: (base: Task) => TaskWrite,
  ): Promise<{ ok: true; task: Task } | { ok: false }> {
    let base = task;
    for (let round = 0; round < LEASED_WRITE_ROUNDS; round++) {
      const outcome = await this.deps.store.transition({ taskId: base.taskId, ...build(base) });
      if (outcome.ok) return { ok: true, task: outcome.task };
      const current = outcome.current;
      if (current?.status !== "working" || current.leaseToken !== leaseToken) return { ok: false };
      base = current;
    }
    return { ok: false };
  }

  private settleFinish(result: { settlement: Settlement } | { current: Task | undefined }): Settlement {
    return "settlement" in result ? result.settlement : { kind: "ack", reason: "task changed meanwhile" };
  }

  private async extendLease(task: Task, leaseToken: string, leaseSeconds: number): Promise<Task | undefined> {
    const leaseExpiresAt = new Date(this.clock.now().getTime() + leaseSeconds * 1000).toISOString();
    const outcome = await this.deps.store.transition({
      taskId: task.taskId,
      ...extendLeaseWrite(leaseToken, leaseExpiresAt),
    });
    return outcome.ok ? outcome.task : outcome.current;
  }

  private leaseSeconds(timeoutSeconds: number): number {
    const whole = timeoutSeconds + this.deps.config.leaseGraceSeconds;
    return this.deps.leaseSeconds === undefined ? whole : Math.min(whole, this.deps.leaseSeconds);
  }

  private timeoutSeconds(task: Task): number {
    return task.timeoutSeconds ?? this.deps.config.defaultTimeoutSeconds;
  }
}

function parseBody(
  body: string,
): { success: true; data: { taskId: string } } | { success: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { success: false, error: "body is not JSON" };
  }
  // The well-formed body every message has, checked by hand (zod costs more than the rest of the
  // parse, once per task); anything else goes through the schema for its error message.
  if (typeof json === "object" && json !== null) {
    const { taskId, attempt } = json as { taskId?: unknown; attempt?: unknown };
    if (
      typeof taskId === "string" &&
      taskId.length > 0 &&
      Number.isSafeInteger(attempt) &&
      (attempt as number) > 0
    )
      return { success: true, data: { taskId } };
  }
  const parsed = MessageBodySchema.safeParse(json);
  return parsed.success
    ? { success: true, data: parsed.data }
    : {
        success: false,
        error: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      };
}

/** Resolves with the handler's result, or rejects as soon as the signal fires (a handler may ignore it). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === "string" ? error : "handler failed";
}
