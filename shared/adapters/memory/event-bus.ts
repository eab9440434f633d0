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
 * @example
 * const bus = new MemoryEventBus();
 * bus.subscribe({ "detail-type": ["Task Completed"] }, async (event) => console.log(event.detail));
 * await bus.publish([event]);
 */
export class MemoryEventBus implements EventBus {
  private readonly subscriptions = new Set<Subscription>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly published: BusEvent[] = [];
  private readonly onError: (error: unknown, event: BusEvent) => void;
  private readonly maxDeliveryAttempts: number;

  constructor(
    options: { onError?: (error: unknown, event: BusEvent) => void; maxDeliveryAttempts?: number } = {},
  ) {
    this.onError = options.onError ?? (() => {});
    this.maxDeliveryAttempts = options.maxDeliveryAttempts ?? 3;
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    for (const event of events) {
      const copy = structuredClone(event);
      this.published.push(copy);
      for (const subscription of this.subscriptions) {
        if (!matchesEventPattern(subscription.pattern, copy)) continue;
        const delivery = this.deliver(subscription.handler, structuredClone(copy));
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

  /** Test hook: every event ever published, in order. */
  inspectPublished(): readonly BusEvent[] {
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
