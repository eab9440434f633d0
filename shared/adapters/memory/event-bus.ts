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
    const copies = frozenCopy(events);
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

/**
 * A frozen deep copy of a batch of JSON events. Objects shared between events (a broadcast's payload)
 * are copied once and stay shared; strings are immutable and never copied. (`structuredClone` would
 * serialize a 230 KB string once per event that holds it: 2.3 GB for a broadcast to 10,000 agents.)
 * Iterative, so deeply nested details cannot overflow the stack.
 */
function frozenCopy<T>(events: readonly T[]): T[] {
  const copies = new Map<object, unknown>();
  const pending: { source: object; target: Record<string, unknown> | unknown[] }[] = [];
  const copyOf = (value: unknown): unknown => {
    if (value === null || typeof value !== "object") return value;
    const known = copies.get(value);
    if (known !== undefined) return known;
    const target: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
    copies.set(value, target);
    pending.push({ source: value, target });
    return target;
  };
  const result = events.map((event) => copyOf(event) as T);
  while (pending.length > 0) {
    const { source, target } = pending.pop() as (typeof pending)[number];
    if (Array.isArray(source)) {
      for (const item of source) (target as unknown[]).push(copyOf(item));
    } else {
      for (const [key, child] of Object.entries(source))
        (target as Record<string, unknown>)[key] = copyOf(child);
    }
  }
  for (const target of copies.values()) Object.freeze(target);
  return result;
}
