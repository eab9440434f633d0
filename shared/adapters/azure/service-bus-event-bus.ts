import { createHash } from "node:crypto";
import type {
  CorrelationRuleFilter,
  ServiceBusClient,
  ServiceBusMessage,
  ServiceBusReceivedMessage,
  ServiceBusReceiver,
  ServiceBusRuleManager,
  ServiceBusSender,
  SqlRuleFilter,
} from "@azure/service-bus";
import { AgentryError, DependencyError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { EventBus, EventHandler, EventPattern } from "#shared/ports/event-bus";
import { describeError } from "./errors.ts";

export interface ServiceBusEventBusOptions {
  readonly client: ServiceBusClient;
  /** The topic every event is published to. */
  readonly topic: string;
  /**
   * This node's subscription on the topic. Each in-process subscription adds one rule to it (a
   * correlation filter, or an SQL filter for a pattern with several values) and removes it when the
   * last handler for that pattern unsubscribes. Omit it for a publish-only node.
   */
  readonly subscription?: string;
  /** Messages handled at once from the subscription. @default 10 */
  readonly prefetch?: number;
  readonly logger?: {
    warn(message: string, extra?: Record<string, unknown>): void;
    error(message: string, extra?: Record<string, unknown>): void;
  };
}

/** An event pattern the Service Bus mapping cannot express as a rule (only exact values are). */
export class UnsupportedEventPatternError extends AgentryError {
  constructor(pattern: EventPattern, reason: string) {
    super(`event pattern ${JSON.stringify(pattern)} cannot be a Service Bus rule: ${reason}`, {
      code: "unsupported_event_pattern",
      statusCode: 500,
    });
    this.name = "UnsupportedEventPatternError";
  }
}

/** Application properties every published event carries, for rules to filter on. */
export const EventProperty = {
  source: "source",
  detailType: "detailType",
  /** `detail_<field>`: each string, number or boolean field of the event's detail. */
  detailPrefix: "detail_",
} as const;

/** A pattern as exact-value lists: property name → accepted values. */
type Criteria = ReadonlyMap<string, readonly (string | number | boolean)[]>;

interface Rule {
  readonly name: string;
  readonly criteria: Criteria;
  readonly handlers: Set<EventHandler>;
}

const MAX_SCALAR_LENGTH = 256;

/**
 * Agent messaging (and any EventBus use) on a Service Bus topic. `publish` sends each event as one
 * message (message id = event id, so duplicate detection drops a repeated publish; subject = its
 * detail-type; the detail's scalar fields as application properties; an agent message's ttl as the
 * message's time to live). `subscribe` turns the EventBridge pattern into a rule on this node's
 * subscription — a correlation filter on the recipient for an agent's inbox — and dispatches what the
 * subscription receives to the matching handlers; a handler that throws gets the message again
 * (abandon), up to the subscription's max delivery count, then it is dead-lettered.
 *
 * @example
 * const bus = new ServiceBusEventBus({ client, topic: "agentry-messages", subscription: "node-1" });
 * const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
 * messaging.subscribe("summarizer-1", async (message) => handle(message));
 * // on shutdown
 * await bus.close();
 */
export class ServiceBusEventBus implements EventBus {
  private readonly client: ServiceBusClient;
  /** The topic events are published to. */
  readonly topic: string;
  private readonly subscription: string | undefined;
  private readonly prefetch: number;
  private readonly logger: ServiceBusEventBusOptions["logger"];
  private readonly rules = new Map<string, Rule>();
  private sender: ServiceBusSender | undefined;
  private ruleManager: ServiceBusRuleManager | undefined;
  private receiver: ServiceBusReceiver | undefined;
  /** Rule changes in order; publish waits for them, so this node's own subscribers see its sends. */
  private ruleChanges: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();
  private receiving: { close(): Promise<void> } | undefined;
  private readonly deliveries = new Set<Promise<void>>();

  constructor(options: ServiceBusEventBusOptions) {
    this.client = options.client;
    this.topic = options.topic;
    this.subscription = options.subscription;
    this.prefetch = options.prefetch ?? 10;
    this.logger = options.logger;
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.ruleChanges;
    this.sender ??= this.client.createSender(this.topic);
    const sender = this.sender;
    const messages = events.map(toServiceBusMessage);
    try {
      let batch = await sender.createMessageBatch();
      for (const message of messages) {
        if (batch.tryAddMessage(message)) continue;
        if (batch.count === 0) {
          throw new DependencyError(
            `event ${String(message.messageId)} is larger than the topic's max message size`,
          );
        }
        await sender.sendMessages(batch);
        batch = await sender.createMessageBatch();
        if (!batch.tryAddMessage(message)) {
          throw new DependencyError(
            `event ${String(message.messageId)} is larger than the topic's max message size`,
          );
        }
      }
      if (batch.count > 0) await sender.sendMessages(batch);
    } catch (error) {
      if (error instanceof AgentryError) throw error;
      throw new DependencyError(
        `Service Bus publish to ${this.topic} failed: ${describeError(error)}`,
        error,
      );
    }
  }

  subscribe(pattern: EventPattern, handler: EventHandler): () => void {
    if (this.subscription === undefined) {
      throw new DependencyError("this ServiceBusEventBus has no subscription: it can only publish");
    }
    const criteria = criteriaOf(pattern);
    const name = ruleName(criteria);
    let rule = this.rules.get(name);
    if (rule === undefined) {
      rule = { name, criteria, handlers: new Set() };
      this.rules.set(name, rule);
      const filter = filterOf(criteria);
      this.changeRules(async (manager) => {
        try {
          await manager.createRule(name, filter);
        } catch (error) {
          // Left by an earlier run of this node: the same name is the same filter.
          if ((error as { code?: string }).code !== "MessagingEntityAlreadyExists") throw error;
        }
      });
      this.startReceiving();
    }
    rule.handlers.add(handler);
    const current = rule;
    return () => {
      if (!current.handlers.delete(handler) || current.handlers.size > 0) return;
      this.rules.delete(name);
      this.changeRules((manager) => manager.deleteRule(name));
    };
  }

  /** Resolves when the deliveries in progress have finished. */
  async idle(): Promise<void> {
    while (this.deliveries.size > 0) await Promise.allSettled([...this.deliveries]);
  }

  /** Stops receiving, waits for running handlers, removes this node's rules, closes its links. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.receiving?.close();
    await this.idle();
    for (const name of [...this.rules.keys()]) this.changeRules((manager) => manager.deleteRule(name));
    this.rules.clear();
    await this.ruleChanges;
    await Promise.allSettled([this.sender?.close(), this.receiver?.close()]);
  }

  private changeRules(change: (manager: ServiceBusRuleManager) => Promise<void>): void {
    const subscription = this.subscription as string;
    this.ruleChanges = this.ruleChanges.then(async () => {
      this.ruleManager ??= this.client.createRuleManager(this.topic, subscription);
      try {
        await change(this.ruleManager);
      } catch (error) {
        this.logger?.error("Service Bus rule change failed", { error: describeError(error) });
      }
    });
  }

  private startReceiving(): void {
    if (this.receiving !== undefined || this.stopping.signal.aborted) return;
    const receiver = this.client.createReceiver(this.topic, this.subscription as string, {
      receiveMode: "peekLock",
      maxAutoLockRenewalDurationInMs: 0,
    });
    this.receiver = receiver;
    // Streaming: each message is handled as it arrives (a batch receive would wait for more).
    this.receiving = receiver.subscribe(
      {
        processMessage: async (message) => {
          const delivery = this.deliver(receiver, message);
          this.deliveries.add(delivery);
          try {
            await delivery;
          } finally {
            this.deliveries.delete(delivery);
          }
        },
        processError: async ({ error }) => {
          this.logger?.error("Service Bus receive failed", { error: describeError(error) });
        },
      },
      { autoCompleteMessages: false, maxConcurrentCalls: this.prefetch },
    );
  }

  /** Runs every matching handler; all succeeded → complete, any threw → abandon (delivered again). */
  private async deliver(receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage): Promise<void> {
    const event = message.body as BusEvent;
    const handlers = [...this.rules.values()]
      .filter((rule) => matches(rule.criteria, event))
      .flatMap((rule) => [...rule.handlers]);
    const results = await Promise.allSettled(handlers.map(async (handler) => handler(event)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    try {
      if (failed === undefined) await receiver.completeMessage(message);
      else {
        this.logger?.warn("event handler failed; the event is delivered again", {
          id: event?.id,
          error: failed.reason instanceof Error ? failed.reason.message : String(failed.reason),
        });
        await receiver.abandonMessage(message);
      }
    } catch (error) {
      // The lock is gone: Service Bus delivers the message again; handlers drop what they took.
      this.logger?.warn("could not settle an event message", { id: event?.id, error: describeError(error) });
    }
  }
}

function toServiceBusMessage(event: BusEvent): ServiceBusMessage {
  const properties: Record<string, string | number | boolean> = {
    [EventProperty.source]: event.source,
    [EventProperty.detailType]: event["detail-type"],
  };
  const detail = (event.detail ?? {}) as Record<string, unknown>;
  for (const [field, value] of Object.entries(detail)) {
    if (typeof value === "number" || typeof value === "boolean")
      properties[`${EventProperty.detailPrefix}${field}`] = value;
    else if (typeof value === "string" && value.length <= MAX_SCALAR_LENGTH) {
      properties[`${EventProperty.detailPrefix}${field}`] = value;
    }
  }
  const ttlMs = timeToLive(detail);
  return {
    body: event,
    contentType: "application/json",
    messageId: event.id,
    subject: event["detail-type"],
    ...(typeof detail.correlationId === "string" ? { correlationId: detail.correlationId } : {}),
    applicationProperties: properties,
    ...(ttlMs !== undefined ? { timeToLive: ttlMs } : {}),
  };
}

/** An agent message's remaining ttl: Service Bus then never delivers it once it has run out. */
function timeToLive(detail: Record<string, unknown>): number | undefined {
  const { ttlSeconds, timestamp } = detail;
  if (typeof ttlSeconds !== "number" || typeof timestamp !== "string") return undefined;
  const sent = Date.parse(timestamp);
  if (!Number.isFinite(sent)) return undefined;
  // Already expired: the shortest time to live Service Bus takes, so it is never delivered.
  return Math.max(1, sent + ttlSeconds * 1000 - Date.now());
}

/** The pattern as exact-value lists on the properties `toServiceBusMessage` sets. */
function criteriaOf(pattern: EventPattern): Criteria {
  const criteria = new Map<string, readonly (string | number | boolean)[]>();
  const values = (key: string, value: unknown): (string | number | boolean)[] => {
    if (
      !Array.isArray(value) ||
      value.length === 0 ||
      !value.every((v) => typeof v === "string" || typeof v === "number" || typeof v === "boolean")
    ) {
      throw new UnsupportedEventPatternError(pattern, `"${key}" must be a non-empty list of exact values`);
    }
    return value as (string | number | boolean)[];
  };
  for (const [key, value] of Object.entries(pattern)) {
    if (key === "source") criteria.set(EventProperty.source, values(key, value));
    else if (key === "detail-type") criteria.set(EventProperty.detailType, values(key, value));
    else if (key === "detail" && typeof value === "object" && value !== null && !Array.isArray(value)) {
      for (const [field, fieldValue] of Object.entries(value)) {
        criteria.set(`${EventProperty.detailPrefix}${field}`, values(`detail.${field}`, fieldValue));
      }
    } else {
      throw new UnsupportedEventPatternError(pattern, `"${key}" is not mapped (source, detail-type, detail)`);
    }
  }
  if (criteria.size === 0) throw new UnsupportedEventPatternError(pattern, "it matches everything");
  return criteria;
}

/** One value per property → a correlation filter; several → an SQL filter with IN lists. */
function filterOf(criteria: Criteria): CorrelationRuleFilter | SqlRuleFilter {
  if ([...criteria.values()].every((v) => v.length === 1)) {
    return {
      applicationProperties: Object.fromEntries(
        [...criteria].map(([name, [value]]) => [name, value as string]),
      ),
    };
  }
  const literal = (v: string | number | boolean) =>
    typeof v === "string" ? `'${v.replaceAll("'", "''")}'` : String(v);
  return {
    sqlExpression: [...criteria]
      .map(([name, list]) => `${name} IN (${list.map(literal).join(", ")})`)
      .join(" AND "),
  };
}

/** A stable name per filter (rule names are at most 50 characters). */
function ruleName(criteria: Criteria): string {
  const canonical = JSON.stringify([...criteria].sort(([a], [b]) => (a < b ? -1 : 1)));
  return `agentry-${createHash("sha256").update(canonical).digest("hex").slice(0, 40)}`;
}

function matches(criteria: Criteria, event: BusEvent): boolean {
  if (typeof event !== "object" || event === null) return false;
  const detail = (event.detail ?? {}) as Record<string, unknown>;
  for (const [name, accepted] of criteria) {
    const actual =
      name === EventProperty.source
        ? event.source
        : name === EventProperty.detailType
          ? event["detail-type"]
          : detail[name.slice(EventProperty.detailPrefix.length)];
    if (!accepted.includes(actual as string)) return false;
  }
  return true;
}
