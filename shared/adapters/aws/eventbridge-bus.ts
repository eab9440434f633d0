import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from "@aws-sdk/client-eventbridge";
import { DependencyError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { EventPublisher } from "#shared/ports/event-bus";

export interface EventBridgePublisherOptions {
  readonly client: EventBridgeClient;
  readonly eventBusName: string;
  /** PutEvents calls per chunk, the first included. @default 4 */
  readonly maxAttempts?: number;
  /** @default 50 */
  readonly retryBaseDelayMs?: number;
}

/** PutEvents takes at most 10 entries per call… */
const PUT_EVENTS_LIMIT = 10;
/** …whose sizes (computed as the EventBridge user guide says) must add up to less than 256 KB. */
const PUT_EVENTS_MAX_BYTES = 256 * 1024 - 1;

/** An entry's size as EventBridge counts it: Time (14 bytes), Source, DetailType, Detail, Resources. */
export function putEventsEntrySize(entry: PutEventsRequestEntry): number {
  const bytes = (text: string | undefined) => (text === undefined ? 0 : Buffer.byteLength(text, "utf8"));
  return (
    (entry.Time ? 14 : 0) +
    bytes(entry.Source) +
    bytes(entry.DetailType) +
    bytes(entry.Detail) +
    (entry.Resources ?? []).reduce((sum, resource) => sum + bytes(resource), 0)
  );
}

interface PendingEntry {
  readonly event: BusEvent;
  readonly entry: PutEventsRequestEntry;
}

interface FailedEntry {
  readonly event: BusEvent;
  readonly reason: string;
}

/**
 * Publishes events to an EventBridge bus. PutEvents reports failures per entry without throwing, so
 * each chunk (≤ 10 entries, < 256 KB) is sent, its failed entries (only those) are sent again with backoff a few times,
 * and whatever still fails makes `publish` throw a DependencyError naming the events. The caller (the
 * task stream) then has its stream batch delivered again.
 *
 * EventBridge assigns its own event id; consumers deduplicate on the detail (task id + version).
 *
 * @example
 * const publisher = new EventBridgePublisher({ client: new EventBridgeClient({}), eventBusName: "agentry" });
 * await publisher.publish([{ id, source: "agentry", "detail-type": "Task Completed", time, detail }]);
 */
export class EventBridgePublisher implements EventPublisher {
  private readonly client: EventBridgeClient;
  private readonly eventBusName: string;
  private readonly maxAttempts: number;
  private readonly retryBaseDelayMs: number;

  constructor(options: EventBridgePublisherOptions) {
    this.client = options.client;
    this.eventBusName = options.eventBusName;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.retryBaseDelayMs = Math.max(0, options.retryBaseDelayMs ?? 50);
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    // Chunks of at most 10 entries and under 256 KB in all; an entry over the limit alone goes in a
    // chunk of its own, and EventBridge's refusal of it is reported like any other failed entry.
    const chunks: PendingEntry[][] = [];
    let chunk: PendingEntry[] = [];
    let chunkBytes = 0;
    for (const event of events) {
      const entry = this.entry(event);
      const size = putEventsEntrySize(entry);
      if (
        chunk.length > 0 &&
        (chunk.length >= PUT_EVENTS_LIMIT || chunkBytes + size > PUT_EVENTS_MAX_BYTES)
      ) {
        chunks.push(chunk);
        chunk = [];
        chunkBytes = 0;
      }
      chunk.push({ event, entry });
      chunkBytes += size;
    }
    if (chunk.length > 0) chunks.push(chunk);
    const failed = (await Promise.all(chunks.map((chunk) => this.publishChunk(chunk)))).flat();
    if (failed.length > 0) {
      const named = failed.map((f) => `${f.event.id} ("${f.event["detail-type"]}"): ${f.reason}`).join("; ");
      throw new DependencyError(
        `EventBridge PutEvents failed for ${failed.length} of ${events.length} events after ${this.maxAttempts} attempts: ${named}`,
      );
    }
  }

  private async publishChunk(chunk: readonly PendingEntry[]): Promise<FailedEntry[]> {
    let pending = chunk;
    for (let attempt = 1; ; attempt++) {
      let failed: FailedEntry[];
      try {
        const output = await this.client.send(new PutEventsCommand({ Entries: pending.map((p) => p.entry) }));
        failed =
          (output.FailedEntryCount ?? 0) === 0
            ? []
            : pending.flatMap((p, i) => {
                const result = output.Entries?.[i];
                // A missing result is treated as a failure: sending an event twice is safe, losing it is not.
                if (result?.EventId !== undefined && result.ErrorCode === undefined) return [];
                return [
                  {
                    event: p.event,
                    reason: `${result?.ErrorCode ?? "Unknown"}: ${result?.ErrorMessage ?? "no result"}`,
                  },
                ];
              });
      } catch (error) {
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        failed = pending.map((p) => ({ event: p.event, reason }));
      }
      if (failed.length === 0 || attempt >= this.maxAttempts) return failed;
      const retry = new Set(failed.map((f) => f.event));
      pending = pending.filter((p) => retry.has(p.event));
      const ceiling = Math.min(2000, this.retryBaseDelayMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, Math.round(ceiling * Math.random())));
    }
  }

  private entry(event: BusEvent): PutEventsRequestEntry {
    const time = new Date(event.time);
    return {
      EventBusName: this.eventBusName,
      Source: event.source,
      DetailType: event["detail-type"],
      Detail: JSON.stringify(event.detail),
      ...(Number.isNaN(time.getTime()) ? {} : { Time: time }),
      ...(event.resources && event.resources.length > 0 ? { Resources: [...event.resources] } : {}),
    };
  }
}
