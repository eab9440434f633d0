import type { PlatformConfig } from "#shared/config/platform";
import { queuesForCapability } from "#shared/config/platform";
import type { Task } from "#shared/domain/task";
import { expiredLeaseWrite, touchWrite } from "#shared/domain/transitions";
import { type Clock, systemClock } from "#shared/ports/clock";
import type { TaskQueue } from "#shared/ports/task-queue";
import type { ListTasksQuery, TaskStore } from "#shared/ports/task-store";

export interface SweepReport {
  readonly expiredLeases: number;
  readonly reenqueued: number;
}

export interface SweeperDeps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  readonly config: PlatformConfig;
  readonly clock?: Clock;
  /** Tasks per listing page. @default 100 */
  readonly pageSize?: number;
  /** Most listing pages per status per sweep. @default 50 */
  readonly maxPages?: number;
}

/**
 * Closes the loops events cannot: tasks whose worker's lease expired go back to the queue (or fail
 * with `timeout` on their last attempt, or end `canceled` if a cancel was asked for), tasks stuck in
 * `submitted` are enqueued again. Every write is conditional, so a sweep racing a worker or another
 * sweep changes nothing twice. (Events and statistics need no sweep: they follow from the table's
 * stream, which retries; jobs are reconciled against their tasks by the aggregator's due-job sweep.)
 *
 * @example
 * const report = await new Sweeper({ store, queue, config }).sweep();
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
    return { expiredLeases, reenqueued };
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
    const write = expiredLeaseWrite(task, now, this.deps.config.finishedTaskRetentionDays);
    const outcome = await this.deps.store.transition({ taskId: task.taskId, ...write });
    if (!outcome.ok) return false;
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
        ...touchWrite(task, now.toISOString()),
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
