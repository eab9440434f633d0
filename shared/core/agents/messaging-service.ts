import { createHash, randomUUID } from "node:crypto";
import { NotFoundError, PayloadTooLargeError, ValidationError } from "#shared/domain/errors";
import { type BusEvent, DetailType, EVENT_SOURCE } from "#shared/domain/events";
import { type AgentMessage, AgentMessageSchema, isMessageExpired } from "#shared/domain/message";
import { jsonByteLength } from "#shared/domain/task";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import { type Clock, systemClock } from "#shared/ports/clock";
import type { EventHandler, EventPattern, EventPublisher, EventSubscriber } from "#shared/ports/event-bus";
import type { Logger } from "#shared/ports/logger";
import { MessageTimeoutError, MessagingConfigurationError } from "./errors.ts";
import {
  BROADCAST,
  MAX_MESSAGE_BYTES,
  type MessageAudience,
  parseInput,
  type SendMessageInput,
  SendMessageInputSchema,
  type SendMessageResult,
} from "./schemas.ts";

/** Receives one delivered message. A handler that throws gets the message again (at least once). */
export type MessageHandler = (message: AgentMessage) => Promise<void> | void;

export interface MessagingServiceDeps {
  /** Resolves recipients: a direct recipient must be registered; a broadcast's audience is looked up. */
  readonly registry: AgentRegistry;
  readonly publisher: EventPublisher;
  /**
   * In-process delivery (`subscribe`, `subscribeByType`, `request`). A publish-only deployment (the
   * supervisor API on Lambda) has none; its subscribers are EventBridge rules.
   */
  readonly subscriber?: EventSubscriber;
  readonly clock?: Clock;
  readonly newId?: () => string;
  readonly logger?: Pick<Logger, "warn"> & Partial<Pick<Logger, "debug">>;
  /** How far ahead of this clock a sender's `timestamp` may be. @default 60 */
  readonly maxClockSkewSeconds?: number;
}

export interface RequestOptions {
  /** How long to wait for the reply. */
  readonly timeoutMs: number;
}

/** A reply: a message back to the requester, carrying the request's correlation id. */
export interface ReplyInput {
  /** @default the agent the request was sent to */
  readonly fromAgentId?: string;
  /** @default "reply" */
  readonly messageType?: string;
  readonly payload: AgentMessage["payload"];
  readonly headers?: Readonly<Record<string, string>>;
  readonly ttlSeconds?: number;
}

/** Longest wait for a reply: a Lambda invocation lasts at most 15 minutes. */
const MAX_REQUEST_TIMEOUT_MS = 900_000;
/** Message keys remembered per subscription to drop redeliveries. */
const REMEMBERED_DELIVERIES = 1_000;

/**
 * The EventBridge pattern that selects agent messages, optionally by recipient, type and correlation id.
 * The same pattern works as an in-process subscription and as an EventBridge rule.
 *
 * @example
 * agentMessagePattern({ toAgentId: "summarizer-1" });
 * // { source: ["agentry"], "detail-type": ["Agent Message"], detail: { toAgentId: ["summarizer-1"] } }
 */
export function agentMessagePattern(
  filter: { toAgentId?: string; messageType?: string; correlationId?: string } = {},
): EventPattern {
  const detail: Record<string, string[]> = {};
  if (filter.toAgentId !== undefined) detail.toAgentId = [filter.toAgentId];
  if (filter.messageType !== undefined) detail.messageType = [filter.messageType];
  if (filter.correlationId !== undefined) detail.correlationId = [filter.correlationId];
  return {
    source: [EVENT_SOURCE],
    "detail-type": [DetailType.AgentMessage],
    ...(Object.keys(detail).length > 0 ? { detail } : {}),
  };
}

/**
 * The bus event that carries one message to one recipient. Its id is `<messageId>:<toAgentId>`: a
 * broadcast is one event per recipient, each with the broadcast's message id.
 */
export function agentMessageEvent(message: AgentMessage, time: string): BusEvent<AgentMessage> {
  return {
    id: `${message.messageId}:${message.toAgentId}`,
    source: EVENT_SOURCE,
    "detail-type": DetailType.AgentMessage,
    time,
    resources: [],
    detail: message,
  };
}

/**
 * Wraps a message handler as a bus event handler: drops malformed events and expired messages (the ttl
 * is checked at delivery, however late that is), and redeliveries of a message this handler already
 * took (remembered for the last 1,000 messages; delivery is at least once, so handlers should still be
 * idempotent). A handler that throws is not remembered, so the bus's retry reaches it again.
 *
 * Lambda targets of EventBridge rules use it too (shared/worker/messaging.ts).
 *
 * @example
 * bus.subscribe(agentMessagePattern({ toAgentId }), deliverAgentMessages(async (message) => handle(message)));
 */
export function deliverAgentMessages(
  handler: MessageHandler,
  options: { clock?: Clock; logger?: Pick<Logger, "warn"> & Partial<Pick<Logger, "debug">> } = {},
): EventHandler {
  const clock = options.clock ?? systemClock;
  const taken = new Set<string>();
  return async (event) => {
    const parsed = AgentMessageSchema.safeParse(event.detail);
    if (!parsed.success) {
      options.logger?.warn("dropped a malformed agent message", { eventId: event.id });
      return;
    }
    const message = parsed.data;
    if (isMessageExpired(message, clock.now())) {
      options.logger?.debug?.("dropped an expired agent message", {
        messageId: message.messageId,
        toAgentId: message.toAgentId,
      });
      return;
    }
    // The content is part of the key: a message id reused with another payload is another message, and
    // is delivered, rather than being taken for a redelivery of the first one.
    const key = `${message.messageId}:${message.toAgentId}:${messageDigest(message)}`;
    if (taken.has(key)) return;
    await handler(message);
    taken.add(key);
    if (taken.size > REMEMBERED_DELIVERIES) taken.delete(taken.values().next().value ?? key);
  };
}

/**
 * Agent-to-agent messaging over the event bus (detail-type "Agent Message"): direct messages, broadcasts
 * to an audience resolved against the registry at send time, subscriptions by recipient or by message
 * type, and request/reply correlated by `correlationId`. A message whose ttl ran out is never delivered.
 *
 * @example
 * const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
 * messaging.subscribe("summarizer-1", async (message) => {
 *   if (message.messageType === "ping") await messaging.reply(message, { payload: "pong" });
 * });
 * const reply = await messaging.request(
 *   { fromAgentId: "planner-1", toAgentId: "summarizer-1", messageType: "ping", payload: null },
 *   { timeoutMs: 5_000 },
 * );
 */
export class MessagingService {
  private readonly deps: MessagingServiceDeps;
  private readonly clock: Clock;
  private readonly newId: () => string;
  private readonly maxSkewMs: number;

  constructor(deps: MessagingServiceDeps) {
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.newId = deps.newId ?? randomUUID;
    this.maxSkewMs = (deps.maxClockSkewSeconds ?? 60) * 1000;
  }

  /**
   * Sends a message to one registered agent, or with `toAgentId: "*"` to every registered agent that
   * matches `audience` (all of them without one), except the sender. Resolves once the message is
   * published; delivery is asynchronous and at least once.
   */
  async send(input: SendMessageInput): Promise<SendMessageResult> {
    const parsed = parseInput(SendMessageInputSchema, input, "invalid message");
    const now = this.clock.now();
    if (parsed.timestamp !== undefined && Date.parse(parsed.timestamp) > now.getTime() + this.maxSkewMs) {
      throw new ValidationError("invalid message", [
        { path: "timestamp", message: "must not be in the future" },
      ]);
    }
    const message: AgentMessage = {
      messageId: parsed.messageId ?? this.newId(),
      fromAgentId: parsed.fromAgentId,
      toAgentId: parsed.toAgentId,
      messageType: parsed.messageType,
      payload: parsed.payload,
      headers: parsed.headers ?? {},
      timestamp:
        parsed.timestamp !== undefined ? new Date(parsed.timestamp).toISOString() : now.toISOString(),
      ...(parsed.correlationId !== undefined ? { correlationId: parsed.correlationId } : {}),
      ...(parsed.ttlSeconds !== undefined ? { ttlSeconds: parsed.ttlSeconds } : {}),
    };
    const bytes = jsonByteLength(message);
    if (bytes > MAX_MESSAGE_BYTES) {
      throw new PayloadTooLargeError(`message is ${bytes} bytes; the limit is ${MAX_MESSAGE_BYTES} bytes`);
    }
    // The sender is who the message says it is from: it must be a registered agent (on AWS, callers are
    // IAM principals; see docs/adr/0012-hostile-input-and-recovery.md for how they map to agents).
    if ((await this.deps.registry.get(message.fromAgentId)) === undefined) {
      throw new NotFoundError(`sender agent ${message.fromAgentId} is not registered`);
    }
    const resolved =
      message.toAgentId === BROADCAST
        ? await this.audience(parsed.audience ?? {}, message.fromAgentId)
        : [await this.recipient(message.toAgentId)];
    // A message already expired is never delivered, so it has no recipients (and is not published).
    const recipients = isMessageExpired(message, now) ? [] : resolved;
    if (recipients.length > 0) {
      const time = now.toISOString();
      await this.deps.publisher.publish(
        recipients.map((toAgentId) => agentMessageEvent({ ...message, toAgentId }, time)),
      );
    }
    return { message, recipients };
  }

  /** `send` with `toAgentId: "*"`. */
  async broadcast(
    input: Omit<SendMessageInput, "toAgentId"> & { readonly audience?: MessageAudience },
  ): Promise<SendMessageResult> {
    return this.send({ ...input, toAgentId: BROADCAST });
  }

  /** Delivers every message sent to `agentId` (broadcast copies included). Returns the unsubscribe. */
  subscribe(agentId: string, handler: MessageHandler): () => void {
    requireText(agentId, "agentId");
    return this.subscriber().subscribe(agentMessagePattern({ toAgentId: agentId }), this.delivery(handler));
  }

  /** Delivers every message of one type, whoever it is for (monitors, routers, audit). */
  subscribeByType(messageType: string, handler: MessageHandler): () => void {
    requireText(messageType, "messageType");
    return this.subscriber().subscribe(agentMessagePattern({ messageType }), this.delivery(handler));
  }

  /**
   * Sends a message to one agent and resolves with its reply: the first message back to the sender with
   * the same `correlationId` (the request's own id unless it sets one). Rejects with a
   * MessageTimeoutError when none arrives within `timeoutMs`.
   */
  async request(input: SendMessageInput, options: RequestOptions): Promise<AgentMessage> {
    if (input.toAgentId === BROADCAST) {
      throw new ValidationError("a request goes to one agent", [
        { path: "toAgentId", message: "must name one agent, not a broadcast" },
      ]);
    }
    const { timeoutMs } = options;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_REQUEST_TIMEOUT_MS) {
      throw new ValidationError("invalid request options", [
        { path: "timeoutMs", message: `must be an integer from 1 to ${MAX_REQUEST_TIMEOUT_MS}` },
      ]);
    }
    const subscriber = this.subscriber();
    const messageId = input.messageId ?? this.newId();
    const correlationId = input.correlationId ?? messageId;
    return new Promise<AgentMessage>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unsubscribe();
        outcome();
      };
      // Subscribed before sending, so a fast reply cannot slip past.
      const unsubscribe = subscriber.subscribe(
        agentMessagePattern({ toAgentId: input.fromAgentId, correlationId }),
        this.delivery((reply) => {
          if (reply.messageId !== messageId) settle(() => resolve(reply));
        }),
      );
      const timer = setTimeout(
        () => settle(() => reject(new MessageTimeoutError(correlationId, timeoutMs))),
        timeoutMs,
      );
      this.send({ ...input, messageId, correlationId }).catch((error: unknown) =>
        settle(() => reject(error)),
      );
    });
  }

  /** Answers a message: sent back to its sender with its correlation id (or its id). */
  async reply(request: AgentMessage, input: ReplyInput): Promise<SendMessageResult> {
    return this.send({
      fromAgentId: input.fromAgentId ?? request.toAgentId,
      toAgentId: request.fromAgentId,
      messageType: input.messageType ?? "reply",
      payload: input.payload,
      correlationId: request.correlationId ?? request.messageId,
      ...(input.headers !== undefined ? { headers: { ...input.headers } } : {}),
      ...(input.ttlSeconds !== undefined ? { ttlSeconds: input.ttlSeconds } : {}),
    });
  }

  private async recipient(agentId: string): Promise<string> {
    if ((await this.deps.registry.get(agentId)) === undefined) {
      throw new NotFoundError(`agent ${agentId} not found`);
    }
    return agentId;
  }

  private async audience(audience: MessageAudience, senderId: string): Promise<string[]> {
    const agents = await this.deps.registry.list({
      ...(audience.agentType !== undefined ? { agentType: audience.agentType } : {}),
      ...(audience.capability !== undefined ? { capability: audience.capability } : {}),
      ...(audience.status !== undefined ? { status: audience.status } : {}),
    });
    // A sender hears its own broadcast only if it asks itself directly.
    return agents.map((a) => a.agentId).filter((id) => id !== senderId);
  }

  private delivery(handler: MessageHandler): EventHandler {
    return deliverAgentMessages(handler, {
      clock: this.clock,
      ...(this.deps.logger !== undefined ? { logger: this.deps.logger } : {}),
    });
  }

  private subscriber(): EventSubscriber {
    if (this.deps.subscriber === undefined) {
      throw new MessagingConfigurationError(
        "this MessagingService has no subscriber: in-process delivery is not available here",
      );
    }
    return this.deps.subscriber;
  }
}

/** What makes two messages with one id different: everything but the recipient and the delivery. */
function messageDigest(message: AgentMessage): string {
  // Not the send time either: a sender that resends the same message later is retrying it.
  const { toAgentId: _to, timestamp: _sentAt, ...content } = message;
  return createHash("sha256").update(stableJson(content)).digest("base64url");
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function requireText(value: string, path: string): void {
  if (typeof value !== "string" || value.length === 0) {
    throw new ValidationError(`invalid ${path}`, [{ path, message: "must be a non-empty string" }]);
  }
}
