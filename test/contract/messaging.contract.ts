import { setTimeout as sleep } from "node:timers/promises";
import { beforeEach, describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MessagingService } from "#shared/core/agents/messaging-service";
import type { AgentMessage } from "#shared/domain/message";
import type { EventBus } from "#shared/ports/event-bus";

export interface MessagingContractSubject {
  /** A fresh bus with no subscriptions. */
  create(): Promise<EventBus> | EventBus;
  /** Resolves when every delivery started so far has finished (or after a bounded wait). */
  settle(bus: EventBus): Promise<void>;
}

/** Polls until `done` holds: a bus delivers asynchronously. */
async function eventually(done: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not delivered within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/**
 * Agent messaging over an EventBus adapter: what MessagingService needs from the bus's publish,
 * pattern matching and delivery. Every adapter that implements EventSubscriber runs it.
 *
 * @example
 * describeMessagingContract("MemoryEventBus", {
 *   create: () => new MemoryEventBus(),
 *   settle: (bus) => (bus as MemoryEventBus).idle(),
 * });
 */
export function describeMessagingContract(name: string, subject: MessagingContractSubject): void {
  describe(`${name} (agent messaging contract)`, () => {
    let bus: EventBus;
    let messaging: MessagingService;
    let registry: MemoryAgentRegistry;
    const register = (agentId: string, agentType = "worker") =>
      registry.register({
        agentId,
        agentType,
        status: "available",
        capabilities: { supportedTools: [], supportedIntents: [], maxConcurrentTasks: 1, metadata: {} },
        lastHeartbeat: new Date().toISOString(),
        currentTaskCount: 0,
        registeredAt: new Date().toISOString(),
      });
    const collect = (agentId: string) => {
      const received: AgentMessage[] = [];
      messaging.subscribe(agentId, (m) => {
        received.push(m);
      });
      return received;
    };

    beforeEach(async () => {
      bus = await subject.create();
      registry = new MemoryAgentRegistry();
      messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
    });

    it("delivers a direct message to its recipient's subscription only", async () => {
      await register("a");
      await register("b");
      const a = collect("a");
      const b = collect("b");

      const { message } = await messaging.send({
        fromAgentId: "x",
        toAgentId: "b",
        messageType: "t",
        payload: [1],
      });
      await eventually(() => b.length === 1);
      await subject.settle(bus);

      expect(b).toEqual([message]);
      expect(a).toEqual([]);
    });

    it("delivers one copy of a broadcast to each recipient in the audience", async () => {
      await register("s1", "searcher");
      await register("s2", "searcher");
      await register("w1", "writer");
      const boxes = { s1: collect("s1"), s2: collect("s2"), w1: collect("w1") };

      await messaging.broadcast({
        fromAgentId: "x",
        messageType: "q",
        payload: 1,
        audience: { agentType: "searcher" },
      });
      await eventually(() => boxes.s1.length + boxes.s2.length === 2);
      await subject.settle(bus);

      expect([boxes.s1.length, boxes.s2.length, boxes.w1.length]).toEqual([1, 1, 0]);
      expect(boxes.s1[0]?.toAgentId).toBe("s1");
      expect(boxes.s2[0]?.toAgentId).toBe("s2");
    });

    it("delivers by message type whoever the message is for", async () => {
      await register("a");
      const typed: string[] = [];
      messaging.subscribeByType("audit", (m) => {
        typed.push(m.messageType);
      });

      await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "chat", payload: 1 });
      await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "audit", payload: 2 });
      await eventually(() => typed.length === 1);
      await subject.settle(bus);

      expect(typed).toEqual(["audit"]);
    });

    it("delivers again to a subscriber that failed (at least once)", async () => {
      await register("a");
      let calls = 0;
      const taken: string[] = [];
      messaging.subscribe("a", (m) => {
        calls++;
        if (calls === 1) throw new Error("not yet");
        taken.push(m.messageId);
      });

      const { message } = await messaging.send({
        fromAgentId: "x",
        toAgentId: "a",
        messageType: "t",
        payload: 1,
      });
      await eventually(() => taken.length === 1);
      await subject.settle(bus);

      expect(taken).toEqual([message.messageId]);
      expect(calls).toBe(2);
    });

    it("never delivers an expired message", async () => {
      await register("a");
      const a = collect("a");
      const old = new Date(Date.now() - 10_000).toISOString();

      await messaging.send({
        fromAgentId: "x",
        toAgentId: "a",
        messageType: "stale",
        payload: 1,
        ttlSeconds: 1,
        timestamp: old,
      });
      await messaging.send({
        fromAgentId: "x",
        toAgentId: "a",
        messageType: "fresh",
        payload: 2,
        ttlSeconds: 60,
      });
      await eventually(() => a.some((m) => m.messageType === "fresh"));
      await subject.settle(bus);

      expect(a.map((m) => m.messageType)).toEqual(["fresh"]);
    });

    it("stops delivering to an unsubscribed handler", async () => {
      await register("a");
      const first: string[] = [];
      const second: string[] = [];
      const stop = messaging.subscribe("a", (m) => {
        first.push(m.messageType);
      });
      messaging.subscribe("a", (m) => {
        second.push(m.messageType);
      });

      stop();
      await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "t", payload: 1 });
      await eventually(() => second.length === 1);
      await subject.settle(bus);

      expect(first).toEqual([]);
    });

    it("completes a request with the correlated reply", async () => {
      await register("asker");
      await register("answerer");
      messaging.subscribe("answerer", async (request) => {
        await messaging.reply(request, { payload: { echoed: request.payload } });
      });

      const reply = await messaging.request(
        { fromAgentId: "asker", toAgentId: "answerer", messageType: "echo", payload: "hello" },
        { timeoutMs: 2_000 },
      );

      expect(reply).toMatchObject({ toAgentId: "asker", payload: { echoed: "hello" } });
      expect(reply.correlationId).toBeDefined();
    });
  });
}
