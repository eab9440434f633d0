import { afterAll, describe, expect, it } from "vitest";
import { UnknownServiceBusEntityError } from "#shared/adapters/azure/errors";
import { ServiceBusTaskQueue } from "#shared/adapters/azure/service-bus-task-queue";
import { createTestQueue, inspectEntity, serviceBusClient, uniqueEntityName } from "#test/support/servicebus";
import { describeTaskQueueContract } from "./task-queue.contract.ts";

// The TaskQueue contract on Service Bus: the real @azure/service-bus client against the local AMQP
// peer (or a real namespace when AZURE_SERVICE_BUS_CONNECTION_STRING is set).

const client = serviceBusClient();
const opened: ServiceBusTaskQueue[] = [];

afterAll(async () => {
  await Promise.all(opened.map((queue) => queue.close()));
  await client.close();
});

async function createQueues(
  names: readonly string[],
  maxDeliveryCount: number,
): Promise<ServiceBusTaskQueue> {
  const queues: Record<string, string> = {};
  for (const name of names) {
    queues[name] = uniqueEntityName(`agentry-${name}`);
    await createTestQueue({ name: queues[name], maxDeliveryCount, lockDurationSeconds: 60 });
  }
  const queue = new ServiceBusTaskQueue({ client, queues, maxDeliveryCount, lockDurationSeconds: 60 });
  opened.push(queue);
  return queue;
}

describeTaskQueueContract("ServiceBusTaskQueue", {
  create: ({ queues, maxReceiveCount }) => createQueues(queues, maxReceiveCount),
  inspect: async (queue, name) => {
    const state = await inspectEntity(queue.entityOf(name));
    return {
      visible: state.active,
      inFlight: state.locked,
      delayed: state.scheduled,
      deadLettered: state.deadLettered.map((d) => ({ body: d.body, reason: d.reason })),
    };
  },
  sendRaw: async (queue, name, body) => {
    const sender = client.createSender(queue.entityOf(name));
    await sender.sendMessages({ body });
    await sender.close();
  },
  // Service Bus counts messages only through its administration client (HTTPS).
  measuresDepth: false,
});

describe("ServiceBusTaskQueue on Service Bus", () => {
  it("names the unknown queue and the configured ones", async () => {
    const queue = await createQueues(["diagnostics"], 5);

    const sending = queue.send([{ queue: "summarization", body: { taskId: "t1", attempt: 1 } }]);

    await expect(sending).rejects.toThrow(UnknownServiceBusEntityError);
    await expect(sending).rejects.toThrow(/unknown queue "summarization"; configured: diagnostics/);
  });
});
