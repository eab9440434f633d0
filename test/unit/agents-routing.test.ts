import { describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { AgentRouter } from "#shared/core/agents/agent-router";
import { isEligibleAgent, leastLoaded, roundRobin } from "#shared/core/agents/agent-selector";
import { agentInboxQueue } from "#shared/core/routing";
import { Supervisor } from "#shared/core/supervisor";
import type { AgentInfo } from "#shared/domain/agent";
import type { Task } from "#shared/domain/task";
import type { OutgoingTaskMessage, SendFailure, TaskQueue } from "#shared/ports/task-queue";
import { createCoreFixture } from "#test/support/core-fixture";

function agent(agentId: string, overrides: Partial<AgentInfo> = {}, inbox = true): AgentInfo {
  const now = new Date().toISOString();
  return {
    agentId,
    agentType: "diagnostics",
    status: "available",
    capabilities: {
      supportedTools: ["diagnostics"],
      supportedIntents: ["echo"],
      maxConcurrentTasks: 2,
      metadata: inbox ? { inbox: agentInboxQueue(agentId) } : {},
    },
    lastHeartbeat: now,
    currentTaskCount: 0,
    registeredAt: now,
    ...overrides,
  };
}

function load(agentId: string, currentTaskCount: number, maxConcurrentTasks: number): AgentInfo {
  const base = agent(agentId);
  return { ...base, currentTaskCount, capabilities: { ...base.capabilities, maxConcurrentTasks } };
}

function task(taskId: string, preferredAgentId?: string, requiredCapability = "diagnostics"): Task {
  const now = new Date().toISOString();
  return {
    taskId,
    taskType: "echo",
    status: "submitted",
    input: null,
    requiredCapability,
    ...(preferredAgentId !== undefined ? { preferredAgentId } : {}),
    priority: 0,
    attempts: 0,
    maxAttempts: 3,
    cancelRequested: false,
    version: 1,
    createdAt: now,
    updatedAt: now,
    metadata: {},
  };
}

async function registryWith(...agents: AgentInfo[]): Promise<MemoryAgentRegistry> {
  const registry = new MemoryAgentRegistry();
  for (const a of agents) await registry.register(a);
  return registry;
}

describe("agentInboxQueue", () => {
  it("names an agent's inbox agent-<agentId> when the id is queue-safe", () => {
    expect(agentInboxQueue("diagnostics-1a2b3c4d")).toBe("agent-diagnostics-1a2b3c4d");
  });

  it("replaces characters SQS refuses and appends a hash, so similar ids keep separate inboxes", () => {
    const dotted = agentInboxQueue("a.b");
    const coloned = agentInboxQueue("a:b");

    expect(dotted).toMatch(/^agent-a-b-[0-9a-f]{8}$/);
    expect(coloned).toMatch(/^agent-a-b-[0-9a-f]{8}$/);
    expect(dotted).not.toBe(coloned);
    expect(dotted).not.toBe(agentInboxQueue("a-b"));
  });

  it("keeps every inbox name within SQS's 80 characters of A-Z a-z 0-9 - _", () => {
    const long = `x${"y".repeat(127)}`;
    const names = [agentInboxQueue(long), agentInboxQueue(`lambda:${"z".repeat(120)}`)];

    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(agentInboxQueue(long)).not.toBe(agentInboxQueue(`${long.slice(0, 127)}q`));
  });
});

describe("agent selection", () => {
  it("counts an agent eligible when available, below capacity and serving the capability", () => {
    expect(isEligibleAgent(agent("a"), "diagnostics")).toBe(true);
    expect(isEligibleAgent(agent("a"), "echo")).toBe(true);
    expect(isEligibleAgent(agent("a", { status: "busy" }), "diagnostics")).toBe(false);
    expect(isEligibleAgent(load("a", 2, 2), "diagnostics")).toBe(false);
    expect(isEligibleAgent(load("a", 1, 2), "diagnostics", 1)).toBe(false);
    expect(isEligibleAgent(agent("a"), "summarization")).toBe(false);
  });

  it("least-loaded picks the lowest share of slots in use, then the fewest tasks, then the id", () => {
    const selector = leastLoaded();

    expect(selector.select([load("half", 1, 2), load("quarter", 2, 8), load("third", 1, 3)])?.agentId).toBe(
      "quarter",
    );
    expect(selector.select([load("b", 0, 4), load("a", 0, 2)])?.agentId).toBe("a");
    expect(selector.select([load("b", 1, 2), load("a", 2, 4)])?.agentId).toBe("b");
    expect(selector.select([])).toBeUndefined();
  });

  it("round-robin cycles through the candidates in id order, whatever order they come in", () => {
    const selector = roundRobin();
    const picks = [
      selector.select([agent("c"), agent("a"), agent("b")]),
      selector.select([agent("b"), agent("c"), agent("a")]),
      selector.select([agent("a"), agent("b"), agent("c")]),
      selector.select([agent("c"), agent("b"), agent("a")]),
    ].map((a) => a?.agentId);

    expect(picks).toEqual(["a", "b", "c", "a"]);
    expect(selector.select([])).toBeUndefined();
  });
});

describe("AgentRouter", () => {
  it("sends a task to the inbox of its preferred agent when that agent is eligible", async () => {
    const router = new AgentRouter({ registry: await registryWith(agent("diag-1"), agent("diag-2")) });

    const inboxes = await router.inboxesFor([task("t1", "diag-2"), task("t2")]);

    expect([...inboxes]).toEqual([["t1", "agent-diag-2"]]);
  });

  it("leaves a task on its capability queue when its preferred agent cannot take it", async () => {
    const registry = await registryWith(
      agent("unavailable", { status: "unavailable" }),
      load("full", 2, 2),
      agent("other-capability", {
        capabilities: { ...agent("x").capabilities, supportedTools: ["summarization"], supportedIntents: [] },
      }),
      agent("no-inbox", {}, false),
      agent("fine"),
    );
    const router = new AgentRouter({ registry });

    const inboxes = await router.inboxesFor([
      task("t-unknown", "nobody"),
      task("t-unavailable", "unavailable"),
      task("t-full", "full"),
      task("t-capability", "other-capability"),
      task("t-no-inbox", "no-inbox"),
      task("t-fine", "fine"),
    ]);

    expect([...inboxes.keys()]).toEqual(["t-fine"]);
  });

  it("never gives an agent more tasks in one batch than it has free slots", async () => {
    const router = new AgentRouter({ registry: await registryWith(load("diag-1", 1, 3)) });

    const inboxes = await router.inboxesFor([
      task("t1", "diag-1"),
      task("t2", "diag-1"),
      task("t3", "diag-1"),
    ]);

    expect([...inboxes.keys()]).toEqual(["t1", "t2"]);
  });

  it("with a fallback selector, sends a task whose preferred agent is full to the least loaded eligible agent", async () => {
    const registry = await registryWith(load("preferred", 2, 2), load("busy-ish", 1, 2), load("idle", 0, 2));
    const router = new AgentRouter({ registry, fallback: leastLoaded() });

    const inboxes = await router.inboxesFor([
      task("t1", "preferred"),
      task("t2", "preferred"),
      task("t3", "preferred"),
    ]);

    // idle takes the first; then idle (1/2) and busy-ish (1/2) tie on share and count, so the id decides.
    expect([...inboxes]).toEqual([
      ["t1", "agent-idle"],
      ["t2", "agent-busy-ish"],
      ["t3", "agent-idle"],
    ]);
  });

  it("never fails the submission: a registry that throws leaves every task on its capability queue", async () => {
    const registry = await registryWith(agent("diag-1"));
    registry.get = async () => {
      throw new Error("registry down");
    };
    const warnings: string[] = [];
    const router = new AgentRouter({ registry, logger: { warn: (message) => warnings.push(message) } });

    const inboxes = await router.inboxesFor([task("t1", "diag-1")]);

    expect(inboxes.size).toBe(0);
    expect(warnings).toHaveLength(1);
  });
});

describe("Supervisor with agent routing", () => {
  async function setup(queueOverride?: (queue: TaskQueue) => TaskQueue) {
    const f = createCoreFixture();
    const registry = await registryWith(agent("diag-1"));
    const supervisor = new Supervisor({
      store: f.store,
      queue: queueOverride ? queueOverride(f.queue) : f.queue,
      config: f.config,
      clock: f.clock,
      agentRouting: new AgentRouter({ registry }),
    });
    const submit = async (preferredAgentId?: string) => {
      const [accepted] = await supervisor.submit([
        { taskType: "echo", input: 1, ...(preferredAgentId ? { preferredAgentId } : {}) },
      ]);
      return accepted?.taskId ?? "";
    };
    return { f, submit };
  }

  it("enqueues a task for an eligible preferred agent on that agent's inbox only", async () => {
    const { f, submit } = await setup();

    const taskId = await submit("diag-1");

    const message = await f.receiveOne("agent-diag-1");
    expect(JSON.parse(message.body)).toEqual({ taskId, attempt: 1 });
    expect(f.queue.inspectQueue("diagnostics").visible).toBe(0);
    // The record keeps the capability queue: retries and sweeps of the task go to the capability's workers.
    expect(f.store.inspect(taskId)).toMatchObject({ preferredAgentId: "diag-1", queue: "diagnostics" });
  });

  it("enqueues a task whose preferred agent is unknown on its capability queue", async () => {
    const { f, submit } = await setup();

    const taskId = await submit("nobody");

    expect(JSON.parse((await f.receiveOne("diagnostics")).body).taskId).toBe(taskId);
  });

  it("falls back to the capability queue when the agent's inbox cannot be sent to", async () => {
    const { f, submit } = await setup((queue) => ({
      ...bind(queue),
      send: async (messages: readonly OutgoingTaskMessage[]): Promise<readonly SendFailure[]> => {
        if (messages.some((m) => m.queue.startsWith("agent-"))) throw new Error("unknown queue");
        return queue.send(messages);
      },
    }));

    const taskId = await submit("diag-1");

    expect(JSON.parse((await f.receiveOne("diagnostics")).body).taskId).toBe(taskId);
  });
});

/** The queue's methods, bound, so a test can replace one of them. */
function bind(queue: TaskQueue): TaskQueue {
  return {
    send: queue.send.bind(queue),
    receive: queue.receive.bind(queue),
    extendLease: queue.extendLease.bind(queue),
    ack: queue.ack.bind(queue),
    release: queue.release.bind(queue),
    deadLetter: queue.deadLetter.bind(queue),
    ...(queue.depth ? { depth: queue.depth.bind(queue) } : {}),
    ...(queue.inspectDeadLetters ? { inspectDeadLetters: queue.inspectDeadLetters.bind(queue) } : {}),
    ...(queue.redriveDeadLetters ? { redriveDeadLetters: queue.redriveDeadLetters.bind(queue) } : {}),
  };
}
