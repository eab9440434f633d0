import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { AgentryError, DependencyError } from "#shared/domain/errors";
import type {
  DeadLetterPage,
  OutgoingTaskMessage,
  QueueDepth,
  ReceivedTaskMessage,
  RedriveDecision,
  SendFailure,
  TaskQueue,
} from "#shared/ports/task-queue";

/** The SQS attributes `depth` reads. */
const DEPTH_ATTRIBUTES = [
  "ApproximateNumberOfMessages",
  "ApproximateNumberOfMessagesNotVisible",
  "ApproximateNumberOfMessagesDelayed",
] as const;

export interface SqsTaskQueueOptions {
  readonly client: SQSClient;
  /** Logical queue name (capability, optionally with its tier suffix) → queue URL. */
  readonly queueUrls: Readonly<Record<string, string>>;
  /** Logical queue name → URL of that queue's dead-letter queue (used by `deadLetter`). */
  readonly dlqUrls?: Readonly<Record<string, string>>;
  /** Sends of a batch entry that failed on the SQS side, the first included. @default 3 */
  readonly maxSendAttempts?: number;
  /** @default 50 */
  readonly retryBaseDelayMs?: number;
}

/** A logical queue name the adapter was not configured with. */
export class UnknownQueueError extends AgentryError {
  constructor(queue: string, known: readonly string[], kind = "queue") {
    super(`unknown ${kind} "${queue}"; configured: ${known.length > 0 ? known.join(", ") : "none"}`, {
      code: "unknown_queue",
      statusCode: 500,
    });
    this.name = "UnknownQueueError";
  }
}

/** The message's lease is gone: it was settled, or its visibility ran out and it was received again. */
export class MessageNotInFlightError extends AgentryError {
  constructor(messageId: string, cause?: unknown) {
    super(`message ${messageId} is no longer in flight with this receipt handle`, {
      code: "message_not_inflight",
      statusCode: 409,
      cause,
    });
    this.name = "MessageNotInFlightError";
  }
}

const SQS_BATCH_LIMIT = 10;
const MAX_WAIT_SECONDS = 20;
const MAX_VISIBILITY_SECONDS = 43_200;
const MAX_DELAY_SECONDS = 900;
const MAX_REASON_LENGTH = 1024;
const REDRIVE_VISIBILITY_SECONDS = 60;
/** Body fields copied into message attributes, so tracing and tooling need not parse the body. */
const TRACE_FIELDS = ["traceparent", "tracestate"] as const;
const NOT_IN_FLIGHT_ERRORS = new Set([
  "MessageNotInflight",
  "ReceiptHandleIsInvalid",
  "InvalidParameterValue",
]);

interface IndexedMessage {
  readonly index: number;
  readonly message: OutgoingTaskMessage;
}

/**
 * The TaskQueue on SQS standard queues, one queue (with its DLQ) per logical name. Sends go out in
 * batches of 10; entries SQS failed on its side are sent again a few times, then reported. The lease
 * of a received message is its visibility timeout: extendLease and release change it, ack deletes
 * in batches of 10, and deadLetter copies the body to the DLQ with a `reason` attribute before
 * deleting it. Receiving more than the queue's maxReceiveCount is redriven to the DLQ by SQS itself.
 *
 * @example
 * const queue = new SqsTaskQueue({
 *   client: new SQSClient({}),
 *   queueUrls: { diagnostics: "https://sqs.eu-west-1.amazonaws.com/123456789012/agentry-diagnostics" },
 *   dlqUrls: { diagnostics: "https://sqs.eu-west-1.amazonaws.com/123456789012/agentry-diagnostics-dlq" },
 * });
 * await queue.send([{ queue: "diagnostics", body: { taskId, attempt: 1 } }]);
 */
export class SqsTaskQueue implements TaskQueue {
  private readonly client: SQSClient;
  private readonly queueUrls: Readonly<Record<string, string>>;
  private readonly dlqUrls: Readonly<Record<string, string>>;
  private readonly maxSendAttempts: number;
  private readonly retryBaseDelayMs: number;

  constructor(options: SqsTaskQueueOptions) {
    this.client = options.client;
    this.queueUrls = { ...options.queueUrls };
    this.dlqUrls = { ...(options.dlqUrls ?? {}) };
    this.maxSendAttempts = Math.max(1, options.maxSendAttempts ?? 3);
    this.retryBaseDelayMs = Math.max(0, options.retryBaseDelayMs ?? 50);
  }

  /** The URL behind a logical queue name. */
  queueUrlOf(queue: string): string {
    const url = Object.hasOwn(this.queueUrls, queue) ? this.queueUrls[queue] : undefined;
    if (url === undefined) throw new UnknownQueueError(queue, Object.keys(this.queueUrls));
    return url;
  }

  /** The URL of a logical queue's dead-letter queue. */
  deadLetterQueueUrlOf(queue: string): string {
    const url = Object.hasOwn(this.dlqUrls, queue) ? this.dlqUrls[queue] : undefined;
    if (url === undefined)
      throw new UnknownQueueError(queue, Object.keys(this.dlqUrls), "dead-letter queue for");
    return url;
  }

  async send(messages: readonly OutgoingTaskMessage[]): Promise<readonly SendFailure[]> {
    const byQueue = new Map<string, IndexedMessage[]>();
    messages.forEach((message, index) => {
      const url = this.queueUrlOf(message.queue);
      const group = byQueue.get(url) ?? [];
      group.push({ index, message });
      byQueue.set(url, group);
    });
    const batches: Promise<SendFailure[]>[] = [];
    for (const [url, group] of byQueue) {
      for (let start = 0; start < group.length; start += SQS_BATCH_LIMIT) {
        batches.push(this.sendBatch(url, group.slice(start, start + SQS_BATCH_LIMIT)));
      }
    }
    return (await Promise.all(batches)).flat().sort((a, b) => a.index - b.index);
  }

  async receive(
    queue: string,
    options: { maxMessages: number; waitSeconds: number; visibilitySeconds?: number; signal?: AbortSignal },
  ): Promise<readonly ReceivedTaskMessage[]> {
    const url = this.queueUrlOf(queue);
    if (options.signal?.aborted) return [];
    try {
      const output = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: clamp(Math.floor(options.maxMessages), 1, SQS_BATCH_LIMIT),
          WaitTimeSeconds: clamp(Math.floor(options.waitSeconds), 0, MAX_WAIT_SECONDS),
          ...(options.visibilitySeconds === undefined
            ? {}
            : { VisibilityTimeout: clamp(Math.ceil(options.visibilitySeconds), 0, MAX_VISIBILITY_SECONDS) }),
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
          MessageAttributeNames: ["All"],
        }),
        options.signal ? { abortSignal: options.signal } : {},
      );
      return (output.Messages ?? []).flatMap((message) =>
        message.MessageId === undefined || message.ReceiptHandle === undefined
          ? []
          : [
              {
                queue,
                messageId: message.MessageId,
                receiptHandle: message.ReceiptHandle,
                body: message.Body ?? "",
                receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? "1"),
              },
            ],
      );
    } catch (error) {
      if (options.signal?.aborted) return [];
      throw error;
    }
  }

  async extendLease(message: ReceivedTaskMessage, seconds: number): Promise<void> {
    await this.changeVisibility(message, seconds);
  }

  async ack(messages: readonly ReceivedTaskMessage[]): Promise<void> {
    const byQueue = new Map<string, ReceivedTaskMessage[]>();
    for (const message of messages) {
      const url = this.queueUrlOf(message.queue);
      byQueue.set(url, [...(byQueue.get(url) ?? []), message]);
    }
    const failures: string[] = [];
    const batches: Promise<void>[] = [];
    for (const [url, group] of byQueue) {
      for (let start = 0; start < group.length; start += SQS_BATCH_LIMIT) {
        const batch = group.slice(start, start + SQS_BATCH_LIMIT);
        batches.push(this.deleteBatch(url, batch).then((failed) => void failures.push(...failed)));
      }
    }
    await Promise.all(batches);
    if (failures.length > 0) {
      throw new DependencyError(
        `SQS could not delete ${failures.length} of ${messages.length} messages: ${failures.join("; ")}`,
      );
    }
  }

  async release(message: ReceivedTaskMessage, delaySeconds: number): Promise<void> {
    await this.changeVisibility(message, delaySeconds);
  }

  async deadLetter(message: ReceivedTaskMessage, reason: string): Promise<void> {
    const sourceUrl = this.queueUrlOf(message.queue);
    const deadLetterUrl = this.deadLetterQueueUrlOf(message.queue);
    const attributes: Record<string, MessageAttributeValue> = {
      reason: stringAttribute(truncate(reason.length > 0 ? reason : "unspecified", MAX_REASON_LENGTH)),
      sourceQueue: stringAttribute(message.queue),
      originalMessageId: stringAttribute(message.messageId),
      receiveCount: { DataType: "Number", StringValue: String(message.receiveCount) },
    };
    const taskId = parseTaskId(message.body);
    if (taskId !== undefined) attributes.taskId = stringAttribute(taskId);
    // Copy first, delete second: a crash in between leaves a duplicate, never a loss.
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: deadLetterUrl,
        MessageBody: message.body,
        MessageAttributes: attributes,
      }),
    );
    await this.client.send(
      new DeleteMessageCommand({ QueueUrl: sourceUrl, ReceiptHandle: message.receiptHandle }),
    );
  }

  async depth(queue: string): Promise<QueueDepth> {
    const url = this.queueUrlOf(queue);
    const deadLetterUrl = Object.hasOwn(this.dlqUrls, queue) ? this.dlqUrls[queue] : undefined;
    const [counts, deadLettered] = await Promise.all([
      this.approximateCounts(url),
      deadLetterUrl === undefined ? undefined : this.approximateCounts(deadLetterUrl),
    ]);
    return {
      available: counts.ApproximateNumberOfMessages,
      inFlight: counts.ApproximateNumberOfMessagesNotVisible,
      delayed: counts.ApproximateNumberOfMessagesDelayed,
      deadLettered: deadLettered?.ApproximateNumberOfMessages ?? 0,
    };
  }

  private async approximateCounts(url: string): Promise<Record<(typeof DEPTH_ATTRIBUTES)[number], number>> {
    try {
      const { Attributes = {} } = await this.client.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [...DEPTH_ATTRIBUTES] }),
      );
      const count = (name: (typeof DEPTH_ATTRIBUTES)[number]) => Number(Attributes[name] ?? 0) || 0;
      return {
        ApproximateNumberOfMessages: count("ApproximateNumberOfMessages"),
        ApproximateNumberOfMessagesNotVisible: count("ApproximateNumberOfMessagesNotVisible"),
        ApproximateNumberOfMessagesDelayed: count("ApproximateNumberOfMessagesDelayed"),
      };
    } catch (error) {
      throw new DependencyError(`reading the depth of ${url} failed`, error);
    }
  }

  /**
   * Depth from the DLQ's `ApproximateNumberOfMessages`; the messages are a sample received with a zero
   * visibility timeout, so they stay where they are (SQS has no peek and no ordered listing).
   */
  async inspectDeadLetters(queue: string, options: { limit: number }): Promise<DeadLetterPage> {
    const url = this.deadLetterQueueUrlOf(queue);
    const attributes = await this.client.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages"] }),
    );
    const depth = Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0);
    if (depth === 0 || options.limit < 1) return { depth, messages: [] };
    const received = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: clamp(options.limit, 1, SQS_BATCH_LIMIT),
        VisibilityTimeout: 0,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["SentTimestamp"],
      }),
    );
    return {
      depth,
      messages: (received.Messages ?? []).map((message) => {
        const taskId = parseTaskId(message.Body ?? "");
        const reason = message.MessageAttributes?.reason?.StringValue;
        const sent = Number(message.Attributes?.SentTimestamp);
        return {
          messageId: message.MessageId ?? "",
          ...(taskId !== undefined ? { taskId } : {}),
          ...(reason !== undefined ? { reason } : {}),
          ...(Number.isFinite(sent) && sent > 0 ? { deadLetteredAt: new Date(sent).toISOString() } : {}),
        };
      }),
    };
  }

  /** Copy back first, delete second: a crash in between leaves a duplicate (which the claim absorbs), never a loss. */
  async redriveDeadLetters(
    queue: string,
    options: { max: number; decide: (taskId: string | undefined) => Promise<RedriveDecision> },
  ): Promise<number> {
    const deadLetterUrl = this.deadLetterQueueUrlOf(queue);
    const sourceUrl = this.queueUrlOf(queue);
    let decided = 0;
    while (decided < options.max) {
      const received = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: deadLetterUrl,
          MaxNumberOfMessages: clamp(options.max - decided, 1, SQS_BATCH_LIMIT),
          // Kept messages stay invisible for the rest of this redrive, so each is decided once.
          VisibilityTimeout: REDRIVE_VISIBILITY_SECONDS,
          WaitTimeSeconds: 0,
        }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) break;
      for (const message of messages) {
        decided++;
        const decision = await options.decide(parseTaskId(message.Body ?? ""));
        if (decision === "keep") continue;
        if (decision === "send") {
          await this.client.send(
            new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: message.Body ?? "" }),
          );
        }
        await this.client.send(
          new DeleteMessageCommand({ QueueUrl: deadLetterUrl, ReceiptHandle: message.ReceiptHandle ?? "" }),
        );
      }
    }
    return decided;
  }

  private async changeVisibility(message: ReceivedTaskMessage, seconds: number): Promise<void> {
    try {
      await this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.queueUrlOf(message.queue),
          ReceiptHandle: message.receiptHandle,
          VisibilityTimeout: clamp(Math.ceil(seconds), 0, MAX_VISIBILITY_SECONDS),
        }),
      );
    } catch (error) {
      const name = error instanceof Error ? error.name : undefined;
      if (name !== undefined && NOT_IN_FLIGHT_ERRORS.has(name.replace(/^AWS\.SimpleQueueService\./, ""))) {
        throw new MessageNotInFlightError(message.messageId, error);
      }
      throw error;
    }
  }

  /** Sends one batch of ≤ 10; returns the entries that still failed after the retries. */
  private async sendBatch(url: string, batch: readonly IndexedMessage[]): Promise<SendFailure[]> {
    let pending = batch;
    const failures: SendFailure[] = [];
    for (let attempt = 1; pending.length > 0; attempt++) {
      const last = attempt >= this.maxSendAttempts;
      let retry: { entry: IndexedMessage; message: string }[] = [];
      try {
        const output = await this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: pending.map(({ index, message }) => ({
              Id: String(index),
              MessageBody: JSON.stringify(message.body),
              ...(message.delaySeconds && message.delaySeconds > 0
                ? { DelaySeconds: clamp(Math.ceil(message.delaySeconds), 0, MAX_DELAY_SECONDS) }
                : {}),
              MessageAttributes: messageAttributes(message),
            })),
          }),
        );
        for (const failed of output.Failed ?? []) {
          const entry = pending.find((p) => String(p.index) === failed.Id);
          if (!entry) continue;
          const description = `${failed.Code ?? "error"}: ${failed.Message ?? "SQS did not accept the message"}`;
          // A sender fault (bad attributes, too large) fails the same way every time.
          if (failed.SenderFault) failures.push({ index: entry.index, message: description });
          else retry.push({ entry, message: description });
        }
      } catch (error) {
        const description = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        retry = pending.map((entry) => ({ entry, message: description }));
      }
      if (last || retry.length === 0) {
        failures.push(...retry.map(({ entry, message }) => ({ index: entry.index, message })));
        break;
      }
      pending = retry.map(({ entry }) => entry);
      await backoff(attempt, this.retryBaseDelayMs);
    }
    return failures;
  }

  /** Deletes one batch of ≤ 10; returns descriptions of the deletes that still failed. */
  private async deleteBatch(url: string, batch: readonly ReceivedTaskMessage[]): Promise<string[]> {
    let pending = batch.map((message, index) => ({ id: String(index), message }));
    for (let attempt = 1; ; attempt++) {
      const output = await this.client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: pending.map(({ id, message }) => ({ Id: id, ReceiptHandle: message.receiptHandle })),
        }),
      );
      const failed = output.Failed ?? [];
      const retryable = failed.filter((f) => !f.SenderFault);
      if (failed.length === 0) return [];
      if (retryable.length === failed.length && attempt < this.maxSendAttempts) {
        const ids = new Set(retryable.map((f) => f.Id));
        pending = pending.filter((p) => ids.has(p.id));
        await backoff(attempt, this.retryBaseDelayMs);
        continue;
      }
      return failed.map((f) => {
        const messageId = pending.find((p) => p.id === f.Id)?.message.messageId ?? f.Id;
        return `${messageId} (${f.Code ?? "error"}: ${f.Message ?? "not deleted"})`;
      });
    }
  }
}

function messageAttributes(message: OutgoingTaskMessage): Record<string, MessageAttributeValue> {
  const body = message.body as unknown as Record<string, unknown>;
  const attributes: Record<string, MessageAttributeValue> = {};
  if (typeof body !== "object" || body === null) return attributes;
  if (typeof body.taskId === "string" && body.taskId.length > 0)
    attributes.taskId = stringAttribute(body.taskId);
  if (typeof body.attempt === "number" && Number.isFinite(body.attempt)) {
    attributes.attempt = { DataType: "Number", StringValue: String(body.attempt) };
  }
  for (const field of TRACE_FIELDS) {
    const value = body[field];
    if (typeof value === "string" && value.length > 0) attributes[field] = stringAttribute(value);
  }
  return attributes;
}

function parseTaskId(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === "object" && parsed !== null && "taskId" in parsed) {
      const { taskId } = parsed;
      if (typeof taskId === "string" && taskId.length > 0) return taskId;
    }
  } catch {
    // a malformed body has no task id
  }
  return undefined;
}

function stringAttribute(value: string): MessageAttributeValue {
  return { DataType: "String", StringValue: value };
}

function truncate(value: string, length: number): string {
  return value.length <= length ? value : `${value.slice(0, length - 1)}…`;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Number.isFinite(value) ? value : min));
}

function backoff(attempt: number, baseDelayMs: number): Promise<void> {
  const ceiling = Math.min(2000, baseDelayMs * 2 ** (attempt - 1));
  return new Promise((resolve) => setTimeout(resolve, Math.round(ceiling * Math.random())));
}
