import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { AgentRouter } from "#shared/core/agents/agent-router";
import { Supervisor } from "#shared/core/supervisor";
import type { AgentInfo } from "#shared/domain/agent";
import { lambdaAgentPresence, startAgentPresence } from "#shared/worker/agent-presence";
import { defineWorker } from "#shared/worker/define-worker";
import { type RunningPoller, startPoller } from "#shared/worker/poller";
import { createCoreFixture, silentLogger } from "#test/support/core-fixture";

const worker = defineWorker({
  agentType: "diagnostics",
  capabilities: ["diagnostics"],
  maxConcurrentTasks: 3,
  handlers: { echo: async (input) => input, ping: () => "pong" },
});

async function waitFor<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 3_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await sleep(10);
    value = await read();
  }
  return value;
}

const running: RunningPoller[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

function setup() {
  const f = createCoreFixture();
  const registry = new MemoryAgentRegistry();
  const poll = (agentId: string, handlers = worker.handlers) => {
    const poller = startPoller(
      { ...worker, handlers },
      {
        store: f.store,
        queue: f.queue,
        config: f.config,
        logger: silentLogger,
        agentId,
        waitSeconds: 0.05,
        registry,
        heartbeatIntervalMs: 20,
      },
    );
    running.push(poller);
    return poller;
  };
  return { f, registry, poll };
}

describe("a poller with a registry", () => {
  it("registers its worker as an available agent with its capabilities, task types and inbox", async () => {
    const { registry, poll } = setup();

    poll("diag-1");

    const agent = await waitFor(
      () => registry.get("diag-1"),
      (a) => a !== undefined,
    );
    expect(agent).toMatchObject({
      agentId: "diag-1",
      agentType: "diagnostics",
      status: "available",
      currentTaskCount: 0,
      capabilities: {
        supportedTools: ["diagnostics"],
        supportedIntents: ["echo", "ping"],
        maxConcurrentTasks: 3,
        metadata: { inbox: "agent-diag-1", runtime: "poller" },
      },
    });
  });

  it("heartbeats while it runs and unregisters when it stops", async () => {
    const { registry, poll } = setup();
    const poller = poll("diag-1");
    const first = await waitFor(
      () => registry.get("diag-1"),
      (a) => a !== undefined,
    );

    const later = await waitFor(
      () => registry.get("diag-1"),
      (a) => a !== undefined && a.lastHeartbeat > (first?.lastHeartbeat ?? ""),
    );
    await poller.stop();

    expect(later?.registeredAt).toBe(first?.registeredAt);
    expect(await registry.get("diag-1")).toBeUndefined();
  });

  it("registers again when the registry forgot it", async () => {
    const { registry, poll } = setup();
    poll("diag-1");
    await waitFor(
      () => registry.get("diag-1"),
      (a) => a !== undefined,
    );

    await registry.unregister("diag-1");

    const back = await waitFor(
      () => registry.get("diag-1"),
      (a) => a !== undefined,
    );
    expect(back?.status).toBe("available");
  });

  it("runs the tasks routed to its inbox, counting them as running meanwhile", async () => {
    const { f, registry, poll } = setup();
    const countsWhileRunning: number[] = [];
    const handlerOf = (agentId: string) => ({
      echo: async (input: unknown) => {
        countsWhileRunning.push((await registry.get(agentId))?.currentTaskCount ?? -1);
        return input;
      },
    });
    // Two agents serve the capability; each task may run only on the agent it prefers.
    poll("diag-1", handlerOf("diag-1"));
    poll("diag-2", handlerOf("diag-2"));
    await waitFor(
      () => registry.list({ capability: "diagnostics" }),
      (agents: readonly AgentInfo[]) => agents.length === 2,
    );
    const supervisor = new Supervisor({
      store: f.store,
      queue: f.queue,
      config: f.config,
      agentRouting: new AgentRouter({ registry }),
    });
    const preferences = ["diag-1", "diag-2", "diag-1", "diag-2"];

    const accepted = await supervisor.submit(
      preferences.map((preferredAgentId, i) => ({ taskType: "echo", input: i, preferredAgentId })),
    );
    const tasks = await Promise.all(
      accepted.map(({ taskId }) =>
        waitFor(
          () => f.store.get(taskId),
          (t) => t?.status === "completed",
        ),
      ),
    );
    const idle = await waitFor(
      () => registry.list({ capability: "diagnostics" }),
      (agents: readonly AgentInfo[]) => agents.every((a) => a.currentTaskCount === 0),
    );

    expect(tasks.map((t) => t?.workerAgentId)).toEqual(preferences);
    expect(countsWhileRunning).toHaveLength(4);
    for (const count of countsWhileRunning) expect(count).toBeGreaterThanOrEqual(1);
    expect(idle.map((a) => a.currentTaskCount)).toEqual([0, 0]);
  });

  it("keeps registering after a registry failure", async () => {
    const { f } = setup();
    const registry = new MemoryAgentRegistry();
    const realRegister = registry.register.bind(registry);
    let failures = 1;
    registry.register = async (agent) => {
      if (failures-- > 0) throw new Error("registry down");
      return realRegister(agent);
    };
    const warnings: string[] = [];

    const presence = startAgentPresence(worker, {
      registry,
      store: f.store,
      config: f.config,
      logger: { ...silentLogger, warn: (message) => warnings.push(message) },
      agentId: "diag-1",
      heartbeatIntervalMs: 20,
    });
    await presence.registered;
    await presence.stop();

    expect(warnings).toEqual(["agent registration failed; retrying"]);
    expect(await registry.get("diag-1")).toBeUndefined();
  });
});

describe("lambdaAgentPresence", () => {
  it("registers lambda:<agentType> on the first invocation, without an inbox", async () => {
    const { f } = setup();
    const registry = new MemoryAgentRegistry();
    const presence = lambdaAgentPresence(worker, {
      registry,
      store: f.store,
      config: f.config,
      logger: silentLogger,
    });

    await presence.touch();

    expect(presence.agentId).toBe("lambda:diagnostics");
    expect(await registry.get("lambda:diagnostics")).toMatchObject({
      agentType: "diagnostics",
      status: "available",
      capabilities: { supportedTools: ["diagnostics"], metadata: { runtime: "lambda" } },
    });
    expect((await registry.get("lambda:diagnostics"))?.capabilities.metadata.inbox).toBeUndefined();
  });

  it("heartbeats at most once per interval", async () => {
    const { f } = setup();
    const registry = new MemoryAgentRegistry();
    let beats = 0;
    const realHeartbeat = registry.heartbeat.bind(registry);
    registry.heartbeat = async (agentId, at) => {
      beats++;
      return realHeartbeat(agentId, at);
    };
    const presence = lambdaAgentPresence(worker, {
      registry,
      store: f.store,
      config: f.config,
      logger: silentLogger,
      heartbeatIntervalMs: 60_000,
      clock: f.clock,
    });

    await presence.touch();
    await presence.touch();
    await presence.touch();
    const early = beats;
    f.clock.advance(60_000);
    await presence.touch();

    expect(early).toBe(0);
    expect(beats).toBe(1);
  });

  it("never fails the invocation when the registry is down", async () => {
    const { f } = setup();
    const registry = new MemoryAgentRegistry();
    registry.register = async () => {
      throw new Error("registry down");
    };
    const warnings: string[] = [];
    const presence = lambdaAgentPresence(worker, {
      registry,
      store: f.store,
      config: f.config,
      logger: { ...silentLogger, warn: (message) => warnings.push(message) },
    });

    await expect(presence.touch()).resolves.toBeUndefined();
    expect(warnings).toEqual(["agent presence update failed"]);
  });
});
