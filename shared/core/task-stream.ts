import { type BusEvent, TERMINAL_TASK_DETAIL_TYPES } from "#shared/domain/events";
import { changeCounters, changeEvent } from "#shared/domain/transitions";
import type { EventPublisher } from "#shared/ports/event-bus";
import type { CountedChange, TaskChange, TaskStore } from "#shared/ports/task-store";

/** Which lifecycle events go to the bus: on AWS each is an EventBridge event, billed. */
export type TaskEventPublishing = "all" | "terminal" | "none";

const TERMINAL_EVENTS: ReadonlySet<string> = new Set(TERMINAL_TASK_DETAIL_TYPES);

/**
 * The publishing mode named by a setting (the aggregator's `PUBLISH_TASK_EVENTS`); unset is "none".
 *
 * @example
 * taskEventPublishing(process.env.PUBLISH_TASK_EVENTS); // "none" | "terminal" | "all"
 */
export function taskEventPublishing(value: string | undefined): TaskEventPublishing {
  if (value === undefined || value === "") return "none";
  if (value === "all" || value === "terminal" || value === "none") return value;
  throw new Error(`PUBLISH_TASK_EVENTS must be all, terminal or none, got "${value}"`);
}

export interface TaskStreamLogger {
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface TaskStreamDeps {
  /** Where the statistics go (`applyCounters`). */
  readonly store: Pick<TaskStore, "applyCounters">;
  /** The bus lifecycle events are published to (per `publish`). */
  readonly publisher?: EventPublisher;
  /** @default "none" — publish only what someone consumes */
  readonly publish?: TaskEventPublishing;
  /** Fan-in: gets the lifecycle events of tasks that belong to a job, and only those. */
  readonly jobs?: { onTaskEvent(event: BusEvent): Promise<unknown> };
  readonly logger?: TaskStreamLogger;
  /**
   * Sees the lifecycle event of every processed change, published or not (the Lambda's EMF metrics
   * count tasks completed, failed and retried from them).
   */
  readonly observe?: (events: readonly BusEvent[]) => void;
}

export interface TaskStreamReport {
  /** Index (in the batch) of the first change not processed; it and everything after must come again. */
  readonly failedAt?: number;
  readonly events: number;
  readonly counted: number;
}

/**
 * Everything that follows a committed task write, fed by the table's change stream in batches (on AWS
 * the DynamoDB Stream's Lambda event source; locally the memory store's change feed or a poller over
 * DynamoDB Local's stream): the lifecycle event of each change goes to the aggregator when the task
 * belongs to a job and to the bus as configured, and the statistics deltas of the whole batch are
 * applied in one write. Safe under duplicated and redelivered changes: duplicates in a batch are
 * dropped, the aggregator is idempotent, events may repeat (their id says so), and the store counts a
 * change once. On a failure the report names the first change to deliver again; nothing from it on
 * was counted.
 *
 * @example
 * const stream = new TaskStream({ store, publisher: bus, publish: "all", jobs: aggregator });
 * const { failedAt } = await stream.process(changes);
 */
export class TaskStream {
  private readonly deps: TaskStreamDeps;

  constructor(deps: TaskStreamDeps) {
    this.deps = deps;
  }

  async process(batch: readonly TaskChange[]): Promise<TaskStreamReport> {
    const seen = new Set<string>();
    const changes: { index: number; change: TaskChange; event: BusEvent | undefined }[] = [];
    batch.forEach((change, index) => {
      if (seen.has(change.id)) return;
      seen.add(change.id);
      changes.push({ index, change, event: changeEvent(change.before, change.after) });
    });

    // Jobs first, in order: a failure stops the batch there.
    let done = changes.length;
    for (let i = 0; i < changes.length; i++) {
      const event = changes[i]?.event;
      if (!event || event.detail.jobId === undefined || !this.deps.jobs) continue;
      try {
        await this.deps.jobs.onTaskEvent(event);
      } catch (error) {
        this.deps.logger?.warn("aggregating a task event failed; the change will be delivered again", {
          eventId: event.id,
          error: error instanceof Error ? error.message : String(error),
        });
        done = i;
        break;
      }
    }
    const processed = changes.slice(0, done);
    const failedAt = done < changes.length ? changes[done]?.index : undefined;

    const events = processed.flatMap(({ event }) => (event && this.publishes(event) ? [event] : []));
    if (events.length > 0 && this.deps.publisher) {
      try {
        await this.deps.publisher.publish(events);
      } catch (error) {
        this.deps.logger?.warn("publishing task events failed; the batch will be delivered again", {
          error: error instanceof Error ? error.message : String(error),
        });
        return { failedAt: 0, events: 0, counted: 0 };
      }
    }

    const counted: CountedChange[] = processed
      .map(({ change }) => ({ id: change.id, deltas: changeCounters(change.before, change.after) }))
      .filter((c) => Object.keys(c.deltas).length > 0);
    if (counted.length > 0) {
      try {
        await this.deps.store.applyCounters(counted);
      } catch (error) {
        this.deps.logger?.warn("applying statistics failed; the batch will be delivered again", {
          error: error instanceof Error ? error.message : String(error),
        });
        return { failedAt: 0, events: events.length, counted: 0 };
      }
    }
    // Last, so that a batch delivered again after a failure above is not observed twice.
    this.deps.observe?.(processed.flatMap(({ event }) => (event ? [event] : [])));
    return {
      ...(failedAt !== undefined ? { failedAt } : {}),
      events: events.length,
      counted: counted.length,
    };
  }

  private publishes(event: BusEvent): boolean {
    const mode = this.deps.publish ?? "none";
    return mode === "all" || (mode === "terminal" && TERMINAL_EVENTS.has(event["detail-type"]));
  }
}
