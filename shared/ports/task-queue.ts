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
  retryLater(message: ReceivedTaskMessage, delaySeconds: number): Promise<void>;
  /** Moves the message to the dead-letter queue with a reason, and deletes it from its queue. */
  deadLetter(message: ReceivedTaskMessage, reason: string): Promise<void>;
  /**
   * Read-only counts of a queue and its dead-letter queue (dashboards, `GET /stats/queues`). Optional:
   * Service Bus counts messages only through its administration client (HTTPS, management rights),
   * which a worker's data-plane connection does not have; without it the route is not served.
   */
  depth?(queue: string): Promise<QueueDepth>;
}
