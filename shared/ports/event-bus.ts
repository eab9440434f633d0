import type { BusEvent } from "#shared/domain/events";

/** An EventBridge event pattern. */
export type EventPattern = Readonly<Record<string, unknown>>;

export type EventHandler = (event: BusEvent) => Promise<void> | void;

/**
 * Publishes events. Adapters resend only the entries that failed; if some still fail, `publish`
 * throws a DependencyError; the task stream then has its batch delivered again (ADR 0007).
 *
 * @example
 * await bus.publish([{ id, source: "agentry", "detail-type": "Task Completed", time, detail }]);
 */
export interface EventPublisher {
  publish(events: readonly BusEvent[]): Promise<void>;
}

/**
 * Delivers published events to in-process subscribers whose EventBridge pattern matches. On AWS the
 * same patterns are EventBridge rules created by the CDK stack.
 *
 * @example
 * const stop = bus.subscribe({ source: ["agentry"], "detail-type": ["Task Completed"] }, onCompleted);
 */
export interface EventSubscriber {
  subscribe(pattern: EventPattern, handler: EventHandler): () => void;
}

export interface EventBus extends EventPublisher, EventSubscriber {}
