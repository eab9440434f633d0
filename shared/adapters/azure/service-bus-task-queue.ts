import type {
  ServiceBusClient,
  ServiceBusMessage,
  ServiceBusMessageBatch,
  ServiceBusReceivedMessage,
  ServiceBusReceiver,
  ServiceBusSender,
} from "@azure/service-bus";
import { DependencyError } from "#shared/domain/errors";
import type {
  OutgoingTaskMessage,
  ReceivedTaskMessage,
  SendFailure,
  TaskQueue,
} from "#shared/ports/task-queue";
import {
  describeError,
  isTransient,
  ServiceBusLeaseLostError,
  settlementError,
  UnknownServiceBusEntityError,
} from "./errors.ts";

export interface ServiceBusTaskQueueOptions {
  readonly client: ServiceBusClient;
  /** Logical queue name (capability, optionally with its tier suffix) → Service Bus queue name. */
  readonly queues: Readonly<Record<string, string>>;
  /**
   * The queues' max delivery count. Service Bus enforces it per message; a scheduled retry is a new
   * message, so the adapter carries the count over and dead-letters past it itself.
   */
  readonly maxDeliveryCount: number;
  /** The queues' lock duration: a longer lease is kept by renewing the lock. @default 60 */
  readonly lockDurationSeconds?: number;
  /** Sends of a batch that failed with a transient fault, the first included. @default 3 */
  readonly maxSendAttempts?: number;
  /** @default 50 */
  readonly retryBaseDelayMs?: number;
}

/** Application properties the adapter sets (besides the task id, attempt and trace context). */
export const ServiceBusProperty = {
  /** The message id the port reports: the first send's id, kept across scheduled retries. */
  logicalMessageId: "agentry-message-id",
  /** Deliveries of earlier copies of this message (scheduled retries), counted against the limit. */
  priorDeliveries: "agentry-prior-deliveries",
  sourceQueue: "agentry-source-queue",
} as const;

const MAX_WAIT_SECONDS = 60;
/**
 * A receive never waits less. Service Bus has no short poll: every receive grants credit and waits;
 * a zero wait would drain the link before the broker's transfer could arrive.
 */
const MIN_WAIT_MS = 300;
const MAX_REASON_LENGTH = 4096;
const TRACE_FIELDS = ["traceparent", "tracestate"] as const;

interface InFlight {
  readonly message: ServiceBusReceivedMessage;
  readonly receiver: ServiceBusReceiver;
  readonly logicalId: string;
  readonly receiveCount: number;
  leaseTimer?: NodeJS.Timeout;
  renewTimer?: NodeJS.Timeout;
}

/**
 * The TaskQueue on Azure Service Bus queues, one per logical name (capability and tier), through the
 * real `@azure/service-bus` client. Sends go out in `createMessageBatch` batches (the entity's max
 * message size decides how many fit); the message id is `<taskId>:<attempt>`, so duplicate detection
 * drops a send repeated within the queue's window. Receives are peek-lock; the port's lease is the
 * lock: a lease shorter than the lock duration ends with an abandon, a longer one is kept by renewing
 * the lock. `ack` completes, `deadLetter` dead-letters with reason and description, and `release`
 * schedules a copy (`scheduledEnqueueTimeUtc`) and completes the original, since Service Bus has no
 * "abandon with delay" — the copy carries the logical id and the deliveries so far.
 *
 * @example
 * const queue = new ServiceBusTaskQueue({
 *   client: new ServiceBusClient(process.env.AZURE_SERVICE_BUS_CONNECTION_STRING ?? ""),
 *   queues: { diagnostics: "agentry-diagnostics", "diagnostics-high": "agentry-diagnostics-high" },
 *   maxDeliveryCount: 5,
 * });
 * await queue.send([{ queue: "diagnostics", body: { taskId, attempt: 1 } }]);
 * const [message] = await queue.receive("diagnostics", { maxMessages: 10, waitSeconds: 20, visibilitySeconds: 60 });
 * if (message) await queue.ack([message]);
 */
export class ServiceBusTaskQueue implements TaskQueue {
  private readonly client: ServiceBusClient;
  private readonly queues: Record<string, string>;
  private readonly maxDeliveryCount: number;
  private readonly lockDurationMs: number;
  private readonly maxSendAttempts: number;
  private readonly retryBaseDelayMs: number;
  private readonly senders = new Map<string, ServiceBusSender>();
  /** Idle receivers per entity: the SDK refuses concurrent receives on one receiver. */
  private readonly idleReceivers = new Map<string, ServiceBusReceiver[]>();
  private readonly receivers = new Set<ServiceBusReceiver>();
  private readonly inFlight = new Map<string, InFlight>();

  constructor(options: ServiceBusTaskQueueOptions) {
    this.client = options.client;
    this.queues = { ...options.queues };
    this.maxDeliveryCount = options.maxDeliveryCount;
    this.lockDurationMs = (options.lockDurationSeconds ?? 60) * 1000;
    this.maxSendAttempts = Math.max(1, options.maxSendAttempts ?? 3);
    this.retryBaseDelayMs = Math.max(0, options.retryBaseDelayMs ?? 50);
  }

  /** Maps one more logical name (an agent's inbox queue, created with the agent) to its queue. */
  addQueue(logical: string, entity: string): void {
    this.queues[logical] = entity;
  }

  /** The Service Bus queue behind a logical queue name. */
  entityOf(queue: string): string {
    const entity = Object.hasOwn(this.queues, queue) ? this.queues[queue] : undefined;
    if (entity === undefined) throw new UnknownServiceBusEntityError(queue, Object.keys(this.queues));
    return entity;
  }

  async send(messages: readonly OutgoingTaskMessage[]): Promise<readonly SendFailure[]> {
    const byEntity = new Map<string, { index: number; message: OutgoingTaskMessage }[]>();
    messages.forEach((message, index) => {
      const entity = this.entityOf(message.queue);
      byEntity.set(entity, [...(byEntity.get(entity) ?? []), { index, message }]);
    });
    const results = await Promise.all(
      [...byEntity].map(([entity, group]) =>
        this.sendGroup(
          entity,
          group.map(({ index, message }) => ({ index, message: toServiceBusMessage(message) })),
        ),
      ),
    );
    return results.flat().sort((a, b) => a.index - b.index);
  }

  async receive(
    queue: string,
    options: { maxMessages: number; waitSeconds: number; visibilitySeconds?: number; signal?: AbortSignal },
  ): Promise<readonly ReceivedTaskMessage[]> {
    const entity = this.entityOf(queue);
    if (options.signal?.aborted) return [];
    const receiver = this.takeReceiver(entity);
    let received: ServiceBusReceivedMessage[];
    try {
      received = await receiver.receiveMessages(Math.max(1, Math.floor(options.maxMessages)), {
        maxWaitTimeInMs: Math.max(MIN_WAIT_MS, Math.min(MAX_WAIT_SECONDS, options.waitSeconds) * 1000),
        ...(options.signal ? { abortSignal: options.signal } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted) return [];
      throw new DependencyError(`Service Bus receive from ${entity} failed: ${describeError(error)}`, error);
    } finally {
      this.returnReceiver(entity, receiver);
    }
    const leaseMs =
      options.visibilitySeconds === undefined
        ? this.lockDurationMs
        : Math.max(0, options.visibilitySeconds) * 1000;
    const delivered: ReceivedTaskMessage[] = [];
    for (const message of received) {
      const lockToken = message.lockToken;
      if (lockToken === undefined) continue;
      const properties = message.applicationProperties ?? {};
      const prior = Number(properties[ServiceBusProperty.priorDeliveries] ?? 0);
      const logicalId = String(
        properties[ServiceBusProperty.logicalMessageId] ?? message.messageId ?? lockToken,
      );
      // The SDK reports the deliveries before this one; the port counts this one too.
      const receiveCount = (Number.isFinite(prior) ? prior : 0) + (message.deliveryCount ?? 0) + 1;
      const flight: InFlight = { message, receiver, logicalId, receiveCount };
      this.inFlight.set(lockToken, flight);
      const port: ReceivedTaskMessage = {
        queue,
        messageId: logicalId,
        receiptHandle: lockToken,
        body: bodyText(message.body),
        receiveCount,
      };
      if (receiveCount > this.maxDeliveryCount) {
        // Only a scheduled copy gets here: Service Bus dead-letters the original by itself.
        await this.deadLetterFlight(
          port,
          flight,
          "MaxDeliveryCountExceeded",
          `received ${receiveCount} times, more than the max delivery count ${this.maxDeliveryCount}`,
        ).catch(() => undefined);
        continue;
      }
      if (leaseMs === 0) {
        // No lease: visible again at once, as SQS does with a zero visibility timeout.
        await this.abandon(flight).catch(() => undefined);
      } else {
        this.lease(lockToken, flight, leaseMs);
      }
      delivered.push(port);
    }
    return delivered;
  }

  async extendLease(message: ReceivedTaskMessage, seconds: number): Promise<void> {
    const flight = this.flightOf(message);
    try {
      await flight.receiver.renewMessageLock(flight.message);
    } catch (error) {
      this.forget(message.receiptHandle);
      throw settlementError(message.messageId, error);
    }
    this.lease(message.receiptHandle, flight, Math.max(0, seconds) * 1000);
  }

  async ack(messages: readonly ReceivedTaskMessage[]): Promise<void> {
    const results = await Promise.allSettled(
      messages.map(async (message) => {
        const flight = this.flightOf(message);
        this.forget(message.receiptHandle);
        try {
          await flight.receiver.completeMessage(flight.message);
        } catch (error) {
          throw settlementError(message.messageId, error);
        }
      }),
    );
    const failures = results.flatMap((r, i) =>
      r.status === "rejected" ? [`${messages[i]?.messageId} (${describeError(r.reason)})`] : [],
    );
    if (failures.length === 1 && messages.length === 1) {
      throw (results[0] as PromiseRejectedResult).reason;
    }
    if (failures.length > 0) {
      throw new DependencyError(
        `Service Bus could not complete ${failures.length} of ${messages.length} messages: ${failures.join("; ")}`,
      );
    }
  }

  async release(message: ReceivedTaskMessage, delaySeconds: number): Promise<void> {
    const flight = this.flightOf(message);
    if (delaySeconds <= 0) {
      this.forget(message.receiptHandle);
      await this.abandon(flight).catch((error: unknown) => {
        throw settlementError(message.messageId, error);
      });
      return;
    }
    const entity = this.entityOf(message.queue);
    const sender = this.senderFor(entity);
    const original = flight.message;
    const copy: ServiceBusMessage = {
      body: original.body,
      // A new id per delivery: duplicate detection must not drop the copy as the original.
      messageId: `${flight.logicalId}:r${flight.receiveCount}`,
      ...(original.contentType !== undefined ? { contentType: original.contentType } : {}),
      applicationProperties: {
        ...(original.applicationProperties ?? {}),
        [ServiceBusProperty.logicalMessageId]: flight.logicalId,
        [ServiceBusProperty.priorDeliveries]: flight.receiveCount,
      },
    };
    // Schedule first, complete second: a failure in between leaves a duplicate, never a loss.
    const [sequence] = await sender.scheduleMessages(copy, new Date(Date.now() + delaySeconds * 1000));
    this.forget(message.receiptHandle);
    try {
      await flight.receiver.completeMessage(original);
    } catch (error) {
      // The original comes back after its lock; drop the copy so the task runs once per delivery.
      if (sequence !== undefined) await sender.cancelScheduledMessages(sequence).catch(() => undefined);
      throw settlementError(message.messageId, error);
    }
  }

  async deadLetter(message: ReceivedTaskMessage, reason: string): Promise<void> {
    const flight = this.flightOf(message);
    await this.deadLetterFlight(
      message,
      flight,
      truncate(reason.length > 0 ? reason : "unspecified", MAX_REASON_LENGTH),
      `dead-lettered by Agentry from ${message.queue} after ${message.receiveCount} receive(s)`,
    );
  }

  /** Closes the senders and receivers this adapter opened (not the client) and drops every lease. */
  async close(): Promise<void> {
    for (const token of [...this.inFlight.keys()]) this.forget(token);
    const closing = [...this.senders.values(), ...this.receivers].map((link) => link.close());
    this.senders.clear();
    this.receivers.clear();
    this.idleReceivers.clear();
    await Promise.allSettled(closing);
  }

  private async deadLetterFlight(
    message: ReceivedTaskMessage,
    flight: InFlight,
    reason: string,
    description: string,
  ): Promise<void> {
    this.forget(message.receiptHandle);
    try {
      await flight.receiver.deadLetterMessage(flight.message, {
        deadLetterReason: reason,
        deadLetterErrorDescription: description,
      });
    } catch (error) {
      throw settlementError(message.messageId, error);
    }
  }

  /** Holds the lease for `ms` from now: renews the lock while it lasts, abandons when it ends. */
  private lease(token: string, flight: InFlight, ms: number): void {
    clearTimeout(flight.leaseTimer);
    clearTimeout(flight.renewTimer);
    flight.leaseTimer = setTimeout(() => {
      if (this.inFlight.get(token) !== flight) return;
      this.forget(token);
      void this.abandon(flight).catch(() => undefined);
    }, ms);
    flight.leaseTimer.unref();
    if (ms >= this.lockDurationMs) this.scheduleRenewal(token, flight, Date.now() + ms);
  }

  private scheduleRenewal(token: string, flight: InFlight, leaseEnd: number): void {
    const interval = Math.max(1_000, this.lockDurationMs / 2);
    flight.renewTimer = setTimeout(() => {
      if (this.inFlight.get(token) !== flight || Date.now() >= leaseEnd) return;
      flight.receiver.renewMessageLock(flight.message).then(
        () => this.scheduleRenewal(token, flight, leaseEnd),
        // The lock is gone: another consumer may get the message; the dispatcher's store guards hold.
        () => this.forget(token),
      );
    }, interval);
    flight.renewTimer.unref();
  }

  /** Abandons: the message is delivered again (or dead-lettered once its deliveries are used up). */
  private async abandon(flight: InFlight): Promise<void> {
    await flight.receiver.abandonMessage(flight.message);
  }

  private flightOf(message: ReceivedTaskMessage): InFlight {
    const flight = this.inFlight.get(message.receiptHandle);
    if (flight === undefined) throw new ServiceBusLeaseLostError(message.messageId);
    return flight;
  }

  private forget(token: string): void {
    const flight = this.inFlight.get(token);
    if (flight === undefined) return;
    clearTimeout(flight.leaseTimer);
    clearTimeout(flight.renewTimer);
    this.inFlight.delete(token);
  }

  private senderFor(entity: string): ServiceBusSender {
    let sender = this.senders.get(entity);
    if (sender === undefined) {
      sender = this.client.createSender(entity);
      this.senders.set(entity, sender);
    }
    return sender;
  }

  private takeReceiver(entity: string): ServiceBusReceiver {
    const idle = this.idleReceivers.get(entity)?.pop();
    if (idle !== undefined) return idle;
    // Locks are renewed by the adapter, as long as the port's lease says, never by the SDK.
    const receiver = this.client.createReceiver(entity, {
      receiveMode: "peekLock",
      maxAutoLockRenewalDurationInMs: 0,
    });
    this.receivers.add(receiver);
    return receiver;
  }

  private returnReceiver(entity: string, receiver: ServiceBusReceiver): void {
    if (!this.receivers.has(receiver)) return;
    const idle = this.idleReceivers.get(entity) ?? [];
    idle.push(receiver);
    this.idleReceivers.set(entity, idle);
  }

  /** Sends in batches that fit the entity's max message size; retries transient faults. */
  private async sendGroup(
    entity: string,
    group: readonly { index: number; message: ServiceBusMessage }[],
  ): Promise<SendFailure[]> {
    const sender = this.senderFor(entity);
    const failures: SendFailure[] = [];
    let batch: ServiceBusMessageBatch | undefined;
    let members: number[] = [];
    const flush = async () => {
      if (batch === undefined || members.length === 0) return;
      const error = await this.sendWithRetries(() => sender.sendMessages(batch as ServiceBusMessageBatch));
      if (error !== undefined) failures.push(...members.map((index) => ({ index, message: error })));
      batch = undefined;
      members = [];
    };
    try {
      for (const { index, message } of group) {
        batch ??= await sender.createMessageBatch();
        if (batch.tryAddMessage(message)) {
          members.push(index);
          continue;
        }
        await flush();
        batch = await sender.createMessageBatch();
        if (batch.tryAddMessage(message)) {
          members.push(index);
        } else {
          failures.push({
            index,
            message: `MessageSizeExceeded: larger than the entity's max message size (${batch.maxSizeInBytes} bytes)`,
          });
        }
      }
      await flush();
    } catch (error) {
      const failed = new Set(failures.map((f) => f.index));
      for (const { index } of group) {
        if (!failed.has(index)) failures.push({ index, message: describeError(error) });
      }
    }
    return failures;
  }

  /** Undefined when sent; else the last error's description. */
  private async sendWithRetries(send: () => Promise<void>): Promise<string | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await send();
        return undefined;
      } catch (error) {
        if (!isTransient(error) || attempt >= this.maxSendAttempts) return describeError(error);
        const ceiling = Math.min(2_000, this.retryBaseDelayMs * 2 ** (attempt - 1));
        await new Promise((resolve) => setTimeout(resolve, Math.round(ceiling * Math.random())));
      }
    }
  }
}

function toServiceBusMessage(message: OutgoingTaskMessage): ServiceBusMessage {
  const body = message.body as unknown as Record<string, unknown>;
  const properties: Record<string, string | number> = {};
  if (typeof body === "object" && body !== null) {
    if (typeof body.taskId === "string" && body.taskId.length > 0) properties.taskId = body.taskId;
    if (typeof body.attempt === "number" && Number.isFinite(body.attempt)) properties.attempt = body.attempt;
    for (const field of TRACE_FIELDS) {
      const value = body[field];
      if (typeof value === "string" && value.length > 0) properties[field] = value;
    }
  }
  const taskId = typeof body?.taskId === "string" ? body.taskId : undefined;
  return {
    body: message.body,
    contentType: "application/json",
    // Task id + attempt: a send repeated within the duplicate detection window is dropped.
    ...(taskId !== undefined ? { messageId: `${taskId}:${String(body.attempt)}` } : {}),
    applicationProperties: properties,
    ...(message.delaySeconds && message.delaySeconds > 0
      ? { scheduledEnqueueTimeUtc: new Date(Date.now() + message.delaySeconds * 1000) }
      : {}),
  };
}

/** The body as sent: the SDK parses JSON data sections; a raw string stays a string. */
function bodyText(body: unknown): string {
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString("utf8");
  return JSON.stringify(body);
}

function truncate(value: string, length: number): string {
  return value.length <= length ? value : `${value.slice(0, length - 1)}…`;
}
