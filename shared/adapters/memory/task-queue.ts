import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { AgentryError } from "#shared/domain/errors";
import { type Clock, systemClock } from "#shared/ports/clock";
import type {
  DeadLetterPage,
  OutgoingTaskMessage,
  QueueDepth,
  ReceivedTaskMessage,
  RedriveDecision,
  SendFailure,
  TaskQueue,
} from "#shared/ports/task-queue";

interface StoredMessage {
  readonly messageId: string;
  readonly body: string;
  readonly sentAt: number;
  visibleAt: number;
  receiveCount: number;
  receiptHandle?: string;
}

export interface DeadLetter {
  readonly messageId: string;
  readonly body: string;
  readonly reason: string;
  readonly receiveCount: number;
  /** Epoch ms when it was dead-lettered. */
  readonly deadLetteredAt?: number;
}

export interface QueueSnapshot {
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
  readonly deadLettered: readonly DeadLetter[];
}

const DEFAULT_VISIBILITY_SECONDS = 30;

function optionalTaskId(body: string): { taskId?: string } {
  try {
    const parsed: unknown = JSON.parse(body);
    if (
      typeof parsed === "object" &&
      parsed !== null &&
      "taskId" in parsed &&
      typeof parsed.taskId === "string"
    )
      return { taskId: parsed.taskId };
  } catch {
    // a malformed body names no task
  }
  return {};
}
const POLL_INTERVAL_MS = 10;

/**
 * The embedded TaskQueue, with SQS standard-queue semantics: visibility timeouts, receive counts,
 * delayed delivery, a dead-letter queue after `maxReceiveCount` receives, and receipt handles that
 * go stale when the message is received again.
 *
 * @example
 * const queue = new MemoryTaskQueue({ maxReceiveCount: 5 });
 * await queue.send([{ queue: "diagnostics", body: { taskId: "t1", attempt: 1 } }]);
 */
export class MemoryTaskQueue implements TaskQueue {
  private readonly queues = new Map<string, StoredMessage[]>();
  private readonly deadLetters = new Map<string, DeadLetter[]>();
  private readonly maxReceiveCount: number;
  private readonly clock: Clock;

  constructor(options: { maxReceiveCount?: number; clock?: Clock } = {}) {
    this.maxReceiveCount = options.maxReceiveCount ?? 5;
    this.clock = options.clock ?? systemClock;
  }

  async send(messages: readonly OutgoingTaskMessage[]): Promise<readonly SendFailure[]> {
    const now = this.now();
    for (const message of messages) {
      this.queue(message.queue).push({
        messageId: randomUUID(),
        body: JSON.stringify(message.body),
        sentAt: now,
        visibleAt: now + (message.delaySeconds ?? 0) * 1000,
        receiveCount: 0,
      });
    }
    return [];
  }

  async receive(
    queueName: string,
    options: { maxMessages: number; waitSeconds: number; visibilitySeconds?: number; signal?: AbortSignal },
  ): Promise<readonly ReceivedTaskMessage[]> {
    const deadline = this.now() + options.waitSeconds * 1000;
    for (;;) {
      const received = this.takeVisible(queueName, options.maxMessages, options.visibilitySeconds);
      if (received.length > 0 || this.now() >= deadline || options.signal?.aborted) return received;
      try {
        await sleep(Math.min(POLL_INTERVAL_MS, Math.max(1, deadline - this.now())), undefined, {
          signal: options.signal,
        });
      } catch {
        return [];
      }
    }
  }

  async extendLease(message: ReceivedTaskMessage, seconds: number): Promise<void> {
    this.inFlight(message).visibleAt = this.now() + seconds * 1000;
  }

  async ack(messages: readonly ReceivedTaskMessage[]): Promise<void> {
    for (const message of messages) {
      const queue = this.queue(message.queue);
      // As in SQS, deleting with a receipt handle from an earlier receive does not delete the message.
      const index = queue.findIndex((m) => m.receiptHandle === message.receiptHandle);
      if (index >= 0) queue.splice(index, 1);
    }
  }

  async release(message: ReceivedTaskMessage, delaySeconds: number): Promise<void> {
    this.inFlight(message).visibleAt = this.now() + delaySeconds * 1000;
  }

  async deadLetter(message: ReceivedTaskMessage, reason: string): Promise<void> {
    const queue = this.queue(message.queue);
    const index = queue.findIndex((m) => m.receiptHandle === message.receiptHandle);
    const [stored] = index >= 0 ? queue.splice(index, 1) : [];
    this.deadLetterList(message.queue).push({
      messageId: message.messageId,
      body: stored?.body ?? message.body,
      reason,
      receiveCount: stored?.receiveCount ?? message.receiveCount,
      deadLetteredAt: this.now(),
    });
  }

  async depth(queueName: string): Promise<QueueDepth> {
    const snapshot = this.inspectQueue(queueName);
    return {
      available: snapshot.visible,
      inFlight: snapshot.inFlight,
      delayed: snapshot.delayed,
      deadLettered: snapshot.deadLettered.length,
    };
  }

  async inspectDeadLetters(queueName: string, options: { limit: number }): Promise<DeadLetterPage> {
    const letters = this.deadLetters.get(queueName) ?? [];
    return {
      depth: letters.length,
      messages: letters.slice(0, Math.max(0, options.limit)).map((letter) => ({
        messageId: letter.messageId,
        ...optionalTaskId(letter.body),
        reason: letter.reason,
        ...(letter.deadLetteredAt !== undefined
          ? { deadLetteredAt: new Date(letter.deadLetteredAt).toISOString() }
          : {}),
      })),
    };
  }

  async redriveDeadLetters(
    queueName: string,
    options: { max: number; decide: (taskId: string | undefined) => Promise<RedriveDecision> },
  ): Promise<number> {
    const letters = this.deadLetterList(queueName);
    const taken = letters.splice(0, Math.max(0, options.max));
    const kept: DeadLetter[] = [];
    for (const letter of taken) {
      const decision = await options.decide(optionalTaskId(letter.body).taskId);
      if (decision === "keep") kept.push(letter);
      if (decision !== "send") continue;
      const now = this.now();
      this.queue(queueName).push({
        messageId: randomUUID(),
        body: letter.body,
        sentAt: now,
        visibleAt: now,
        receiveCount: 0,
      });
    }
    letters.push(...kept);
    return taken.length;
  }

  /** Test and operations hook: what the queue holds right now. */
  inspectQueue(queueName: string): QueueSnapshot {
    const now = this.now();
    const queue = this.queues.get(queueName) ?? [];
    return {
      visible: queue.filter((m) => m.visibleAt <= now).length,
      inFlight: queue.filter((m) => m.visibleAt > now && m.receiveCount > 0).length,
      delayed: queue.filter((m) => m.visibleAt > now && m.receiveCount === 0).length,
      deadLettered: [...(this.deadLetters.get(queueName) ?? [])],
    };
  }

  /** Moves every dead-lettered message of a queue back to it (a DLQ redrive after a fix). */
  redrive(queueName: string): number {
    const letters = this.deadLetterList(queueName).splice(0);
    const now = this.now();
    for (const letter of letters) {
      this.queue(queueName).push({
        messageId: randomUUID(),
        body: letter.body,
        sentAt: now,
        visibleAt: now,
        receiveCount: 0,
      });
    }
    return letters.length;
  }

  private takeVisible(queueName: string, max: number, visibilitySeconds?: number): ReceivedTaskMessage[] {
    const now = this.now();
    const queue = this.queue(queueName);
    const received: ReceivedTaskMessage[] = [];
    for (const message of [...queue]) {
      if (received.length >= max) break;
      if (message.visibleAt > now) continue;
      if (message.receiveCount >= this.maxReceiveCount) {
        queue.splice(queue.indexOf(message), 1);
        this.deadLetterList(queueName).push({
          messageId: message.messageId,
          body: message.body,
          reason: `exceeded maxReceiveCount ${this.maxReceiveCount}`,
          receiveCount: message.receiveCount,
          deadLetteredAt: now,
        });
        continue;
      }
      message.receiveCount += 1;
      message.receiptHandle = randomUUID();
      message.visibleAt = now + (visibilitySeconds ?? DEFAULT_VISIBILITY_SECONDS) * 1000;
      received.push({
        queue: queueName,
        messageId: message.messageId,
        receiptHandle: message.receiptHandle,
        body: message.body,
        receiveCount: message.receiveCount,
      });
    }
    return received;
  }

  private inFlight(message: ReceivedTaskMessage): StoredMessage {
    const stored = this.queue(message.queue).find((m) => m.receiptHandle === message.receiptHandle);
    if (!stored || stored.visibleAt <= this.now()) {
      throw new AgentryError(`message ${message.messageId} is no longer in flight with this receipt handle`, {
        code: "message_not_inflight",
        statusCode: 409,
      });
    }
    return stored;
  }

  private queue(name: string): StoredMessage[] {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = [];
      this.queues.set(name, queue);
    }
    return queue;
  }

  private deadLetterList(name: string): DeadLetter[] {
    let list = this.deadLetters.get(name);
    if (!list) {
      list = [];
      this.deadLetters.set(name, list);
    }
    return list;
  }

  private now(): number {
    return this.clock.now().getTime();
  }
}
