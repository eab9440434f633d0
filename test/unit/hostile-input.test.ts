import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { agentMessagePattern, MessagingService } from "#shared/core/agents/messaging-service";
import { JobStepError } from "#shared/core/jobs/errors";
import { buildStepInputs } from "#shared/core/jobs/pipeline";
import type { AgentInfo } from "#shared/domain/agent";
import { NotFoundError, ValidationError } from "#shared/domain/errors";
import { findJsonProblem, MAX_JSON_DEPTH } from "#shared/domain/json";
import type { AgentMessage } from "#shared/domain/message";
import { MAX_PAYLOAD_BYTES, TaskInputSchema } from "#shared/domain/task";
import { createCoreFixture } from "#test/support/core-fixture";

/**
 * Regression tests for the defects a careless or hostile client found (issue 11). Each names its
 * defect; each failed before its fix. End-to-end cases over HTTP on both runtimes live in
 * test/e2e/hostile-input.suite.ts.
 */

// A full collection between measurements, so heap growth is what is retained, not garbage not yet collected.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const retainedHeap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const MiB = 1024 * 1024;

function agent(agentId: string): AgentInfo {
  const now = new Date().toISOString();
  return {
    agentId,
    agentType: "crowd",
    status: "available",
    capabilities: { supportedTools: [], supportedIntents: [], maxConcurrentTasks: 1, metadata: {} },
    lastHeartbeat: now,
    currentTaskCount: 0,
    registeredAt: now,
  };
}

async function messagingWith(agentIds: readonly string[]) {
  const registry = new MemoryAgentRegistry();
  for (const agentId of agentIds) await registry.register(agent(agentId));
  const bus = new MemoryEventBus();
  const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
  return { registry, bus, messaging };
}

describe("defect 1: the in-process event bus keeps memory bounded", () => {
  it("shares one copy of a broadcast's payload among 10,000 recipients and keeps nothing after delivery", async () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `crowd-${i}`);
    const { bus, messaging } = await messagingWith(["sender", ...ids]);
    const received: number[] = [];
    // A hundred of them listen in process; the broadcast still goes to all 10,000.
    for (const id of ids.slice(0, 100))
      messaging.subscribe(id, (m) => void received.push(String(m.payload).length));
    const before = retainedHeap();

    for (let i = 0; i < 2; i++) {
      const sent = await messaging.broadcast({
        fromAgentId: "sender",
        messageType: "big",
        payload: "x".repeat(230 * 1024),
      });
      expect(sent.recipients).toHaveLength(10_000);
    }
    await bus.idle();
    const grown = retainedHeap() - before;

    expect(received).toHaveLength(200);
    // Copies per recipient would be 2 × 10,000 × 230 KiB ≈ 4.4 GiB; the ceiling is generous.
    expect(grown).toBeLessThan(64 * MiB);
  }, 120_000);

  it("retains nothing of direct messages once delivered (no history unless a test asks for one)", async () => {
    const { bus, messaging } = await messagingWith(["a", "b"]);
    messaging.subscribe("b", () => {});
    const before = retainedHeap();

    for (let i = 0; i < 200; i++) {
      await messaging.send({
        fromAgentId: "a",
        toAgentId: "b",
        messageType: "big",
        payload: String(i).padStart(6, "0").repeat(33_000),
      });
    }
    await bus.idle();

    // 200 messages of ~200 KB would retain ~40 MiB (strings of digits are one byte per character).
    expect(retainedHeap() - before).toBeLessThan(16 * MiB);
    expect(() => bus.inspectPublished()).toThrow(/keeps no history/);
  });
});

describe("defect 2: a pipeline step's fan-out has a byte budget, checked before its tasks exist", () => {
  it("fails the step with fan_out_too_large when a template copies a large result into 1,000 tasks", () => {
    const output = Array.from({ length: 1_000 }, (_, i) => ({ i, text: "y".repeat(200) }));
    const plan = {
      tasks: {
        fromPrevious: { taskType: "echo", forEach: "result" as const, input: { all: { $from: "result" } } },
      },
      aggregation: { policy: "all" as const, reducer: "collect" as const },
      failurePolicy: { mode: "fail-fast" as const },
    };
    const before = process.memoryUsage().heapUsed;

    const error = (() => {
      try {
        buildStepInputs(plan as never, { result: { output, outputTaskIds: [], failedTasks: [] } });
      } catch (caught) {
        return caught;
      }
    })();

    expect(error).toBeInstanceOf(JobStepError);
    expect((error as JobStepError).code).toBe("fan_out_too_large");
    // ~225 KB × 1,000 would be ~225 MB built before the old check; the budget stops at 8 MiB.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(100 * MiB);
  });
});

describe("defect 3: one JSON acceptance rule, the strictest backend's", () => {
  it.each([
    ["nesting deeper than DynamoDB stores", { input: nestedValue(MAX_JSON_DEPTH + 1) }],
    ["an integer JavaScript cannot hold exactly", JSON.parse('{"input":9007199254740993}')],
    ["a number above DynamoDB's range", { input: 1e126 }],
    ["a number below DynamoDB's range", { input: 1e-131 }],
    ["an empty object key", { input: { "": 1 } }],
    ["an unpaired surrogate", { input: "\ud800" }],
  ])("refuses %s in a task input", (_name, body) => {
    const result = TaskInputSchema.safeParse({ taskType: "echo", ...body });

    expect(result.success).toBe(false);
  });

  it("accepts the bounds themselves", () => {
    for (const input of [
      nestedValue(MAX_JSON_DEPTH),
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      1e-130,
      0.1,
      0,
      "😀",
    ]) {
      expect(TaskInputSchema.safeParse({ taskType: "echo", input }).success).toBe(true);
    }
  });

  it("refuses an empty metadata key", () => {
    expect(TaskInputSchema.safeParse({ taskType: "echo", input: 1, metadata: { "": "x" } }).success).toBe(
      false,
    );
  });

  it("applies the same rule in the supervisor, for inputs that never crossed the edge", async () => {
    const f = createCoreFixture();

    const error = await f.supervisor
      .submit([{ taskType: "echo", input: { value: nestedValue(30) } as never }])
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).details).toEqual([
      expect.objectContaining({ path: expect.stringMatching(/^input\.value/) }),
    ]);
  });
});

describe("defect 4: deep JSON is found without recursion", () => {
  it("reports 100,000 levels of nesting as a problem, not a stack overflow", () => {
    let value: unknown = 1;
    for (let i = 0; i < 100_000; i++) value = [value];

    expect(findJsonProblem(value)?.message).toMatch(/nested deeper than/);
  });
});

describe("output_not_storable: an output the store would refuse fails the task once", () => {
  it.each([
    ["nested deeper than the rule allows", () => nestedValue(MAX_JSON_DEPTH + 2)],
    ["not JSON at all (a BigInt)", () => ({ big: 10n })],
    [
      "a cycle",
      () => {
        const cycle: Record<string, unknown> = {};
        cycle.self = cycle;
        return cycle;
      },
    ],
    ["too large beside its input", () => "z".repeat(MAX_PAYLOAD_BYTES - 100)],
  ])("%s", async (_name, output) => {
    const f = createCoreFixture();
    const taskId = await f.submitOne({ input: { value: "i".repeat(150 * 1024) }, maxAttempts: 3 });
    let runs = 0;

    const settlement = await f
      .dispatcher({
        echo: async () => {
          runs++;
          return output();
        },
      })
      .process(await f.receiveOne());

    expect(settlement).toEqual({ kind: "ack", reason: "task failed" });
    expect(runs).toBe(1);
    expect(f.store.inspect(taskId)).toMatchObject({
      status: "failed",
      attempts: 1,
      error: { code: "output_not_storable" },
      result: { success: false },
    });
  });

  it("stores a JSON-serializable output as the JSON it becomes (a Date as its ISO string)", async () => {
    const f = createCoreFixture();
    const taskId = await f.submitOne();
    const at = new Date("2030-01-01T00:00:00.000Z");

    await f.dispatcher({ echo: async () => ({ at, gone: undefined }) }).process(await f.receiveOne());

    expect(f.store.inspect(taskId)?.result?.output).toEqual({ at: "2030-01-01T00:00:00.000Z" });
  });
});

describe("defect 7: messaging tells the truth about senders and recipients", () => {
  it("refuses a message from an agent that is not registered, and publishes nothing", async () => {
    const { messaging } = await messagingWith(["bob"]);
    const delivered: AgentMessage[] = [];
    messaging.subscribe("bob", (m) => void delivered.push(m));

    const error = await messaging
      .send({ fromAgentId: "mallory", toAgentId: "bob", messageType: "t", payload: 1 })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).message).toMatch(/sender agent mallory/);
    expect(delivered).toEqual([]);
  });

  it("delivers a second message that reuses a message id with another payload", async () => {
    const { bus, messaging } = await messagingWith(["alice", "bob"]);
    const delivered: unknown[] = [];
    messaging.subscribe("bob", (m) => void delivered.push(m.payload));
    const base = { messageId: "m-1", fromAgentId: "alice", toAgentId: "bob", messageType: "t" };

    await messaging.send({ ...base, payload: "first" });
    await messaging.send({ ...base, payload: "first" });
    await messaging.send({ ...base, payload: "second" });
    await bus.idle();

    // The repeat of the same message is a redelivery and is dropped; the other payload is another message.
    expect(delivered).toEqual(["first", "second"]);
  });

  it("reports no recipients for a message that expired before it was sent, and publishes nothing", async () => {
    const { bus, messaging } = await messagingWith(["alice", "bob"]);
    let published = 0;
    bus.subscribe(agentMessagePattern(), () => void published++);

    const sent = await messaging.send({
      fromAgentId: "alice",
      toAgentId: "bob",
      messageType: "stale",
      payload: 1,
      ttlSeconds: 1,
      timestamp: new Date(Date.now() - 10_000).toISOString(),
    });
    await bus.idle();

    expect(sent.recipients).toEqual([]);
    expect(published).toBe(0);
  });
});

function nestedValue(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}
