import { type PlatformConfig, queuesForCapability } from "#shared/config/platform";
import { ValidationError } from "#shared/domain/errors";
import { isTerminal } from "#shared/domain/lifecycle";
import type { Task, TaskError, TaskStatus } from "#shared/domain/task";
import { redriveWrite } from "#shared/domain/transitions";
import { type Clock, systemClock } from "#shared/ports/clock";
import type { RedriveDecision, TaskQueue } from "#shared/ports/task-queue";
import type { TaskStore } from "#shared/ports/task-store";

/** A task queue with its optional dead-letter operations (not every adapter has them). */
export type DeadLetterCapableQueue = TaskQueue &
  Required<Pick<TaskQueue, "inspectDeadLetters" | "redriveDeadLetters">>;

/** Whether a queue implements the dead-letter operations `GET /dlq` and `POST /dlq/redrive` need. */
export function canRedrive(queue: TaskQueue): queue is DeadLetterCapableQueue {
  return queue.inspectDeadLetters !== undefined && queue.redriveDeadLetters !== undefined;
}

export interface DeadLetterServiceDeps {
  readonly store: TaskStore;
  /** A queue that implements the optional dead-letter operations. */
  readonly queue: DeadLetterCapableQueue;
  readonly config: PlatformConfig;
  readonly clock?: Clock;
}

/** One dead-lettered task as `GET /dlq` shows it. */
export interface DeadLetteredTask {
  readonly taskId?: string;
  readonly messageId: string;
  /** The task's status now (undefined when the message names no stored task). */
  readonly status?: TaskStatus;
  /** The task's last error. */
  readonly lastError?: TaskError;
  /** Why the message was dead-lettered, when the platform moved it. */
  readonly reason?: string;
  readonly deadLetteredAt?: string;
}

export interface DeadLetterQueueView {
  readonly capability: string;
  /** The logical queue (the capability, or its high-priority tier). */
  readonly queue: string;
  readonly depth: number;
  /** Age of the oldest message among those shown, in seconds (SQS reports no exact oldest age). */
  readonly oldestAgeSeconds?: number;
  readonly items: readonly DeadLetteredTask[];
}

export interface RedriveRequest {
  /** Only these capabilities' dead-letter queues. @default every capability */
  readonly capability?: string;
  /** Only messages of these tasks. @default every message */
  readonly taskIds?: readonly string[];
}

export interface RedriveOutcome {
  /** Tasks sent back to their queue (reopened when they had failed). */
  readonly redriven: readonly string[];
  /** Messages removed without a delivery: their task had already finished, or does not exist. */
  readonly dropped: readonly string[];
}

/** Most messages one redrive call handles per queue; the caller calls again for more. */
export const MAX_REDRIVE_PER_QUEUE = 500;

/**
 * Dead-letter queues as a feature: what each capability's DLQs hold, with each task's status and last
 * error, and a redrive that sends tasks back. A redriven task keeps its id, its history (attempts, last
 * error) and gets a fresh attempt budget: a `failed` task is reopened (`failed → submitted`, the one
 * way out of `failed`, an operator's decision) with `maxAttempts` raised by its original budget. A task
 * that completed or was canceled is not run again: its message is dropped. See
 * docs/adr/0012-hostile-input-and-recovery.md.
 *
 * @example
 * const dlq = new DeadLetterService({ store, queue, config });
 * const [diagnostics] = await dlq.list({ capability: "diagnostics", limit: 10 });
 * await dlq.redrive({ taskIds: diagnostics.items.flatMap((i) => i.taskId ?? []) });
 */
export class DeadLetterService {
  private readonly deps: DeadLetterServiceDeps;
  private readonly clock: Clock;

  constructor(deps: DeadLetterServiceDeps) {
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
  }

  async list(options: { capability?: string; limit: number }): Promise<DeadLetterQueueView[]> {
    const now = this.clock.now().getTime();
    const views: DeadLetterQueueView[] = [];
    for (const capability of this.capabilities(options.capability)) {
      for (const queue of queuesForCapability(capability)) {
        const page = await this.deps.queue.inspectDeadLetters(queue, { limit: options.limit });
        const items = await Promise.all(
          page.messages.map(async (message): Promise<DeadLetteredTask> => {
            const task = message.taskId === undefined ? undefined : await this.deps.store.get(message.taskId);
            return {
              messageId: message.messageId,
              ...(message.taskId !== undefined ? { taskId: message.taskId } : {}),
              ...(task !== undefined ? { status: task.status } : {}),
              ...(task?.error !== undefined ? { lastError: task.error } : {}),
              ...(message.reason !== undefined ? { reason: message.reason } : {}),
              ...(message.deadLetteredAt !== undefined ? { deadLetteredAt: message.deadLetteredAt } : {}),
            };
          }),
        );
        const oldest = Math.min(
          ...page.messages.flatMap((m) =>
            m.deadLetteredAt === undefined ? [] : [Date.parse(m.deadLetteredAt)],
          ),
        );
        views.push({
          capability,
          queue,
          depth: page.depth,
          ...(Number.isFinite(oldest)
            ? { oldestAgeSeconds: Math.max(0, Math.floor((now - oldest) / 1000)) }
            : {}),
          items,
        });
      }
    }
    return views;
  }

  async redrive(request: RedriveRequest): Promise<RedriveOutcome> {
    const wanted = request.taskIds === undefined ? undefined : new Set(request.taskIds);
    const redriven: string[] = [];
    const dropped: string[] = [];
    for (const capability of this.capabilities(request.capability)) {
      for (const queue of queuesForCapability(capability)) {
        await this.deps.queue.redriveDeadLetters(queue, {
          max: MAX_REDRIVE_PER_QUEUE,
          decide: async (taskId) => {
            if (wanted !== undefined && (taskId === undefined || !wanted.has(taskId))) return "keep";
            const decision = taskId === undefined ? "drop" : await this.prepare(taskId);
            if (taskId !== undefined && decision === "send") redriven.push(taskId);
            if (taskId !== undefined && decision === "drop") dropped.push(taskId);
            return decision;
          },
        });
      }
    }
    return { redriven, dropped };
  }

  /** Makes the task runnable again if it failed; says whether its message should go back. */
  private async prepare(taskId: string): Promise<RedriveDecision> {
    for (let round = 0; round < 3; round++) {
      const task = await this.deps.store.get(taskId);
      if (task === undefined) return "drop";
      if (task.status !== "failed") return isTerminal(task.status) ? "drop" : "send";
      if (await this.reopen(task)) return "send";
    }
    return "keep";
  }

  private async reopen(task: Task): Promise<boolean> {
    const write = redriveWrite(task, this.clock.now().toISOString());
    // Its `Task Retrying` event and statistics follow from the table's stream.
    const outcome = await this.deps.store.transition({ taskId: task.taskId, ...write });
    return outcome.ok;
  }

  private capabilities(capability: string | undefined): string[] {
    const names = this.deps.config.capabilities.map((c) => c.name);
    if (capability === undefined) return names;
    if (!names.includes(capability)) {
      throw new ValidationError(`unknown capability "${capability}"`, [
        { path: "capability", message: `configured: ${names.join(", ")}` },
      ]);
    }
    return [capability];
  }
}
