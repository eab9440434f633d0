import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { beforeEach, describe, expect, it } from "vitest";
import type { ReceivedTaskMessage, TaskMessageBody, TaskQueue } from "#shared/ports/task-queue";

/** What a queue holds right now, read around the adapter. */
export interface QueueInspection {
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
  /** Messages in the queue's dead-letter queue; `reason` when the adapter put it there with one. */
  readonly deadLettered: readonly { readonly body: string; readonly reason?: string | undefined }[];
}

export interface TaskQueueContractSubject<Q extends TaskQueue> {
  /** Fresh, empty queues for these logical names, dead-lettering after `maxReceiveCount` receives. */
  create(options: { queues: readonly string[]; maxReceiveCount: number }): Promise<Q> | Q;
  inspect(queue: Q, name: string): Promise<QueueInspection> | QueueInspection;
  /** Puts a raw body on a queue around the adapter; omit it when the adapter's store cannot hold one. */
  sendRaw?(queue: Q, name: string, body: string): Promise<void>;
  /**
   * Whether the adapter implements the optional `depth` (Service Bus counts messages only through
   * its administration client, which the local peer does not speak).
   * @default true
   */
  readonly measuresDepth?: boolean;
}

const QUEUE = "diagnostics";
const HIGH = "diagnostics-high";
const MAX_RECEIVE_COUNT = 3;

const body = (attempt = 1): TaskMessageBody => ({ taskId: `task-${randomUUID()}`, attempt });

/**
 * The TaskQueue contract: every adapter runs it. Each test gets fresh queues. Lease tests wait for
 * real time (one-second leases), so they hold for adapters that count time on a server.
 *
 * @example
 * describeTaskQueueContract("MemoryTaskQueue", {
 *   create: ({ maxReceiveCount }) => new MemoryTaskQueue({ maxReceiveCount }),
 *   inspect: (queue, name) => queue.inspectQueue(name),
 * });
 */
export function describeTaskQueueContract<Q extends TaskQueue>(
  name: string,
  subject: TaskQueueContractSubject<Q>,
): void {
  describe(`${name} (TaskQueue contract)`, () => {
    let queue: Q;

    beforeEach(async () => {
      queue = await subject.create({ queues: [QUEUE, HIGH], maxReceiveCount: MAX_RECEIVE_COUNT });
    });

    const inspect = (queueName = QUEUE) => Promise.resolve(subject.inspect(queue, queueName));
    const receive = (
      options: { visibilitySeconds?: number; waitSeconds?: number; queueName?: string } = {},
    ) =>
      queue.receive(options.queueName ?? QUEUE, {
        maxMessages: 10,
        waitSeconds: options.waitSeconds ?? 0,
        visibilitySeconds: options.visibilitySeconds ?? 30,
      });
    const receiveOne = async (visibilitySeconds = 30): Promise<ReceivedTaskMessage> => {
      const [message, ...rest] = await receive({ visibilitySeconds });
      expect(rest).toEqual([]);
      if (!message) throw new Error("expected a message");
      return message;
    };

    describe("send, receive, ack", () => {
      it("delivers a sent message with its body, queue and a receive count of one", async () => {
        const sent = body();

        const failures = await queue.send([{ queue: QUEUE, body: sent }]);
        const message = await receiveOne();

        expect(failures).toEqual([]);
        expect(JSON.parse(message.body)).toEqual(sent);
        expect(message).toMatchObject({ queue: QUEUE, receiveCount: 1 });
        expect(message.messageId).not.toBe("");
        expect(message.receiptHandle).not.toBe("");
        expect(await inspect()).toMatchObject({ visible: 0, inFlight: 1, delayed: 0 });
      });

      it("removes acknowledged messages for good", async () => {
        await queue.send([{ queue: QUEUE, body: body() }]);
        const message = await receiveOne(1);

        await queue.ack([message]);
        await sleep(1_200);

        expect(await receive()).toEqual([]);
        expect(await inspect()).toEqual({ visible: 0, inFlight: 0, delayed: 0, deadLettered: [] });
      });

      it("sends, receives and acknowledges more messages than one batch holds", async () => {
        const sent = Array.from({ length: 23 }, () => body());

        const failures = await queue.send(sent.map((b) => ({ queue: QUEUE, body: b })));
        const received: ReceivedTaskMessage[] = [];
        for (let round = 0; round < 20 && received.length < sent.length; round++) {
          received.push(...(await receive({ waitSeconds: 1 })));
        }
        await queue.ack(received);

        expect(failures).toEqual([]);
        expect(received.map((m) => JSON.parse(m.body)).sort(byTaskId)).toEqual([...sent].sort(byTaskId));
        expect(await inspect()).toEqual({ visible: 0, inFlight: 0, delayed: 0, deadLettered: [] });
      });

      it("keeps the queues of different names apart", async () => {
        const normal = body();
        const high = body();

        await queue.send([
          { queue: QUEUE, body: normal },
          { queue: HIGH, body: high },
        ]);
        const fromHigh = await receive({ queueName: HIGH });

        expect(fromHigh.map((m) => JSON.parse(m.body))).toEqual([high]);
        expect(fromHigh[0]?.queue).toBe(HIGH);
        expect(await inspect(QUEUE)).toMatchObject({ visible: 1, inFlight: 0 });
      });

      it("delivers a schema-invalid body exactly as sent", async () => {
        const invalid = { nonsense: true } as unknown as TaskMessageBody;

        await queue.send([{ queue: QUEUE, body: invalid }]);
        const message = await receiveOne();

        expect(JSON.parse(message.body)).toEqual({ nonsense: true });
      });

      if (subject.sendRaw) {
        const sendRaw = subject.sendRaw.bind(subject);
        it("delivers a malformed body raw, so it can be dead-lettered", async () => {
          await sendRaw(queue, QUEUE, "not json {");
          const message = await receiveOne();

          await queue.deadLetter(message, "malformed message body");

          expect(message.body).toBe("not json {");
          expect((await inspect()).deadLettered).toEqual([
            expect.objectContaining({ body: "not json {", reason: "malformed message body" }),
          ]);
        });
      }

      it("long polling returns a message sent while it waits", async () => {
        const sent = body();

        const waiting = receive({ waitSeconds: 5 });
        await sleep(300);
        await queue.send([{ queue: QUEUE, body: sent }]);
        const received = await waiting;

        expect(received.map((m) => JSON.parse(m.body))).toEqual([sent]);
      });

      it("an aborted receive returns no messages", async () => {
        const controller = new AbortController();

        const waiting = queue.receive(QUEUE, { maxMessages: 10, waitSeconds: 10, signal: controller.signal });
        await sleep(200);
        controller.abort();

        expect(await waiting).toEqual([]);
      });
    });

    describe("leases and delays", () => {
      it("keeps a received message invisible until its lease runs out, then delivers it again", async () => {
        const sent = body();
        await queue.send([{ queue: QUEUE, body: sent }]);
        await receiveOne(1);

        const whileLeased = await receive();
        await sleep(1_300);
        const again = await receiveOne();

        expect(whileLeased).toEqual([]);
        expect(JSON.parse(again.body)).toEqual(sent);
        expect(again.receiveCount).toBe(2);
      });

      it("extendLease keeps a message invisible past its first lease", async () => {
        await queue.send([{ queue: QUEUE, body: body() }]);
        const message = await receiveOne(1);

        await queue.extendLease(message, 4);
        await sleep(1_500);

        expect(await receive()).toEqual([]);
        expect(await inspect()).toMatchObject({ visible: 0, inFlight: 1 });
      });

      it("release makes a message visible again once the delay has passed", async () => {
        await queue.send([{ queue: QUEUE, body: body() }]);
        const message = await receiveOne(30);

        await queue.release(message, 1);
        const tooEarly = await receive();
        await sleep(1_300);
        const again = await receiveOne();

        expect(tooEarly).toEqual([]);
        expect(again.messageId).toBe(message.messageId);
        expect(again.receiveCount).toBe(2);
      });

      it("release with no delay releases the message at once", async () => {
        await queue.send([{ queue: QUEUE, body: body() }]);
        const message = await receiveOne(30);

        await queue.release(message, 0);

        expect((await receiveOne()).messageId).toBe(message.messageId);
      });

      it("holds back a message sent with a delay until the delay has passed", async () => {
        const sent = body();

        await queue.send([{ queue: QUEUE, body: sent, delaySeconds: 1 }]);
        const tooEarly = await receive();
        const held = await inspect();
        await sleep(1_300);
        const later = await receiveOne();

        expect(tooEarly).toEqual([]);
        expect(held).toMatchObject({ visible: 0, delayed: 1 });
        expect(JSON.parse(later.body)).toEqual(sent);
      });

      it("counts every receive of the same message", async () => {
        await queue.send([{ queue: QUEUE, body: body() }]);

        const counts: number[] = [];
        for (let i = 0; i < MAX_RECEIVE_COUNT; i++) counts.push((await receiveOne(0)).receiveCount);

        expect(counts).toEqual([1, 2, 3]);
      });
    });

    describe("dead letters", () => {
      it("moves a message received more than maxReceiveCount times to the dead-letter queue", async () => {
        const sent = body();
        await queue.send([{ queue: QUEUE, body: sent }]);
        for (let i = 0; i < MAX_RECEIVE_COUNT; i++) await receiveOne(0);

        const afterLimit = await receive();
        const state = await inspect();

        expect(afterLimit).toEqual([]);
        expect(state).toMatchObject({ visible: 0, inFlight: 0, delayed: 0 });
        expect(state.deadLettered.map((d) => JSON.parse(d.body))).toEqual([sent]);
      });

      it("deadLetter moves the message with its reason and removes it from the queue", async () => {
        const sent = body();
        const other = body();
        await queue.send([
          { queue: QUEUE, body: sent },
          { queue: QUEUE, body: other, delaySeconds: 5 },
        ]);
        const message = await receiveOne();

        await queue.deadLetter(message, "schema-invalid: missing taskType");

        const state = await inspect();
        expect(state).toMatchObject({ visible: 0, inFlight: 0, delayed: 1 });
        expect(state.deadLettered).toEqual([
          expect.objectContaining({ body: JSON.stringify(sent), reason: "schema-invalid: missing taskType" }),
        ]);
      });
    });

    // An adapter without the optional `depth` has no such tests (registered, not skipped).
    (subject.measuresDepth === false ? () => {} : describe)("depth", () => {
      it("counts available, in-flight, delayed and dead-lettered messages of one queue", async () => {
        await queue.send([
          ...[1, 2, 3, 4].map(() => ({ queue: QUEUE, body: body() })),
          { queue: QUEUE, body: body(), delaySeconds: 30 },
          { queue: HIGH, body: body() },
        ]);
        const received = await queue.receive(QUEUE, {
          maxMessages: 3,
          waitSeconds: 1,
          visibilitySeconds: 30,
        });
        expect(received).toHaveLength(3);
        await queue.deadLetter(received[0]!, "depth test");
        await queue.release(received[1]!, 30);

        // One left visible; one held by a worker, one waiting out its backoff; the other queue apart.
        expect(await queue.depth?.(QUEUE)).toEqual({
          available: 1,
          inFlight: 2,
          delayed: 1,
          deadLettered: 1,
        });
        expect(await queue.depth?.(HIGH)).toEqual({ available: 1, inFlight: 0, delayed: 0, deadLettered: 0 });
      });
    });
  });
}

function byTaskId(a: TaskMessageBody, b: TaskMessageBody): number {
  return a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0;
}
