import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { matchesEventPattern } from "#shared/adapters/memory/event-pattern";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { AgentService } from "#shared/core/agents/agent-service";
import { MessageTimeoutError, MessagingConfigurationError } from "#shared/core/agents/errors";
import {
  agentMessageEvent,
  agentMessagePattern,
  MessagingService,
} from "#shared/core/agents/messaging-service";
import type { SendMessageInput } from "#shared/core/agents/schemas";
import { NotFoundError, PayloadTooLargeError, ValidationError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { AgentMessage } from "#shared/domain/message";
import type { Clock } from "#shared/ports/clock";
import type { EventBus, EventHandler, EventPattern } from "#shared/ports/event-bus";
import { agentMessageHandler, createAgentMessenger } from "#shared/worker/messaging";

class FixedClock implements Clock {
  private ms = Date.parse("2030-01-01T00:00:00.000Z");
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** A bus that holds every event until the test releases it: delivery happens when the test says. */
class HeldBus implements EventBus {
  private readonly held: BusEvent[] = [];
  private readonly subscriptions = new Set<{ pattern: EventPattern; handler: EventHandler }>();
  async publish(events: readonly BusEvent[]): Promise<void> {
    this.held.push(...structuredClone(events));
  }
  subscribe(pattern: EventPattern, handler: EventHandler): () => void {
    const subscription = { pattern, handler };
    this.subscriptions.add(subscription);
    return () => this.subscriptions.delete(subscription);
  }
  get subscriptionCount(): number {
    return this.subscriptions.size;
  }
  async release(): Promise<void> {
    for (const event of this.held.splice(0)) {
      for (const { pattern, handler } of this.subscriptions) {
        if (matchesEventPattern(pattern, event)) await handler(event);
      }
    }
  }
}

async function setup(options: { bus?: EventBus; clock?: Clock } = {}) {
  const clock = options.clock ?? new FixedClock();
  const registry = new MemoryAgentRegistry();
  const bus = options.bus ?? new MemoryEventBus({ maxDeliveryAttempts: 3, recordPublished: true });
  let sequence = 0;
  const messaging = new MessagingService({
    registry,
    publisher: bus,
    subscriber: bus,
    clock,
    newId: () => `m-${++sequence}`,
  });
  const agents = new AgentService({ registry, store: new MemoryTaskStore(), clock });
  const register = (agentId: string, agentType = "worker", tools: string[] = []) =>
    agents.register({ agentId, agentType, capabilities: { supportedTools: tools } });
  /** Collects what each agent receives. */
  const inbox = (agentId: string) => {
    const received: AgentMessage[] = [];
    messaging.subscribe(agentId, (message) => {
      received.push(message);
    });
    return received;
  };
  return { clock, registry, bus, messaging, register, inbox };
}

const idle = (bus: EventBus) => (bus instanceof MemoryEventBus ? bus.idle() : Promise.resolve());

describe("MessagingService.send", () => {
  it("delivers a message to its registered recipient, stamped with an id and the send time", async () => {
    const { bus, messaging, register, inbox, clock } = await setup();
    await register("alice");
    await register("bob");
    const bobs = inbox("bob");
    const alices = inbox("alice");

    const sent = await messaging.send({
      fromAgentId: "alice",
      toAgentId: "bob",
      messageType: "greeting",
      payload: { text: "hi" },
      headers: { "trace-id": "t-1" },
    });
    await idle(bus);

    const expected = {
      messageId: "m-1",
      fromAgentId: "alice",
      toAgentId: "bob",
      messageType: "greeting",
      payload: { text: "hi" },
      headers: { "trace-id": "t-1" },
      timestamp: clock.now().toISOString(),
    };
    expect(sent).toEqual({ message: expected, recipients: ["bob"] });
    expect(bobs).toEqual([expected]);
    expect(alices).toEqual([]);
  });

  it("publishes one Agent Message event per recipient that EventBridge patterns select by recipient", async () => {
    const { bus, messaging, register } = await setup();
    await register("alice");
    await register("bob");

    await messaging.send({ fromAgentId: "alice", toAgentId: "bob", messageType: "t", payload: 1 });

    const [event] = (bus as MemoryEventBus).inspectPublished();
    expect(event).toMatchObject({ id: "m-1:bob", source: "agentry", "detail-type": "Agent Message" });
    expect(matchesEventPattern(agentMessagePattern({ toAgentId: "bob" }), event)).toBe(true);
    expect(matchesEventPattern(agentMessagePattern({ toAgentId: "carol" }), event)).toBe(false);
  });

  it("answers NotFoundError for an unregistered recipient and publishes nothing", async () => {
    const { bus, messaging, register } = await setup();
    await register("alice");

    const error = await messaging
      .send({ fromAgentId: "alice", toAgentId: "nobody", messageType: "t", payload: 1 })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NotFoundError);
    expect((bus as MemoryEventBus).inspectPublished()).toEqual([]);
  });

  it("refuses an invalid message with a detail per offending field", async () => {
    const { messaging, register } = await setup();
    await register("bob");

    const error = await messaging
      .send({
        fromAgentId: "",
        toAgentId: "bob",
        ttlSeconds: 0,
        audience: { agentType: "worker" },
        surprise: 1,
      } as unknown as SendMessageInput)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ValidationError);
    const paths = ((error as ValidationError).details as readonly { path: string }[]).map((d) => d.path);
    expect(paths).toEqual(
      expect.arrayContaining(["fromAgentId", "messageType", "payload", "ttlSeconds", "surprise"]),
    );
  });

  it("refuses an audience on a message to one agent", async () => {
    const { messaging, register } = await setup();
    await register("a");
    await register("bob");

    const error = await messaging
      .send({
        fromAgentId: "a",
        toAgentId: "bob",
        messageType: "t",
        payload: 1,
        audience: { status: "available" },
      })
      .catch((e: unknown) => e);

    expect((error as ValidationError).details).toEqual([{ path: "audience", message: expect.any(String) }]);
  });

  it("refuses a timestamp from the future and a message over 240 KiB", async () => {
    const { messaging, register, clock } = await setup();
    await register("a");
    await register("bob");
    const base = { fromAgentId: "a", toAgentId: "bob", messageType: "t" };

    const future = await messaging
      .send({ ...base, payload: 1, timestamp: new Date(clock.now().getTime() + 120_000).toISOString() })
      .catch((e: unknown) => e);
    const large = await messaging.send({ ...base, payload: "x".repeat(241 * 1024) }).catch((e: unknown) => e);

    expect((future as ValidationError).details).toEqual([
      { path: "timestamp", message: "must not be in the future" },
    ]);
    expect(large).toBeInstanceOf(PayloadTooLargeError);
  });
});

describe("message expiry", () => {
  it("never delivers a message whose ttl ran out before delivery", async () => {
    const clock = new FixedClock();
    const bus = new HeldBus();
    const { messaging, register, inbox } = await setup({ bus, clock });
    await register("a");
    await register("bob");
    const received = inbox("bob");
    await messaging.send({
      fromAgentId: "a",
      toAgentId: "bob",
      messageType: "short",
      payload: 1,
      ttlSeconds: 5,
    });
    await messaging.send({
      fromAgentId: "a",
      toAgentId: "bob",
      messageType: "long",
      payload: 2,
      ttlSeconds: 10,
    });
    await messaging.send({ fromAgentId: "a", toAgentId: "bob", messageType: "forever", payload: 3 });

    clock.advance(5_000);
    await bus.release();

    expect(received.map((m) => m.messageType)).toEqual(["long", "forever"]);
  });

  it("counts the ttl from the sender's timestamp", async () => {
    const { bus, messaging, register, inbox, clock } = await setup();
    await register("a");
    await register("bob");
    const received = inbox("bob");
    const tenSecondsAgo = new Date(clock.now().getTime() - 10_000).toISOString();

    await messaging.send({
      fromAgentId: "a",
      toAgentId: "bob",
      messageType: "stale",
      payload: 1,
      ttlSeconds: 5,
      timestamp: tenSecondsAgo,
    });
    await messaging.send({
      fromAgentId: "a",
      toAgentId: "bob",
      messageType: "fresh",
      payload: 2,
      ttlSeconds: 5,
    });
    await idle(bus);

    expect(received.map((m) => m.messageType)).toEqual(["fresh"]);
  });
});

describe("broadcasts", () => {
  it("reach exactly the registered agents matching the audience, never the sender", async () => {
    const { bus, messaging, register, inbox } = await setup();
    await register("sender", "searcher", ["search"]);
    await register("s1", "searcher", ["search"]);
    await register("s2", "searcher", ["search"]);
    await register("w1", "writer", ["search"]);
    await register("s3", "searcher", ["crawl"]);
    const boxes = Object.fromEntries(["sender", "s1", "s2", "w1", "s3"].map((id) => [id, inbox(id)]));

    const sent = await messaging.broadcast({
      fromAgentId: "sender",
      messageType: "query",
      payload: { q: "agents" },
      audience: { capability: "search", agentType: "searcher" },
    });
    await idle(bus);

    expect(sent.recipients).toEqual(["s1", "s2"]);
    expect(sent.message.toAgentId).toBe("*");
    const counts = Object.fromEntries(Object.entries(boxes).map(([id, box]) => [id, box.length]));
    expect(counts).toEqual({ sender: 0, s1: 1, s2: 1, w1: 0, s3: 0 });
    expect(boxes.s1?.[0]).toMatchObject({ messageId: sent.message.messageId, toAgentId: "s1" });
  });

  it("resolve the audience at send time, including by status", async () => {
    const { bus, messaging, register, inbox, registry } = await setup();
    await register("ops");
    await register("up");
    await register("down");
    await registry.updateStatus("down", "unavailable");
    const up = inbox("up");
    const down = inbox("down");

    const sent = await messaging.broadcast({
      fromAgentId: "ops",
      messageType: "drain",
      payload: null,
      audience: { status: "available" },
    });
    await register("late");
    await idle(bus);

    expect(sent.recipients).toEqual(["up"]);
    expect([up.length, down.length]).toEqual([1, 0]);
  });

  it("without an audience reach every registered agent", async () => {
    const { messaging, register } = await setup();
    await register("ops");
    await register("a");
    await register("b");

    const sent = await messaging.send({
      fromAgentId: "ops",
      toAgentId: "*",
      messageType: "hello",
      payload: 1,
    });

    expect(sent.recipients).toEqual(["a", "b"]);
  });
});

describe("subscriptions", () => {
  it("by type receive every message of that type, whoever it is for", async () => {
    const { bus, messaging, register } = await setup();
    await register("x");
    await register("a");
    await register("b");
    const audits: string[] = [];
    messaging.subscribeByType("audit", (m) => {
      audits.push(m.toAgentId);
    });

    await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "audit", payload: 1 });
    await messaging.send({ fromAgentId: "x", toAgentId: "b", messageType: "audit", payload: 2 });
    await messaging.send({ fromAgentId: "x", toAgentId: "b", messageType: "chat", payload: 3 });
    await idle(bus);

    expect(audits.sort()).toEqual(["a", "b"]);
  });

  it("stop receiving once unsubscribed", async () => {
    const { bus, messaging, register } = await setup();
    await register("x");
    await register("a");
    const received: AgentMessage[] = [];
    const unsubscribe = messaging.subscribe("a", (m) => {
      received.push(m);
    });
    await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "one", payload: 1 });
    await idle(bus);

    unsubscribe();
    await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "two", payload: 2 });
    await idle(bus);

    expect(received.map((m) => m.messageType)).toEqual(["one"]);
  });

  it("take a redelivered message once, and get it again when the handler failed", async () => {
    const bus = new HeldBus();
    const { messaging, register } = await setup({ bus });
    await register("x");
    await register("a");
    const seen: string[] = [];
    let failNext = true;
    messaging.subscribe("a", (m) => {
      if (failNext) {
        failNext = false;
        throw new Error("handler failed");
      }
      seen.push(m.messageId);
    });
    const { message } = await messaging.send({
      fromAgentId: "x",
      toAgentId: "a",
      messageType: "t",
      payload: 1,
    });
    const event = agentMessageEvent({ ...message, toAgentId: "a" }, message.timestamp);

    await expect(bus.release()).rejects.toThrow("handler failed");
    await bus.publish([event, event]);
    await bus.release();

    expect(seen).toEqual([message.messageId]);
  });

  it("drop a malformed event instead of failing on it", async () => {
    const bus = new HeldBus();
    const { messaging } = await setup({ bus });
    const received: AgentMessage[] = [];
    messaging.subscribe("a", (m) => {
      received.push(m);
    });

    await bus.publish([
      { id: "bad", source: "agentry", "detail-type": "Agent Message", time: "", detail: { toAgentId: "a" } },
    ]);

    await expect(bus.release()).resolves.toBeUndefined();
    expect(received).toEqual([]);
  });

  it("need a subscriber: a publish-only service refuses to subscribe", async () => {
    const messaging = new MessagingService({
      registry: new MemoryAgentRegistry(),
      publisher: new MemoryEventBus(),
    });

    expect(() => messaging.subscribe("a", () => {})).toThrow(MessagingConfigurationError);
  });
});

describe("request and reply", () => {
  it("resolves a request with the reply that carries its correlation id", async () => {
    const { messaging, register } = await setup();
    await register("asker");
    await register("answerer");
    messaging.subscribe("answerer", async (request) => {
      // Noise first: a message to the asker that is not the reply.
      await messaging.send({ fromAgentId: "answerer", toAgentId: "asker", messageType: "noise", payload: 0 });
      await messaging.reply(request, { payload: { sum: 3 } });
    });

    const reply = await messaging.request(
      { fromAgentId: "asker", toAgentId: "answerer", messageType: "add", payload: [1, 2] },
      { timeoutMs: 2_000 },
    );

    expect(reply).toMatchObject({
      fromAgentId: "answerer",
      toAgentId: "asker",
      messageType: "reply",
      payload: { sum: 3 },
      correlationId: "m-1",
    });
  });

  it("keeps a correlation id the request sets", async () => {
    const { messaging, register } = await setup();
    await register("asker");
    await register("answerer");
    messaging.subscribe("answerer", (request) => messaging.reply(request, { payload: "ok" }).then(() => {}));

    const reply = await messaging.request(
      { fromAgentId: "asker", toAgentId: "answerer", messageType: "q", payload: 1, correlationId: "conv-42" },
      { timeoutMs: 2_000 },
    );

    expect(reply.correlationId).toBe("conv-42");
  });

  it("rejects with MessageTimeoutError when no reply comes, and stops listening", async () => {
    const bus = new HeldBus();
    const clock = new FixedClock();
    const { messaging, register } = await setup({ bus, clock });
    await register("asker");
    await register("silent");

    const error = await messaging
      .request({ fromAgentId: "asker", toAgentId: "silent", messageType: "q", payload: 1 }, { timeoutMs: 30 })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MessageTimeoutError);
    expect((error as MessageTimeoutError).correlationId).toBe("m-1");
    expect(bus.subscriptionCount).toBe(0);
  });

  it("rejects at once when the request cannot be sent, and stops listening", async () => {
    const bus = new HeldBus();
    const { messaging, register } = await setup({ bus });
    await register("asker");

    const started = Date.now();
    const error = await messaging
      .request(
        { fromAgentId: "asker", toAgentId: "nobody", messageType: "q", payload: 1 },
        { timeoutMs: 5_000 },
      )
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NotFoundError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(bus.subscriptionCount).toBe(0);
  });

  it("refuses a broadcast request and an invalid timeout", async () => {
    const { messaging } = await setup();
    const base = { fromAgentId: "a", messageType: "q", payload: 1 };

    await expect(messaging.request({ ...base, toAgentId: "*" }, { timeoutMs: 10 })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(messaging.request({ ...base, toAgentId: "b" }, { timeoutMs: 0 })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});

describe("worker SDK messaging", () => {
  it("sends, broadcasts, requests and replies as its own agent", async () => {
    const { bus, messaging, register } = await setup();
    await register("planner");
    await register("helper");
    const planner = createAgentMessenger("planner", messaging);
    const helper = createAgentMessenger("helper", messaging);
    const helperInbox: AgentMessage[] = [];
    helper.subscribe(async (message) => {
      helperInbox.push(message);
      if (message.messageType === "ask") await helper.reply(message, { messageType: "answer", payload: 42 });
    });

    const broadcast = await planner.broadcast({ messageType: "hello", payload: null });
    const reply = await planner.request(
      { toAgentId: "helper", messageType: "ask", payload: "?" },
      { timeoutMs: 2_000 },
    );
    await idle(bus);

    expect(broadcast.recipients).toEqual(["helper"]);
    expect(helperInbox.map((m) => [m.fromAgentId, m.messageType])).toEqual([
      ["planner", "hello"],
      ["planner", "ask"],
    ]);
    expect(reply).toMatchObject({ fromAgentId: "helper", messageType: "answer", payload: 42 });
  });

  it("hands a Lambda target's EventBridge event to the handler, unless the message expired", async () => {
    const clock = new FixedClock();
    const handled: string[] = [];
    const handler = agentMessageHandler(
      (m) => {
        handled.push(m.messageType);
      },
      { clock },
    );
    const message = (messageType: string, ttlSeconds?: number): AgentMessage => ({
      messageId: messageType,
      fromAgentId: "a",
      toAgentId: "lambda:b",
      messageType,
      payload: null,
      headers: {},
      timestamp: new Date(clock.now().getTime() - 2_000).toISOString(),
      ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
    });

    await handler(agentMessageEvent(message("expired", 1), clock.now().toISOString()));
    await handler(agentMessageEvent(message("live", 60), clock.now().toISOString()));

    expect(handled).toEqual(["live"]);
  });

  it("fails a Lambda target's invocation when the handler throws, so EventBridge retries it", async () => {
    const handler = agentMessageHandler(() => {
      throw new Error("not now");
    });
    const event = agentMessageEvent(
      {
        messageId: "m",
        fromAgentId: "a",
        toAgentId: "b",
        messageType: "t",
        payload: null,
        headers: {},
        timestamp: new Date().toISOString(),
      },
      new Date().toISOString(),
    );

    await expect(handler(event)).rejects.toThrow("not now");
  });
});

describe("delivery over the embedded bus", () => {
  it("retries a failing subscriber until it takes the message", async () => {
    const { bus, messaging, register } = await setup();
    await register("x");
    await register("a");
    let attempts = 0;
    messaging.subscribe("a", () => {
      attempts++;
      if (attempts < 2) throw new Error("try again");
    });

    await messaging.send({ fromAgentId: "x", toAgentId: "a", messageType: "t", payload: 1 });
    await sleep(0);
    await idle(bus);

    expect(attempts).toBe(2);
  });
});
