import type { BusEvent } from "#shared/domain/events";
import type { EventBus, EventHandler, EventPattern } from "#shared/ports/event-bus";
import { matchesEventPattern, validateEventPattern } from "./event-pattern.ts";

interface Subscription {
  readonly pattern: EventPattern;
  readonly handler: EventHandler;
}

/**
 * The embedded event bus: EventBridge pattern matching, asynchronous at-least-once delivery to
 * in-process subscribers. A subscriber that throws gets the event again, a few times, with backoff.
 *
 * Memory stays bounded by what is in flight: nothing is kept after delivery (no history unless a test
 * asks for it with `recordPublished`), and each published batch is copied once and frozen, so every
 * subscriber reads the same copy — a broadcast to 10,000 agents shares one payload instead of holding
 * 10,000 clones of it. Subscribers must treat events as read-only (a write throws).
 *
 * @example
 * const bus = new MemoryEventBus();
 * bus.subscribe({ "detail-type": ["Task Completed"] }, async (event) => console.log(event.detail));
 * await bus.publish([event]);
 */
export class MemoryEventBus implements EventBus {
  private readonly subscriptions = new Set<Subscription>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly published: BusEvent[] | undefined;
  private readonly onError: (error: unknown, event: BusEvent) => void;
  private readonly maxDeliveryAttempts: number;

  constructor(
    options: {
      onError?: (error: unknown, event: BusEvent) => void;
      maxDeliveryAttempts?: number;
      /** Tests only: keep every published event for `inspectPublished`. @default false */
      recordPublished?: boolean;
    } = {},
  ) {
    this.onError = options.onError ?? (() => {});
    this.maxDeliveryAttempts = options.maxDeliveryAttempts ?? 3;
    this.published = options.recordPublished ? [] : undefined;
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    // One clone for the whole batch: objects shared between its events (a broadcast's payload) stay shared.
    const copies = deepFreeze(structuredClone([...events]));
    for (const copy of copies) {
      this.published?.push(copy);
      for (const subscription of this.subscriptions) {
        if (!matchesEventPattern(subscription.pattern, copy)) continue;
        const delivery = this.deliver(subscription.handler, copy);
        this.inFlight.add(delivery);
        void delivery.finally(() => this.inFlight.delete(delivery));
      }
    }
  }

  subscribe(pattern: EventPattern, handler: EventHandler): () => void {
    validateEventPattern(pattern);
    const subscription = { pattern, handler };
    this.subscriptions.add(subscription);
    return () => this.subscriptions.delete(subscription);
  }

  /** Resolves when every delivery started so far (and any it caused) has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Test hook: every event published, in order; only on a bus built with `recordPublished: true`. */
  inspectPublished(): readonly BusEvent[] {
    if (this.published === undefined) {
      throw new Error("this MemoryEventBus keeps no history; construct it with { recordPublished: true }");
    }
    return [...this.published];
  }

  private async deliver(handler: EventHandler, event: BusEvent): Promise<void> {
    await Promise.resolve();
    for (let attempt = 1; ; attempt++) {
      try {
        await handler(event);
        return;
      } catch (error) {
        if (attempt >= this.maxDeliveryAttempts) {
          this.onError(error, event);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** attempt));
      }
    }
  }
}

/** Freezes a JSON-like value and everything in it, iteratively (events may nest deeply). */
function deepFreeze<T>(value: T): T {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const current = pending.pop();
    if (current === null || typeof current !== "object" || Object.isFrozen(current)) continue;
    Object.freeze(current);
    for (const child of Object.values(current)) pending.push(child);
  }
  return value;
}
