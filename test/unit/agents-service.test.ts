import { describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { AgentService } from "#shared/core/agents/agent-service";
import type { RegisterAgentInput } from "#shared/core/agents/schemas";
import { NotFoundError, ValidationError } from "#shared/domain/errors";
import { Counter } from "#shared/domain/statistics";
import type { Task, TaskStatus } from "#shared/domain/task";
import type { Clock } from "#shared/ports/clock";

/** Time stands still until a test moves it, so stored times can be compared exactly. */
class FixedClock implements Clock {
  private ms = Date.parse("2030-01-01T00:00:00.000Z");
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

function setup() {
  const clock = new FixedClock();
  const registry = new MemoryAgentRegistry();
  const store = new MemoryTaskStore();
  let sequence = 0;
  const agents = new AgentService({ registry, store, clock, newId: () => `generated-${++sequence}` });
  return { clock, registry, store, agents };
}

const summarizer: RegisterAgentInput = {
  agentId: "summarizer-1",
  agentType: "summarizer",
  capabilities: {
    supportedTools: ["summarization"],
    supportedIntents: ["summarize"],
    maxConcurrentTasks: 2,
    metadata: { model: "small" },
  },
  endpoint: "http://agents.local/summarizer-1",
};

/** A task record as the store holds it, written directly with its statistics counters. */
async function putTask(
  store: MemoryTaskStore,
  fields: {
    taskId: string;
    status: TaskStatus;
    workerAgentId?: string;
    cancelRequested?: boolean;
    ms?: number;
  },
  counters: Record<string, number> = {},
): Promise<void> {
  const now = new Date().toISOString();
  const task: Task = {
    taskId: fields.taskId,
    taskType: "echo",
    status: fields.status,
    input: null,
    requiredCapability: "diagnostics",
    priority: 0,
    attempts: 1,
    maxAttempts: 3,
    cancelRequested: fields.cancelRequested ?? false,
    version: 1,
    createdAt: now,
    updatedAt: now,
    metadata: {},
    ...(fields.workerAgentId !== undefined ? { workerAgentId: fields.workerAgentId } : {}),
    ...(fields.ms !== undefined
      ? { result: { success: true, output: null, executionTimeMs: fields.ms } }
      : {}),
  };
  await store.create({ task });
  // The statistics the change stream would have applied for this task's history.
  await store.applyCounters([{ id: `${task.taskId}#seeded`, deltas: counters }]);
}

describe("AgentService registration", () => {
  it("registers an agent as available and alive now, with no running tasks", async () => {
    const { agents, clock } = setup();
    const now = clock.now().toISOString();

    const agent = await agents.register(summarizer);

    expect(agent).toEqual({
      agentId: "summarizer-1",
      agentType: "summarizer",
      status: "available",
      capabilities: summarizer.capabilities,
      lastHeartbeat: now,
      endpoint: "http://agents.local/summarizer-1",
      currentTaskCount: 0,
      registeredAt: now,
    });
  });

  it("generates an agent id when the registration has none, and fills capability defaults", async () => {
    const { agents } = setup();

    const agent = await agents.register({ agentType: "coordinator", capabilities: {} });

    expect(agent.agentId).toBe("generated-1");
    expect(agent.capabilities).toEqual({
      supportedTools: [],
      supportedIntents: [],
      maxConcurrentTasks: 1,
      metadata: {},
    });
  });

  it("updates a registered agent but keeps its registration time and running task count", async () => {
    const { agents, registry, clock } = setup();
    const first = await agents.register(summarizer);
    await registry.adjustTaskCount("summarizer-1", 1);
    await registry.updateStatus("summarizer-1", "unavailable");
    clock.advance(60_000);

    const updated = await agents.register({
      agentId: "summarizer-1",
      agentType: "summarizer-v2",
      capabilities: { supportedTools: ["text-analysis"], maxConcurrentTasks: 4 },
    });

    expect(updated).toMatchObject({
      agentType: "summarizer-v2",
      status: "available",
      registeredAt: first.registeredAt,
      lastHeartbeat: clock.now().toISOString(),
      currentTaskCount: 1,
      capabilities: { supportedTools: ["text-analysis"], maxConcurrentTasks: 4 },
    });
    expect(updated.endpoint).toBeUndefined();
  });

  it("refuses an invalid registration with a detail per offending field and registers nothing", async () => {
    const { agents, registry } = setup();

    const error = await agents
      .register({
        agentId: "has space",
        capabilities: { maxConcurrentTasks: 0, supportedTools: "summarization" },
        endpoint: "not a url",
        extra: true,
      } as unknown as RegisterAgentInput)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ValidationError);
    const paths = (error as ValidationError).details as readonly { path: string }[];
    expect(paths.map((d) => d.path).sort()).toEqual(
      [
        "agentId",
        "agentType",
        "capabilities.maxConcurrentTasks",
        "capabilities.supportedTools",
        "endpoint",
        "extra",
      ].sort(),
    );
    expect(await registry.list({})).toEqual([]);
  });

  it("refuses metadata larger than 16 KiB", async () => {
    const { agents } = setup();

    const error = await agents
      .register({ agentType: "big", capabilities: { metadata: { blob: "x".repeat(17 * 1024) } } })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).details).toEqual([
      { path: "capabilities.metadata", message: expect.stringContaining("16384") },
    ]);
  });
});

describe("AgentService lookups and status", () => {
  it("lists agents by capability (a tool or an intent), by type and by status", async () => {
    const { agents } = setup();
    await agents.register(summarizer);
    await agents.register({
      agentId: "analyzer-1",
      agentType: "analyzer",
      capabilities: { supportedTools: ["text-analysis"], supportedIntents: ["analyze_text"] },
    });
    await agents.updateStatus("analyzer-1", "busy");
    const ids = async (query: Parameters<AgentService["list"]>[0]) =>
      (await agents.list(query)).map((a) => a.agentId);

    expect(await ids({ capability: "summarization" })).toEqual(["summarizer-1"]);
    expect(await ids({ capability: "analyze_text" })).toEqual(["analyzer-1"]);
    expect(await ids({ agentType: "analyzer" })).toEqual(["analyzer-1"]);
    expect(await ids({ status: "busy" })).toEqual(["analyzer-1"]);
    expect(await ids({})).toEqual(["analyzer-1", "summarizer-1"]);
  });

  it("sets an agent's status and refuses a status that does not exist", async () => {
    const { agents } = setup();
    await agents.register(summarizer);

    const busy = await agents.updateStatus("summarizer-1", "busy");
    const invalid = await agents.updateStatus("summarizer-1", "sleeping" as never).catch((e: unknown) => e);

    expect(busy.status).toBe("busy");
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((await agents.get("summarizer-1")).status).toBe("busy");
  });

  it("answers NotFoundError for every operation on an unknown agent", async () => {
    const { agents } = setup();

    const outcomes = await Promise.all([
      agents.get("nobody").catch((e: unknown) => e),
      agents.updateStatus("nobody", "busy").catch((e: unknown) => e),
      agents.heartbeat("nobody").catch((e: unknown) => e),
      agents.unregister("nobody").catch((e: unknown) => e),
    ]);

    for (const outcome of outcomes) expect(outcome).toBeInstanceOf(NotFoundError);
  });

  it("unregisters an agent once", async () => {
    const { agents } = setup();
    await agents.register(summarizer);

    await agents.unregister("summarizer-1");

    await expect(agents.get("summarizer-1")).rejects.toBeInstanceOf(NotFoundError);
    await expect(agents.unregister("summarizer-1")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("AgentService heartbeats", () => {
  it("refreshes lastHeartbeat", async () => {
    const { agents, clock } = setup();
    await agents.register(summarizer);
    clock.advance(5_000);

    const { agent } = await agents.heartbeat("summarizer-1");

    expect(agent.lastHeartbeat).toBe(clock.now().toISOString());
    expect((await agents.get("summarizer-1")).lastHeartbeat).toBe(clock.now().toISOString());
  });

  it("makes an unavailable agent available again, and keeps any status the agent set itself", async () => {
    const { agents } = setup();
    await agents.register(summarizer);
    await agents.register({ ...summarizer, agentId: "summarizer-2" });
    await agents.updateStatus("summarizer-1", "unavailable");
    await agents.updateStatus("summarizer-2", "busy");

    const revived = await agents.heartbeat("summarizer-1");
    const busy = await agents.heartbeat("summarizer-2");

    expect(revived.agent.status).toBe("available");
    expect((await agents.get("summarizer-1")).status).toBe("available");
    expect(busy.agent.status).toBe("busy");
  });

  it("answers the agent's working tasks that were asked to cancel, and only those", async () => {
    const { agents, store } = setup();
    await agents.register(summarizer);
    await putTask(store, {
      taskId: "mine-canceled",
      status: "working",
      workerAgentId: "summarizer-1",
      cancelRequested: true,
    });
    await putTask(store, { taskId: "mine-running", status: "working", workerAgentId: "summarizer-1" });
    await putTask(store, {
      taskId: "other-canceled",
      status: "working",
      workerAgentId: "other",
      cancelRequested: true,
    });
    await putTask(store, {
      taskId: "mine-waiting",
      status: "submitted",
      workerAgentId: "summarizer-1",
      cancelRequested: true,
    });

    const { cancelRequests } = await agents.heartbeat("summarizer-1");
    const skipped = await agents.heartbeat("summarizer-1", { includeCancelRequests: false });

    expect(cancelRequests).toEqual(["mine-canceled"]);
    expect(skipped.cancelRequests).toEqual([]);
  });

  it("finds cancel requests beyond the first page of working tasks", async () => {
    const { agents, store } = setup();
    await agents.register(summarizer);
    await putTask(store, {
      taskId: "a-mine",
      status: "working",
      workerAgentId: "summarizer-1",
      cancelRequested: true,
    });
    for (let i = 0; i < 150; i++) {
      await putTask(store, { taskId: `b-other-${i}`, status: "working", workerAgentId: "other" });
    }

    const { cancelRequests } = await agents.heartbeat("summarizer-1");

    expect(cancelRequests).toEqual(["a-mine"]);
  });
});

describe("AgentService worker pool", () => {
  it("counts the task a worker starts and finishes, never below zero", async () => {
    const { agents } = setup();
    await agents.register(summarizer);

    await agents.taskStarted("summarizer-1");
    await agents.taskStarted("summarizer-1");
    const running = (await agents.get("summarizer-1")).currentTaskCount;
    await agents.taskFinished("summarizer-1");
    await agents.taskFinished("summarizer-1");
    await agents.taskFinished("summarizer-1");

    expect(running).toBe(2);
    expect((await agents.get("summarizer-1")).currentTaskCount).toBe(0);
  });

  it("reports the pool of a capability: available, busy and full agents and their finished tasks", async () => {
    const { agents, registry, store } = setup();
    const caps = (max: number) => ({ supportedTools: ["diagnostics"], maxConcurrentTasks: max });
    await agents.register({ agentId: "idle", agentType: "diag", capabilities: caps(2) });
    await agents.register({ agentId: "full", agentType: "diag", capabilities: caps(1) });
    await agents.register({ agentId: "declared-busy", agentType: "diag", capabilities: caps(4) });
    await agents.register({ agentId: "gone", agentType: "diag", capabilities: caps(1) });
    await agents.register({
      agentId: "elsewhere",
      agentType: "other",
      capabilities: { supportedTools: ["x"] },
    });
    await registry.adjustTaskCount("full", 1);
    await agents.updateStatus("declared-busy", "busy");
    await agents.updateStatus("gone", "unavailable");
    await putTask(
      store,
      { taskId: "t1", status: "completed", workerAgentId: "idle", ms: 100 },
      {
        [Counter.agent("idle")]: 1,
        [Counter.execMsTotal]: 100,
        [Counter.execCount]: 1,
      },
    );
    await putTask(
      store,
      { taskId: "t2", status: "completed", workerAgentId: "full", ms: 300 },
      {
        [Counter.agent("full")]: 1,
        [Counter.execMsTotal]: 300,
        [Counter.execCount]: 1,
      },
    );
    await putTask(
      store,
      { taskId: "t3", status: "completed", workerAgentId: "elsewhere", ms: 2000 },
      {
        [Counter.agent("elsewhere")]: 1,
        [Counter.execMsTotal]: 2000,
        [Counter.execCount]: 1,
      },
    );

    const pool = await agents.pool("diagnostics");

    expect(pool).toEqual({
      totalWorkers: 4,
      availableWorkers: 1,
      busyWorkers: 2,
      totalTasksProcessed: 2,
      averageTaskDurationMs: 200,
      tasksByWorker: { idle: 1, full: 1, "declared-busy": 0, gone: 0 },
    });
  });

  it("reports every agent and the exact average of all tasks without a capability", async () => {
    const { agents, store } = setup();
    await agents.register({ agentId: "a", agentType: "diag", capabilities: {} });
    // A finished task of an agent that has since unregistered still counts.
    await putTask(
      store,
      { taskId: "t1", status: "completed", workerAgentId: "retired", ms: 10 },
      {
        [Counter.agent("retired")]: 3,
        [Counter.execMsTotal]: 90,
        [Counter.execCount]: 3,
      },
    );

    const pool = await agents.pool();

    expect(pool).toMatchObject({
      totalWorkers: 1,
      availableWorkers: 1,
      totalTasksProcessed: 3,
      averageTaskDurationMs: 30,
      tasksByWorker: { a: 0, retired: 3 },
    });
  });
});
