import { describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { AgentService } from "#shared/core/agents/agent-service";
import { MessagingService } from "#shared/core/agents/messaging-service";
import { agentRoutes } from "#shared/http/agent-routes";
import { taskRoutes } from "#shared/http/task-routes";
import { lambdaApi } from "#test/support/api-app";
import { createCoreFixture } from "#test/support/core-fixture";

function setup() {
  const f = createCoreFixture();
  const registry = new MemoryAgentRegistry();
  const bus = new MemoryEventBus({ recordPublished: true });
  const agents = new AgentService({ registry, store: f.store });
  const messaging = new MessagingService({ registry, publisher: bus, subscriber: bus });
  const { call } = lambdaApi([
    ...taskRoutes({ supervisor: f.supervisor }),
    ...agentRoutes({ agents, messaging }),
  ]);
  return { registry, bus, call };
}

const registration = {
  agentId: "summarizer-1",
  agentType: "summarizer",
  capabilities: {
    supportedTools: ["summarization"],
    supportedIntents: ["summarize"],
    maxConcurrentTasks: 2,
    metadata: {},
  },
};

describe("agent routes", () => {
  it("registers an agent with 201 and returns it by id and by capability", async () => {
    const { call } = setup();

    const created = await call({ method: "POST", path: "/agents", body: registration });
    const byId = await call({ method: "GET", path: "/agents/summarizer-1" });
    const byCapability = await call({ method: "GET", path: "/agents?capability=summarize&status=available" });
    const none = await call({ method: "GET", path: "/agents?type=analyzer" });

    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ agentId: "summarizer-1", status: "available", currentTaskCount: 0 });
    expect(byId.body).toEqual(created.body);
    expect(byCapability.body.items.map((a: any) => a.agentId)).toEqual(["summarizer-1"]);
    expect(none.body).toEqual({ items: [] });
  });

  it("answers 400 with details for an invalid registration, a bad query and a bad status", async () => {
    const { call } = setup();
    await call({ method: "POST", path: "/agents", body: registration });

    const registrationError = await call({
      method: "POST",
      path: "/agents",
      body: { capabilities: { maxConcurrentTasks: -1 } },
    });
    const queryError = await call({ method: "GET", path: "/agents?status=asleep" });
    const statusError = await call({
      method: "PUT",
      path: "/agents/summarizer-1/status",
      body: { status: "asleep" },
    });
    const notJson = await call({ method: "POST", path: "/agents", body: "{nope" });

    expect(registrationError.status).toBe(400);
    expect(registrationError.body.error.code).toBe("validation_error");
    expect(registrationError.body.error.details.map((d: any) => d.path).sort()).toEqual([
      "agentType",
      "capabilities.maxConcurrentTasks",
    ]);
    expect(queryError.status).toBe(400);
    expect(queryError.body.error.details[0].path).toBe("status");
    expect(statusError.status).toBe(400);
    expect(statusError.body.error.details[0].path).toBe("status");
    expect(notJson.body.error.code).toBe("invalid_json");
  });

  it("sets the status, takes heartbeats and unregisters with 204", async () => {
    const { call } = setup();
    await call({ method: "POST", path: "/agents", body: registration });

    const busy = await call({ method: "PUT", path: "/agents/summarizer-1/status", body: { status: "busy" } });
    const beat = await call({ method: "POST", path: "/agents/summarizer-1/heartbeat" });
    const removed = await call({ method: "DELETE", path: "/agents/summarizer-1" });
    const gone = await call({ method: "GET", path: "/agents/summarizer-1" });

    expect(busy.status).toBe(200);
    expect(busy.body.status).toBe("busy");
    expect(beat).toEqual({ status: 200, body: { cancelRequests: [] } });
    expect(removed).toEqual({ status: 204, body: undefined });
    expect(gone.status).toBe(404);
  });

  it("answers 404 not_found for every operation on an unknown agent, and for an id no agent could have", async () => {
    const { call } = setup();
    const requests: Parameters<ReturnType<typeof lambdaApi>["call"]>[0][] = [
      { method: "GET", path: "/agents/nobody" },
      { method: "PUT", path: "/agents/nobody/status", body: { status: "busy" } },
      { method: "POST", path: "/agents/nobody/heartbeat" },
      { method: "DELETE", path: "/agents/nobody" },
      { method: "GET", path: `/agents/${encodeURIComponent("not an id!")}` },
      {
        method: "POST",
        path: "/messages",
        body: { fromAgentId: "a", toAgentId: "nobody", messageType: "t", payload: 1 },
      },
    ];

    const replies = await Promise.all(requests.map(call));

    expect(replies.map((r) => [r.status, r.body.error.code])).toEqual(requests.map(() => [404, "not_found"]));
  });

  it("reports the worker pool of a capability", async () => {
    const { call } = setup();
    await call({ method: "POST", path: "/agents", body: registration });
    await call({
      method: "POST",
      path: "/agents",
      body: { ...registration, agentId: "summarizer-2" },
    });
    await call({ method: "PUT", path: "/agents/summarizer-2/status", body: { status: "busy" } });

    const pool = await call({ method: "GET", path: "/pool?capability=summarization" });

    expect(pool).toEqual({
      status: 200,
      body: {
        totalWorkers: 2,
        availableWorkers: 1,
        busyWorkers: 1,
        totalTasksProcessed: 0,
        averageTaskDurationMs: 0,
        tasksByWorker: { "summarizer-1": 0, "summarizer-2": 0 },
      },
    });
  });

  it("accepts a message with 202 and says who it went to", async () => {
    const { call, bus } = setup();
    await call({ method: "POST", path: "/agents", body: registration });
    await call({
      method: "POST",
      path: "/agents",
      body: { agentId: "ops", agentType: "operator", capabilities: {} },
    });

    const sent = await call({
      method: "POST",
      path: "/messages",
      body: {
        fromAgentId: "ops",
        toAgentId: "*",
        messageType: "hello",
        payload: { hi: 1 },
        audience: { agentType: "summarizer" },
      },
    });

    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({
      message: { toAgentId: "*", messageType: "hello" },
      recipients: ["summarizer-1"],
    });
    expect(bus.inspectPublished().map((e) => e.id)).toEqual([`${sent.body.message.messageId}:summarizer-1`]);
  });

  it("documents every agent route and its schemas in /openapi.json", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/openapi.json" });
    const document = reply.body;

    expect(reply.status).toBe(200);
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        "/agents",
        "/agents/{agentId}",
        "/agents/{agentId}/status",
        "/agents/{agentId}/heartbeat",
        "/pool",
        "/messages",
      ]),
    );
    expect(Object.keys(document.paths["/agents/{agentId}"] ?? {}).sort()).toEqual(["delete", "get"]);
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining([
        "RegisterAgentRequest",
        "AgentInfo",
        "AgentList",
        "WorkerPoolStatistics",
        "SendMessageRequest",
        "SendMessageResponse",
        "HeartbeatResponse",
      ]),
    );
    // A request body documents its input side: capability defaults are optional there.
    const capabilities = (document.components.schemas.RegisterAgentRequest as any).properties.capabilities;
    expect(capabilities.required ?? []).not.toContain("maxConcurrentTasks");
  });
});
