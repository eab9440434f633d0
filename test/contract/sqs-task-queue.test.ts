import { describe, expect, it } from "vitest";
import { SqsTaskQueue, UnknownQueueError } from "#shared/adapters/aws/sqs-task-queue";
import { createTestQueues, inspectSqsQueue, localSqsClient, sendRawMessage } from "#test/support/aws";
import { describeTaskQueueContract } from "./task-queue.contract.ts";

const client = localSqsClient();

async function inspect(queue: SqsTaskQueue, name: string) {
  const [source, dlq] = await Promise.all([
    inspectSqsQueue(queue.queueUrlOf(name)),
    inspectSqsQueue(queue.deadLetterQueueUrlOf(name)),
  ]);
  return {
    visible: source.visible.length,
    inFlight: source.inFlight.length,
    delayed: source.delayed.length,
    deadLettered: [...dlq.visible, ...dlq.inFlight, ...dlq.delayed].map((m) => ({
      body: m.body,
      reason: m.messageAttributes.reason?.StringValue,
    })),
  };
}

describeTaskQueueContract("SqsTaskQueue", {
  create: async ({ queues, maxReceiveCount }) =>
    new SqsTaskQueue({ client, ...(await createTestQueues(client, queues, { maxReceiveCount })) }),
  inspect,
  sendRaw: (queue, name, body) => sendRawMessage(client, queue.queueUrlOf(name), body),
});

describe("SqsTaskQueue on SQS", () => {
  it("names the unknown queue and the configured ones", async () => {
    const queue = new SqsTaskQueue({ client, ...(await createTestQueues(client, ["diagnostics"])) });

    const sending = queue.send([{ queue: "summarization", body: { taskId: "t1", attempt: 1 } }]);

    await expect(sending).rejects.toThrow(UnknownQueueError);
    await expect(sending).rejects.toThrow(/unknown queue "summarization"; configured: diagnostics/);
  });

  it("copies the task id, attempt and trace context into message attributes", async () => {
    const queue = new SqsTaskQueue({ client, ...(await createTestQueues(client, ["diagnostics"])) });
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    await queue.send([
      {
        queue: "diagnostics",
        body: { taskId: "t1", attempt: 2, traceparent } as { taskId: string; attempt: number },
      },
    ]);

    const [stored] = (await inspectSqsQueue(queue.queueUrlOf("diagnostics"))).visible;
    expect(stored?.messageAttributes).toEqual({
      taskId: { DataType: "String", StringValue: "t1" },
      attempt: { DataType: "Number", StringValue: "2" },
      traceparent: { DataType: "String", StringValue: traceparent },
    });
  });

  it("dead-letters with the reason, source queue and task id as attributes", async () => {
    const queue = new SqsTaskQueue({ client, ...(await createTestQueues(client, ["diagnostics"])) });
    await queue.send([{ queue: "diagnostics", body: { taskId: "t9", attempt: 1 } }]);
    const [message] = await queue.receive("diagnostics", { maxMessages: 1, waitSeconds: 0 });
    if (!message) throw new Error("expected a message");

    await queue.deadLetter(message, "handler threw NonRetryableError");

    const [dead] = (await inspectSqsQueue(queue.deadLetterQueueUrlOf("diagnostics"))).visible;
    expect(dead?.messageAttributes).toMatchObject({
      reason: { StringValue: "handler threw NonRetryableError" },
      sourceQueue: { StringValue: "diagnostics" },
      originalMessageId: { StringValue: message.messageId },
      taskId: { StringValue: "t9" },
    });
  });
});
