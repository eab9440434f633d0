import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import {
  ServiceBusEventBus,
  UnsupportedEventPatternError,
} from "#shared/adapters/azure/service-bus-event-bus";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MessagingService } from "#shared/core/agents/messaging-service";
import type { AgentMessage } from "#shared/domain/message";
import {
  createTestTopic,
  inspectEntity,
  REAL_NAMESPACE,
  serviceBusClient,
  uniqueEntityName,
} from "#test/support/servicebus";
import { describeMessagingContract } from "./messaging.contract.ts";

// Agent messaging on a Service Bus topic: MessagingService publishes through ServiceBusEventBus (the
// real @azure/service-bus client) to a topic on the local peer; the node's subscription receives
// through the rules the bus adds for each in-process subscription.

const client = serviceBusClient();
const SUBSCRIPTION = "node";

afterAll(async () => {
  await client.close();
});

async function createBus(): Promise<ServiceBusEventBus> {
  const topic = uniqueEntityName("agentry-messages");
  await createTestTopic({
    name: topic,
    subscriptions: [{ name: SUBSCRIPTION, maxDeliveryCount: 5, lockDurationSeconds: 30 }],
  });
  return new ServiceBusEventBus({ client, topic, subscription: SUBSCRIPTION });
}

describeMessagingContract("ServiceBusEventBus (topic, subscription rules)", {
  create: createBus,
  settle: (bus) => bus.idle(),
  destroy: (bus) => bus.close(),
});

describe("ServiceBusEventBus on Service Bus", () => {
  const registerAll = async (registry: MemoryAgentRegistry, agents: [string, string][]) => {
    for (const [agentId, agentType] of agents) {
      await registry.register({
        agentId,
        agentType,
        status: "available",
        capabilities: { supportedTools: [], supportedIntents: [], maxConcurrentTasks: 1, metadata: {} },
        lastHeartbeat: new Date().toISOString(),
        currentTaskCount: 0,
        registeredAt: new Date().toISOString(),
      });
    }
  };

  it("filters an agent's inbox on the broker: a correlation filter on the recipient", async () => {
    const bus = await createBus();
    try {
      const registry = new MemoryAgentRegistry();
      await registerAll(registry, [
        ["a", "worker"],
        ["b", "worker"],
        ["x", "sender"], // a sender must be a registered agent
      ]);
      const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
      const got: AgentMessage[] = [];
      messaging.subscribe("a", (m) => {
        got.push(m);
      });

      await messaging.send({ fromAgentId: "x", toAgentId: "b", messageType: "t", payload: 1 });
      await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "t", payload: 2 });
      await waitFor(() => got.length === 1);
      await bus.idle();
      const subscription = await inspectEntity(`${bus.topic}/Subscriptions/${SUBSCRIPTION}`);

      expect(got.map((m) => m.payload)).toEqual([2]);
      // The message for b never reached this node's subscription: no rule matched it.
      expect(subscription).toMatchObject({ active: 0, locked: 0, deadLettered: [] });
    } finally {
      await bus.close();
    }
  });

  it("broadcasts to an audience: one message per recipient, each through that recipient's rule", async () => {
    const bus = await createBus();
    try {
      const registry = new MemoryAgentRegistry();
      await registerAll(registry, [
        ["s1", "searcher"],
        ["s2", "searcher"],
        ["w1", "writer"],
      ]);
      const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
      const boxes = new Map<string, AgentMessage[]>([
        ["s1", []],
        ["s2", []],
        ["w1", []],
      ]);
      for (const [agentId, box] of boxes) messaging.subscribe(agentId, (m) => void box.push(m));

      const sent = await messaging.broadcast({
        fromAgentId: "s1",
        messageType: "query",
        payload: "who knows?",
        audience: { agentType: "searcher" },
      });
      await waitFor(() => (boxes.get("s2")?.length ?? 0) === 1);
      await sleep(300);
      await bus.idle();

      expect(sent.recipients).toEqual(["s2"]);
      expect([...boxes].map(([id, box]) => [id, box.map((m) => m.toAgentId)])).toEqual([
        ["s1", []],
        ["s2", ["s2"]],
        ["w1", []],
      ]);
    } finally {
      await bus.close();
    }
  });

  it("request/reply: the reply comes back through a rule on the correlation id", async () => {
    const bus = await createBus();
    try {
      const registry = new MemoryAgentRegistry();
      await registerAll(registry, [
        ["planner", "planner"],
        ["summarizer", "summarizer"],
      ]);
      const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
      messaging.subscribe("summarizer", async (request) => {
        await messaging.reply(request, { payload: { summary: `${String(request.payload).length} chars` } });
      });

      const reply = await messaging.request(
        { fromAgentId: "planner", toAgentId: "summarizer", messageType: "summarize", payload: "hello world" },
        { timeoutMs: 10_000 },
      );

      expect(reply).toMatchObject({
        fromAgentId: "summarizer",
        toAgentId: "planner",
        payload: { summary: "11 chars" },
      });
    } finally {
      await bus.close();
    }
  });

  it("never delivers an expired message: the broker drops it once its time to live has run out", async () => {
    // The recipient's rule exists, but nobody receives while the message waits out its ttl.
    const topic = uniqueEntityName("agentry-messages");
    await createTestTopic({
      name: topic,
      subscriptions: [
        {
          name: SUBSCRIPTION,
          maxDeliveryCount: 5,
          rules: [
            {
              name: "inbox-a",
              filter: { correlation: { applicationProperties: { detail_toAgentId: "a" } } },
            },
          ],
        },
      ],
    });
    const registry = new MemoryAgentRegistry();
    await registerAll(registry, [
      ["a", "worker"],
      ["x", "sender"], // a sender must be a registered agent
    ]);
    const publisher = new ServiceBusEventBus({ client, topic });
    const sender = new MessagingService({ registry, publisher });
    await sender.send({
      fromAgentId: "x",
      toAgentId: "a",
      messageType: "short-lived",
      payload: 1,
      ttlSeconds: 1,
    });
    await sleep(1_500);
    const bus = new ServiceBusEventBus({ client, topic, subscription: SUBSCRIPTION });
    try {
      const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
      const got: string[] = [];
      messaging.subscribe("a", (m) => void got.push(m.messageType));

      await messaging.send({
        fromAgentId: "x",
        toAgentId: "a",
        messageType: "fresh",
        payload: 2,
        ttlSeconds: 60,
      });
      await waitFor(() => got.includes("fresh"));
      await bus.idle();
      const subscription = await inspectEntity(`${topic}/Subscriptions/${SUBSCRIPTION}`);

      expect(got).toEqual(["fresh"]);
      if (!REAL_NAMESPACE) expect(subscription.expired).toBe(1);
    } finally {
      await Promise.all([bus.close(), publisher.close()]);
    }
  });

  it("a handler that keeps failing: delivered up to the max delivery count, then dead-lettered", async () => {
    const bus = await createBus();
    try {
      const registry = new MemoryAgentRegistry();
      await registerAll(registry, [
        ["a", "worker"],
        ["x", "sender"], // a sender must be a registered agent
      ]);
      const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
      let calls = 0;
      messaging.subscribe("a", () => {
        calls++;
        throw new Error("always failing");
      });

      await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "poison", payload: 1 });
      let dead: Awaited<ReturnType<typeof inspectEntity>>["deadLettered"] = [];
      await waitFor(async () => {
        dead = (await inspectEntity(`${bus.topic}/Subscriptions/${SUBSCRIPTION}`)).deadLettered;
        return dead.length === 1;
      }, 15_000);

      expect(calls).toBe(5);
      expect(dead[0]?.reason).toBe("MaxDeliveryCountExceeded");
    } finally {
      await bus.close();
    }
  });

  it("refuses a pattern that is not exact values, before any rule is made", async () => {
    const bus = await createBus();
    try {
      expect(() => bus.subscribe({ detail: { toAgentId: [{ prefix: "a" }] } }, () => undefined)).toThrow(
        UnsupportedEventPatternError,
      );
    } finally {
      await bus.close();
    }
  });
});

async function waitFor(done: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs} ms`);
    await sleep(20);
  }
}
