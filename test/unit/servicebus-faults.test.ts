import { type ServiceBusClient, ServiceBusError } from "@azure/service-bus";
import { describe, expect, it } from "vitest";
import { isTransient, ServiceBusLeaseLostError, settlementError } from "#shared/adapters/azure/errors";
import { ServiceBusTaskQueue } from "#shared/adapters/azure/service-bus-task-queue";
import { DependencyError } from "#shared/domain/errors";

// Faults the local peer does not produce (a busy namespace): a stand-in sender that fails as the SDK
// does after its own retries, to pin the adapter's retry and failure reporting.

function clientFailingWith(errors: (Error | undefined)[]) {
  const calls: number[] = [];
  const sender = {
    createMessageBatch: async () => {
      const messages: unknown[] = [];
      return {
        maxSizeInBytes: 262_144,
        get count() {
          return messages.length;
        },
        tryAddMessage: (message: unknown) => {
          messages.push(message);
          return true;
        },
      };
    },
    sendMessages: async () => {
      calls.push(Date.now());
      const error = errors.shift();
      if (error) throw error;
    },
    close: async () => undefined,
  };
  const client = { createSender: () => sender } as unknown as ServiceBusClient;
  return { client, calls };
}

const message = { queue: "diagnostics", body: { taskId: "t1", attempt: 1 } };

describe("ServiceBusTaskQueue faults", () => {
  it("sends again after a throttled (ServiceBusy) send, and reports nothing failed", async () => {
    const { client, calls } = clientFailingWith([new ServiceBusError("namespace busy", "ServiceBusy")]);
    const queue = new ServiceBusTaskQueue({
      client,
      queues: { diagnostics: "q" },
      maxDeliveryCount: 5,
      retryBaseDelayMs: 1,
    });

    expect(await queue.send([message])).toEqual([]);
    expect(calls).toHaveLength(2);
  });

  it("reports a send that stays throttled after its attempts, with the reason", async () => {
    const busy = () => new ServiceBusError("namespace busy", "ServiceBusy");
    const { client, calls } = clientFailingWith([busy(), busy(), busy()]);
    const queue = new ServiceBusTaskQueue({
      client,
      queues: { diagnostics: "q" },
      maxDeliveryCount: 5,
      retryBaseDelayMs: 1,
    });

    expect(await queue.send([message, message])).toEqual([
      { index: 0, message: "ServiceBusy: namespace busy" },
      { index: 1, message: "ServiceBusy: namespace busy" },
    ]);
    expect(calls).toHaveLength(3);
  });

  it("does not send again after a fault that fails the same way every time", async () => {
    const { client, calls } = clientFailingWith([
      new ServiceBusError("no such queue", "MessagingEntityNotFound"),
    ]);
    const queue = new ServiceBusTaskQueue({
      client,
      queues: { diagnostics: "q" },
      maxDeliveryCount: 5,
      retryBaseDelayMs: 1,
    });

    expect(await queue.send([message])).toEqual([
      { index: 0, message: "MessagingEntityNotFound: no such queue" },
    ]);
    expect(calls).toHaveLength(1);
  });

  it("maps a lost lock to a lease-lost error, other settle faults to a dependency error", () => {
    expect(settlementError("m1", new ServiceBusError("lock expired", "MessageLockLost"))).toBeInstanceOf(
      ServiceBusLeaseLostError,
    );
    expect(settlementError("m1", new ServiceBusError("busy", "ServiceBusy"))).toBeInstanceOf(DependencyError);
    expect(isTransient(new ServiceBusError("busy", "ServiceBusy"))).toBe(true);
    expect(isTransient(new ServiceBusError("gone", "MessagingEntityNotFound"))).toBe(false);
  });
});
