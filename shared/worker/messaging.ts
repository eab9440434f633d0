import {
  deliverAgentMessages,
  type MessageHandler,
  type MessagingService,
  type ReplyInput,
  type RequestOptions,
} from "#shared/core/agents/messaging-service";
import type { SendMessageInput, SendMessageResult } from "#shared/core/agents/schemas";
import type { BusEvent } from "#shared/domain/events";
import type { AgentMessage } from "#shared/domain/message";
import type { Clock } from "#shared/ports/clock";
import type { Logger } from "#shared/ports/logger";

export type { MessageHandler } from "#shared/core/agents/messaging-service";
export type { AgentMessage } from "#shared/domain/message";

/** A message an agent sends: the sender is the agent itself. */
export type OutgoingMessage = Omit<SendMessageInput, "fromAgentId">;

/** One agent's side of messaging: every call is sent from, or delivered to, `agentId`. */
export interface AgentMessenger {
  readonly agentId: string;
  /** To one registered agent (404 NotFoundError for an unknown one). */
  send(message: OutgoingMessage): Promise<SendMessageResult>;
  /** To every registered agent matching `audience` (all without one), this agent excepted. */
  broadcast(message: Omit<OutgoingMessage, "toAgentId">): Promise<SendMessageResult>;
  /** Messages to this agent, broadcasts included. Returns the unsubscribe. */
  subscribe(handler: MessageHandler): () => void;
  /** Every message of one type, whoever it is for. */
  subscribeByType(messageType: string, handler: MessageHandler): () => void;
  /** Sends and resolves with the reply (same correlationId); rejects with MessageTimeoutError. */
  request(message: OutgoingMessage, options: RequestOptions): Promise<AgentMessage>;
  /** Answers a message this agent received. */
  reply(request: AgentMessage, reply: Omit<ReplyInput, "fromAgentId">): Promise<SendMessageResult>;
}

/**
 * The worker SDK's messaging client for one agent, over a MessagingService (in process, or in a
 * long-running agent that subscribes to its own deliveries).
 *
 * @example
 * const messenger = createAgentMessenger("planner-1", runtime.messaging);
 * messenger.subscribe(async (message) => {
 *   if (message.messageType === "status?") await messenger.reply(message, { payload: { ok: true } });
 * });
 * const answer = await messenger.request(
 *   { toAgentId: "summarizer-1", messageType: "summarize", payload: { text } },
 *   { timeoutMs: 10_000 },
 * );
 */
export function createAgentMessenger(agentId: string, messaging: MessagingService): AgentMessenger {
  return {
    agentId,
    send: (message) => messaging.send({ ...message, fromAgentId: agentId }),
    broadcast: (message) => messaging.broadcast({ ...message, fromAgentId: agentId }),
    subscribe: (handler) => messaging.subscribe(agentId, handler),
    subscribeByType: (messageType, handler) => messaging.subscribeByType(messageType, handler),
    request: (message, options) => messaging.request({ ...message, fromAgentId: agentId }, options),
    reply: (request, reply) => messaging.reply(request, { ...reply, fromAgentId: agentId }),
  };
}

/**
 * An agent's message handler as the Lambda target of an EventBridge rule (for example
 * `{ "detail-type": ["Agent Message"], detail: { toAgentId: ["lambda:translator"] } }`). Expired and
 * malformed messages are dropped; a handler that throws makes the invocation fail, so EventBridge
 * retries it and finally sends it to the target's dead-letter queue.
 *
 * @example
 * // functions/agents/translator-messages.ts
 * export const handler = agentMessageHandler(async (message) => {
 *   logger.info("message", { type: message.messageType, from: message.fromAgentId });
 * });
 */
export function agentMessageHandler(
  handler: MessageHandler,
  options: { clock?: Clock; logger?: Pick<Logger, "warn"> & Partial<Pick<Logger, "debug">> } = {},
): (event: BusEvent) => Promise<void> {
  const deliver = deliverAgentMessages(handler, options);
  return async (event) => {
    await deliver(event);
  };
}
