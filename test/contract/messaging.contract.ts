import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MessagingService } from "#shared/core/agents/messaging-service";
import type { AgentMessage } from "#shared/domain/message";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import type { EventBus, EventPublisher, EventSubscriber } from "#shared/ports/event-bus";

/**
 * Messaging wired from separate parts, as on AWS: the publisher sends to the event service, whose
 * rules (the subscriber) deliver; the registry resolves recipients.
 */
export interface MessagingParts {
  readonly publisher: EventPublisher;
  readonly subscriber: EventSubscriber;
  /** @default a fresh MemoryAgentRegistry */
  readonly registry?: AgentRegistry;
}

/** `S` is what `create` makes: one EventBus (publisher and subscriber at once), or MessagingParts. */
export interface MessagingContractSubject<S extends EventBus | MessagingParts = EventBus> {
  /** A fresh bus with no subscriptions (and, for MessagingParts, an empty registry). */
  create(): Promise<S> | S;
  /** Resolves when every delivery started so far has finished (or after a bounded wait). */
  settle(subject: S): Promise<void>;
  /** Releases what `create` made (servers, clients), after each test. */
  destroy?(subject: S): Promise<void> | void;
}

function partsOf(subject: EventBus | MessagingParts): MessagingParts {
  return "publisher" in subject ? subject : { publisher: subject, subscriber: subject };
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
 * pattern matching and delivery. Every adapter that implements EventSubscriber runs it, and so does
 * every publisher whose service delivers through rules (MessagingParts).
 *
 * @example
 * describeMessagingContract("MemoryEventBus", {
 *   create: () => new MemoryEventBus(),
 *   settle: (bus) => (bus as MemoryEventBus).idle(),
 * });
 * describeMessagingContract("EventBridgePublisher", {
 *   create: async () => ({ publisher, subscriber: standIn, registry }),
 *   settle: () => standIn.idle(),
 * });
 */
export function describeMessagingContract<S extends EventBus | MessagingParts>(
  name: string,
  subject: MessagingContractSubject<S>,
): void {
  describe(`${name} (agent messaging contract)`, () => {
    let bus: S | undefined;
    let messaging: MessagingService;
    let registry: AgentRegistry;
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

    const settle = () => (bus === undefined ? Promise.resolve() : subject.settle(bus));

    beforeEach(async () => {
      bus = await subject.create();
      const parts = partsOf(bus);
      registry = parts.registry ?? new MemoryAgentRegistry();
      messaging = new MessagingService({
        registry,
        publisher: parts.publisher,
        subscriber: parts.subscriber,
      });
    });

    afterEach(async () => {
      if (bus === undefined) return;
      const created = bus;
      bus = undefined;
      await subject.settle(created);
      await subject.destroy?.(created);
    });

    it("delivers a direct message to its recipient's subscription only", async () => {
      await register("x");
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
      await settle();

      expect(b).toEqual([message]);
      expect(a).toEqual([]);
    });

    it("delivers one copy of a broadcast to each recipient in the audience", async () => {
      await register("x");
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
      await settle();

      expect([boxes.s1.length, boxes.s2.length, boxes.w1.length]).toEqual([1, 1, 0]);
      expect(boxes.s1[0]?.toAgentId).toBe("s1");
      expect(boxes.s2[0]?.toAgentId).toBe("s2");
    });

    it("delivers by message type whoever the message is for", async () => {
      await register("x");
      await register("a");
      const typed: string[] = [];
      messaging.subscribeByType("audit", (m) => {
        typed.push(m.messageType);
      });

      await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "chat", payload: 1 });
      await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "audit", payload: 2 });
      await eventually(() => typed.length === 1);
      await settle();

      expect(typed).toEqual(["audit"]);
    });

    it("delivers again to a subscriber that failed (at least once)", async () => {
      await register("x");
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
      await settle();

      expect(taken).toEqual([message.messageId]);
      expect(calls).toBe(2);
    });

    it("never delivers an expired message", async () => {
      await register("x");
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
      await settle();

      expect(a.map((m) => m.messageType)).toEqual(["fresh"]);
    });

    it("stops delivering to an unsubscribed handler", async () => {
      await register("x");
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
      await settle();

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
