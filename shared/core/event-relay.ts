import type { BusEvent } from "#shared/domain/events";
import type { EventPublisher } from "#shared/ports/event-bus";
import type { Logger } from "#shared/ports/logger";
import { outboxEntryId, type TaskStore } from "#shared/ports/task-store";

export interface CommittedEvents {
  readonly taskId: string;
  /** The version the committing write produced (names the outbox entry). */
  readonly version: number;
  readonly events: readonly BusEvent[];
}

/**
 * Publishes events that were committed to the store's outbox, then clears their entries. A failed
 * publish leaves the entries for the sweeper, which publishes them again: an event may arrive twice,
 * never zero times.
 *
 * @example
 * const relay = new EventRelay({ store, publisher: bus });
 * await relay.publish([{ taskId, version: outcome.task.version, events }]);
 */
export class EventRelay {
  private readonly store: TaskStore;
  private readonly publisher: EventPublisher;
  private readonly logger: Pick<Logger, "warn"> | undefined;

  constructor(deps: { store: TaskStore; publisher: EventPublisher; logger?: Pick<Logger, "warn"> }) {
    this.store = deps.store;
    this.publisher = deps.publisher;
    this.logger = deps.logger;
  }

  async publish(committed: readonly CommittedEvents[]): Promise<void> {
    const withEvents = committed.filter((c) => c.events.length > 0);
    if (withEvents.length === 0) return;
    await this.publishEntries(
      withEvents.map((c) => ({ id: outboxEntryId(c.taskId, c.version), events: c.events })),
    );
  }

  /** Republishes outbox entries older than `olderThan`; returns how many entries were published. */
  async republishPending(olderThan: string, limit = 100): Promise<number> {
    const pending = await this.store.pendingEvents(olderThan, limit);
    if (pending.length === 0) return 0;
    return (await this.publishEntries(pending)) ? pending.length : 0;
  }

  private async publishEntries(
    entries: readonly { id: string; events: readonly BusEvent[] }[],
  ): Promise<boolean> {
    try {
      await this.publisher.publish(entries.flatMap((e) => e.events));
      await this.store.clearEvents(entries.map((e) => e.id));
      return true;
    } catch (error) {
      this.logger?.warn("event publish failed; the sweeper will publish again", {
        entries: entries.map((e) => e.id),
        error,
      });
      return false;
    }
  }
}
