import type { PlatformConfig } from "#shared/config/platform";
import { queuesForCapability } from "#shared/config/platform";
import { DetailType } from "#shared/domain/events";
import { Counter } from "#shared/domain/statistics";
import type { Task } from "#shared/domain/task";
import { type Clock, systemClock } from "#shared/ports/clock";
import type { TaskQueue } from "#shared/ports/task-queue";
import type { ListTasksQuery, TaskStore } from "#shared/ports/task-store";
import type { EventRelay } from "./event-relay.ts";
import { afterWrite, lifecycleEvent, mergeCounters, statusCounters } from "./task-events.ts";

export interface SweepReport {
  readonly republishedEntries: number;
  readonly expiredLeases: number;
  readonly reenqueued: number;
}

export interface SweeperDeps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  readonly relay: EventRelay;
  readonly config: PlatformConfig;
  readonly clock?: Clock;
  /** Outbox entries younger than this are left to the writer that created them. */
  readonly outboxGraceSeconds?: number;
  /** Tasks per listing page. @default 100 */
  readonly pageSize?: number;
  /** Most listing pages per status per sweep. @default 50 */
  readonly maxPages?: number;
}

/**
 * Closes the loops events cannot: tasks whose worker's lease expired go back to the queue (or fail
 * with `timeout` on their last attempt, or end `canceled` if a cancel was asked for), tasks stuck in
 * `submitted` are enqueued again, and committed events that were never published are published.
 * Every write is conditional, so a sweep racing a worker or another sweep changes nothing twice.
 *
 * @example
 * const report = await new Sweeper({ store, queue, relay, config }).sweep();
 */
export class Sweeper {
  private readonly deps: SweeperDeps;
  private readonly clock: Clock;

  constructor(deps: SweeperDeps) {
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
  }

  async sweep(): Promise<SweepReport> {
    const now = this.clock.now();
    const expiredLeases = await this.recoverExpiredLeases(now);
    const reenqueued = await this.reenqueueStuck(now);
    const grace = (this.deps.outboxGraceSeconds ?? 30) * 1000;
    const republishedEntries = await this.deps.relay.republishPending(
      new Date(now.getTime() - grace).toISOString(),
    );
    return { republishedEntries, expiredLeases, reenqueued };
  }

  private async recoverExpiredLeases(now: Date): Promise<number> {
    const iso = now.toISOString();
    const items = await this.listAll({ status: "working", updatedBefore: iso });
    let recovered = 0;
    for (const task of items) {
      if (task.leaseExpiresAt === undefined || task.leaseExpiresAt >= iso) continue;
      if (await this.recover(task, iso)) recovered++;
    }
    return recovered;
  }

  private async recover(task: Task, now: string): Promise<boolean> {
    const retention =
      Math.floor(Date.parse(now) / 1000) + this.deps.config.finishedTaskRetentionDays * 86_400;
    const agentCounter = task.workerAgentId ? { [Counter.agent(task.workerAgentId)]: 1 } : {};
    const write = task.cancelRequested
      ? {
          to: "canceled" as const,
          patch: { updatedAt: now, completedAt: now, expiresAt: retention },
          counters: agentCounter,
        }
      : task.attempts >= task.maxAttempts
        ? {
            to: "failed" as const,
            patch: {
              updatedAt: now,
              completedAt: now,
              expiresAt: retention,
              error: { code: "timeout", message: `lease expired on the last attempt (${task.attempts})` },
            },
            counters: agentCounter,
          }
        : { to: "submitted" as const, patch: { updatedAt: now }, counters: {} };
    const change = {
      to: write.to,
      patch: write.patch,
      remove: ["leaseToken", "leaseExpiresAt"] as (keyof Task)[],
    };
    const events = [
      lifecycleEvent(
        afterWrite(task, change),
        write.to === "submitted" ? DetailType.TaskRetrying : undefined,
      ),
    ];
    const outcome = await this.deps.store.transition({
      taskId: task.taskId,
      snapshot: task,
      from: ["working"],
      expectedVersion: task.version,
      leaseExpiredBefore: now,
      ...change,
      counters: mergeCounters(statusCounters("working", write.to), write.counters),
      events,
    });
    if (!outcome.ok) return false;
    await this.deps.relay.publish([{ taskId: task.taskId, version: outcome.task.version, events }]);
    if (write.to === "submitted") await this.enqueue([outcome.task]);
    return true;
  }

  private async reenqueueStuck(now: Date): Promise<number> {
    const before = new Date(now.getTime() - this.deps.config.stuckSubmittedSeconds * 1000).toISOString();
    const items = await this.listAll({ status: "submitted", updatedBefore: before });
    const touched: Task[] = [];
    for (const task of items) {
      // Touch first, so a second sweeper racing this one does not enqueue the task again.
      const outcome = await this.deps.store.transition({
        taskId: task.taskId,
        snapshot: task,
        from: ["submitted"],
        expectedVersion: task.version,
        patch: { updatedAt: now.toISOString() },
      });
      if (outcome.ok) touched.push(outcome.task);
    }
    await this.enqueue(touched);
    return touched.length;
  }

  private async enqueue(tasks: readonly Task[]): Promise<void> {
    if (tasks.length === 0) return;
    await this.deps.queue.send(
      tasks.map((t) => ({
        queue: t.queue ?? queuesForCapability(t.requiredCapability)[1],
        body: { taskId: t.taskId, attempt: t.attempts + 1 },
      })),
    );
  }

  /**
   * Every matching task, page by page, up to `maxPages`: listings are newest first, and the tasks a
   * sweep is for (the oldest) sit on the last pages.
   */
  private async listAll(query: Pick<ListTasksQuery, "status" | "updatedBefore">): Promise<Task[]> {
    const tasks: Task[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < (this.deps.maxPages ?? 50); page++) {
      const result = await this.deps.store.list({
        ...query,
        limit: this.pageSize(),
        ...(cursor ? { cursor } : {}),
      });
      tasks.push(...result.items);
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return tasks;
  }

  private pageSize(): number {
    return this.deps.pageSize ?? 100;
  }
}
