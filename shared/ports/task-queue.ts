/** What travels in a task message. The task record is the truth; the message only points at it. */
export interface TaskMessageBody {
  readonly taskId: string;
  /** The attempt the sender expects to run next (1-based); informative, the store decides. */
  readonly attempt: number;
}

export interface OutgoingTaskMessage {
  /** Logical queue name (a capability, optionally with a priority tier suffix). */
  readonly queue: string;
  readonly body: TaskMessageBody;
  readonly delaySeconds?: number;
}

export interface ReceivedTaskMessage {
  readonly queue: string;
  readonly messageId: string;
  /** Opaque handle to settle this delivery (SQS receipt handle, Service Bus lock token). */
  readonly receiptHandle: string;
  /** The raw body: a malformed message must reach the dispatcher so it can be dead-lettered. */
  readonly body: string;
  /** How many times this message has been received, this delivery included. */
  readonly receiveCount: number;
}

/** How many messages one logical queue holds right now; SQS's counts are approximate. */
export interface QueueDepth {
  /** Ready to be received. */
  readonly available: number;
  /** Received and not yet acked (a worker holds them) or waiting out a retry backoff. */
  readonly inFlight: number;
  /** Sent with a delay that has not run out. */
  readonly delayed: number;
  /** In the queue's dead-letter queue. */
  readonly deadLettered: number;
}

export interface SendFailure {
  readonly index: number;
  readonly message: string;
}

/** One message waiting in a dead-letter queue, as `inspectDeadLetters` shows it. */
export interface DeadLetteredMessage {
  readonly messageId: string;
  /** The task the message points at, when its body names one. */
  readonly taskId?: string;
  /** Why it was dead-lettered, when the platform moved it (`deadLetter`); absent after maxReceiveCount. */
  readonly reason?: string;
  /** When it entered the dead-letter queue (ISO), when the queue says. */
  readonly deadLetteredAt?: string;
}

export interface DeadLetterPage {
  /** Messages in the dead-letter queue (approximate on SQS). */
  readonly depth: number;
  /** Up to `limit` of them; on SQS a sample, not an ordered page. */
  readonly messages: readonly DeadLetteredMessage[];
}

/**
 * What to do with one dead-lettered message during a redrive: `send` it back to its queue, `drop` it
 * (its task needs no delivery), or `keep` it in the dead-letter queue.
 */
export type RedriveDecision = "send" | "drop" | "keep";

/**
 * At-least-once task delivery with visibility (lease) semantics, one queue per capability and tier.
 * A received message stays invisible to other consumers until it is acked, its lease runs out, or it
 * is released for a later retry. A message received more than the queue's max receive count is
 * moved to the queue's dead-letter queue.
 *
 * @example
 * await queue.send([{ queue: "text-analysis", body: { taskId, attempt: 1 } }]);
 * const [message] = await queue.receive("text-analysis", { maxMessages: 10, waitSeconds: 20, visibilitySeconds: 60 });
 * await queue.ack([message]);
 */
export interface TaskQueue {
  /** Sends messages; returns the ones that could not be sent (after the adapter's own retries). */
  send(messages: readonly OutgoingTaskMessage[]): Promise<readonly SendFailure[]>;
  receive(
    queue: string,
    options: { maxMessages: number; waitSeconds: number; visibilitySeconds?: number; signal?: AbortSignal },
  ): Promise<readonly ReceivedTaskMessage[]>;
  /** Keeps the message invisible for `seconds` more from now. */
  extendLease(message: ReceivedTaskMessage, seconds: number): Promise<void>;
  /** Deletes messages that were handled. */
  ack(messages: readonly ReceivedTaskMessage[]): Promise<void>;
  /** Makes the message visible again after `delaySeconds` (backoff before the next attempt). */
  release(message: ReceivedTaskMessage, delaySeconds: number): Promise<void>;
  /** Moves the message to the dead-letter queue with a reason, and deletes it from its queue. */
  deadLetter(message: ReceivedTaskMessage, reason: string): Promise<void>;
  /**
   * Read-only counts of a queue and its dead-letter queue (dashboards, `GET /stats/queues`). Optional:
   * Service Bus counts messages only through its administration client (HTTPS, management rights),
   * which a worker's data-plane connection does not have; without it the route is not served.
   */
  depth?(queue: string): Promise<QueueDepth>;
  /**
   * Operations: the depth of a queue's dead-letter queue and up to `limit` of its messages, left in
   * place. Optional, with `redriveDeadLetters`: the Service Bus adapter does not implement them yet,
   * and `GET /dlq` / `POST /dlq/redrive` are served only where the queue does.
   */
  inspectDeadLetters?(queue: string, options: { limit: number }): Promise<DeadLetterPage>;
  /**
   * Operations: takes up to `max` messages from a queue's dead-letter queue and asks `decide` about
   * each (by the task id its body names): `send` copies it back to the queue and then deletes it,
   * `drop` deletes it, `keep` leaves it (invisible for a while on SQS, so one call sees it once).
   * Resolves with how many messages were decided.
   */
  redriveDeadLetters?(
    queue: string,
    options: { max: number; decide: (taskId: string | undefined) => Promise<RedriveDecision> },
  ): Promise<number>;
}
