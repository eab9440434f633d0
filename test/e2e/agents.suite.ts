import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { MessagingService } from "#shared/core/agents/messaging-service";
import type { AgentMessage } from "#shared/domain/message";
import { apiClient } from "./api-client.ts";

export interface AgentsSystem {
  readonly url: string;
  /** In-process delivery, for the agents the tests play (subscribe, request). */
  readonly messaging: Pick<MessagingService, "subscribe" | "request">;
  /** The staleness threshold and sweep interval the system runs with. */
  readonly agentStalenessSeconds: number;
  readonly sweepIntervalMs: number;
  /** Agent type of the demo worker that runs twice (two workers serve its capability). */
  readonly duplicatedAgentType: string;
  stop(): Promise<void>;
}

/** Polls `read` until `accept` holds; fails with the last value. */
async function waitFor<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    }
    await sleep(25);
    value = await read();
  }
  return value;
}

/**
 * Agents end to end: registry, liveness, routing by agent and messaging, over real HTTP against a
 * running system whose demo workers register themselves.
 */
export function describeAgentsApi(
  name: string,
  start: () => Promise<AgentsSystem>,
  options: {
    /**
     * How the demo workers take part (ADR 0004 §3, §5). `pollers`: each is a long-running agent
     * (`<agentType>-<suffix>`), registered at start, heartbeating, with a task inbox. `lambda`: each
     * worker function is one agent, `lambda:<agentType>`, registered on its first invocation, with no
     * inbox (tasks reach it through its capability queue only), so an idle one turns `unavailable`.
     * @default "pollers"
     */
    workerAgents?: "pollers" | "lambda";
  } = {},
): void {
  // Known when the tests are declared: which tests apply depends on how the workers take part.
  const lambdaWorkers = options.workerAgents === "lambda";
  describe(`agents API end to end (${name})`, () => {
    let system: AgentsSystem;
    let api: ReturnType<typeof apiClient>;
    // Names unique to this run, so filters never catch another suite's agents.
    const run = randomUUID().slice(0, 8);
    const id = (label: string) => `e2e-${label}-${run}`;
    const register = async (
      agentId: string,
      agentType: string,
      tools: string[] = [],
      intents: string[] = [],
    ) => {
      const response = await api.post("/agents", {
        agentId,
        agentType,
        capabilities: {
          supportedTools: tools,
          supportedIntents: intents,
          maxConcurrentTasks: 2,
          metadata: {},
        },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      return response.body;
    };
    const ids = (body: { items: { agentId: string }[] }) => body.items.map((a) => a.agentId);
    /** What each agent receives, through in-process subscriptions. */
    const inbox = (agentId: string) => {
      const received: AgentMessage[] = [];
      system.messaging.subscribe(agentId, (message) => {
        received.push(message);
      });
      return received;
    };

    beforeAll(async () => {
      system = await start();
      api = apiClient(system.url);
    }, 120_000);

    afterAll(async () => {
      await system?.stop();
    }, 60_000);

    it("registers two agents with different capabilities, takes their heartbeats, and finds them by capability and type", async () => {
      const searcher = await register(id("searcher"), id("type-search"), [id("web-search")]);
      const writer = await register(id("writer"), id("type-write"), [], [id("draft")]);
      await sleep(10); // so a refreshed heartbeat is visibly later than the registration

      const beats = await Promise.all([
        api.post(`/agents/${searcher.agentId}/heartbeat`),
        api.post(`/agents/${writer.agentId}/heartbeat`),
      ]);
      const bySearch = await api.get(`/agents?capability=${id("web-search")}`);
      const byDraft = await api.get(`/agents?capability=${id("draft")}&status=available`);
      const byType = await api.get(`/agents?type=${id("type-write")}`);
      const fetched = await api.get(`/agents/${searcher.agentId}`);

      expect(beats.map((b) => [b.status, b.body])).toEqual([
        [200, { cancelRequests: [] }],
        [200, { cancelRequests: [] }],
      ]);
      expect(ids(bySearch.body)).toEqual([searcher.agentId]);
      expect(ids(byDraft.body)).toEqual([writer.agentId]);
      expect(ids(byType.body)).toEqual([writer.agentId]);
      expect(fetched.body).toMatchObject({ agentType: id("type-search"), status: "available" });
      expect(Date.parse(fetched.body.lastHeartbeat)).toBeGreaterThan(Date.parse(fetched.body.registeredAt));
    });

    it("lists the demo workers, which register themselves, by capability, task type and agent type", async () => {
      const lambda = lambdaWorkers;
      if (lambda) {
        // A worker function registers on its first invocation: give each one a task.
        const taskIds = await Promise.all([
          api.submit({ taskType: "analyze_text", input: { text: "Register." } }),
          api.submit({ taskType: "summarize", input: { text: "Register." } }),
          api.submit({ taskType: "echo", input: { value: 1 } }),
        ]);
        await Promise.all(taskIds.map((taskId) => api.waitForStatus(taskId, ["completed", "failed"])));
      }
      const analyzers = await waitFor(
        () => api.get("/agents?capability=text-analysis"),
        (r) => r.body.items.length >= 1,
        5_000,
      );
      const byIntent = await api.get("/agents?capability=summarize");
      // An idle function turns unavailable after the staleness threshold, which is the truth.
      const byType = await api.get(
        `/agents?type=${system.duplicatedAgentType}${lambda ? "" : "&status=available"}`,
      );

      expect(analyzers.body.items.map((a: any) => a.agentType)).toEqual(["text-analyzer"]);
      expect(byIntent.body.items.map((a: any) => a.agentType)).toEqual(["summarizer"]);
      // Both diagnostics functions are the one agent `lambda:diagnostics`: one agent per worker type.
      expect(byType.body.items.map((a: any) => a.agentId)).toEqual(
        lambda ? [`lambda:${system.duplicatedAgentType}`] : [expect.any(String), expect.any(String)],
      );
    });

    it("marks an agent that stops heartbeating unavailable within the staleness threshold plus one sweep", async () => {
      const silent = await register(id("silent"), id("type-liveness"));
      const alive = await register(id("alive"), id("type-liveness"));
      let beating = true;
      const heartbeats = (async () => {
        while (beating) {
          await api.post(`/agents/${alive.agentId}/heartbeat`);
          await sleep(100);
        }
      })();

      try {
        const before = (await api.get(`/agents/${silent.agentId}`)).body.status;
        // Threshold + the pause between sweeps + a sweep's own run time (up to a second or two of
        // DynamoDB Local requests on a loaded machine).
        const budgetMs = system.agentStalenessSeconds * 1000 + system.sweepIntervalMs + 2_000;
        const swept = await waitFor(
          () => api.get(`/agents/${silent.agentId}`),
          (r) => r.body.status === "unavailable",
          budgetMs,
        );
        const other = await api.get(`/agents/${alive.agentId}`);
        const unavailable = await api.get(`/agents?type=${id("type-liveness")}&status=unavailable`);

        expect(before).toBe("available");
        expect(swept.body.status).toBe("unavailable");
        expect(other.body.status).toBe("available");
        expect(ids(unavailable.body)).toEqual([silent.agentId]);
      } finally {
        beating = false;
        await heartbeats;
      }

      await api.post(`/agents/${silent.agentId}/heartbeat`);
      expect((await api.get(`/agents/${silent.agentId}`)).body.status).toBe("available");
    });

    // Only agents with a task inbox can be preferred over their capability's other agents; a worker
    // function has none, and is the one agent of its type (ADR 0004 §5).
    if (lambdaWorkers) {
      it("runs a task that prefers a Lambda agent on that agent, through the capability's queue", async () => {
        const taskId = await api.submit({
          taskType: "echo",
          input: { value: "preferred" },
          preferredAgentId: `lambda:${system.duplicatedAgentType}`,
        });
        const task = await api.waitForStatus(taskId, ["completed", "failed"]);
        expect(task).toMatchObject({
          status: "completed",
          workerAgentId: `lambda:${system.duplicatedAgentType}`,
        });
      });
    }
    if (!lambdaWorkers)
      it("runs each task that prefers an agent on that agent, though another agent serves the capability too", async () => {
        const pool = await waitFor(
          () => api.get(`/agents?type=${system.duplicatedAgentType}&status=available`),
          (r) => r.body.items.length === 2,
          5_000,
        );
        const [first = "", second = ""]: string[] = pool.body.items.map(
          (a: { agentId: string }) => a.agentId,
        );
        const capability: string = pool.body.items[0].capabilities.supportedTools[0];
        // Alternating preferences: without routing, whichever agent polls first would take them all.
        const preferences = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? first : second));

        const response = await api.post("/tasks", {
          tasks: preferences.map((preferredAgentId, i) => ({
            taskType: "echo",
            input: { value: i },
            preferredAgentId,
          })),
        });
        const tasks = await Promise.all(
          response.body.tasks.map((t: { taskId: string }) =>
            api.waitForStatus(t.taskId, ["completed", "failed"]),
          ),
        );

        expect(tasks.map((t) => [t.status, t.workerAgentId])).toEqual(
          preferences.map((p) => ["completed", p]),
        );
        // Per-agent counts follow the table's stream (ADR 0007): they agree once it caught up.
        await vi.waitFor(
          async () => {
            const stats = await api.get("/stats");
            const workers = await api.get(`/pool?capability=${capability}`);
            expect(stats.body.tasksByAgent[first]).toBeGreaterThanOrEqual(4);
            expect(stats.body.tasksByAgent[second]).toBeGreaterThanOrEqual(4);
            expect(workers.body).toMatchObject({ totalWorkers: 2, availableWorkers: 2, busyWorkers: 0 });
            expect(workers.body.tasksByWorker).toEqual({
              [first]: stats.body.tasksByAgent[first],
              [second]: stats.body.tasksByAgent[second],
            });
          },
          { timeout: 15_000, interval: 250 },
        );
      });

    it("runs a task whose preferred agent is unknown on the capability's workers", async () => {
      const taskId = await api.submit({
        taskType: "echo",
        input: { value: 1 },
        preferredAgentId: id("nobody"),
      });

      const task = await api.waitForStatus(taskId, ["completed", "failed"]);

      expect(task.status).toBe("completed");
      expect(task.workerAgentId).toMatch(
        lambdaWorkers
          ? new RegExp(`^lambda:${system.duplicatedAgentType}$`)
          : new RegExp(`^${system.duplicatedAgentType}-`),
      );
    });

    it("completes a request and its reply between two agents", async () => {
      const asker = await register(id("asker"), id("type-chat"));
      const answerer = await register(id("answerer"), id("type-chat"));
      // The answerer replies over HTTP: a message back to the asker with the request's correlation id.
      system.messaging.subscribe(answerer.agentId, async (request) => {
        const sum = (request.payload as number[]).reduce((a, b) => a + b, 0);
        const reply = await api.post("/messages", {
          fromAgentId: answerer.agentId,
          toAgentId: request.fromAgentId,
          messageType: "sum",
          payload: sum,
          correlationId: request.correlationId,
        });
        expect(reply.status).toBe(202);
      });

      const reply = await system.messaging.request(
        { fromAgentId: asker.agentId, toAgentId: answerer.agentId, messageType: "add", payload: [1, 2, 3] },
        { timeoutMs: 5_000 },
      );

      expect(reply).toMatchObject({ fromAgentId: answerer.agentId, toAgentId: asker.agentId, payload: 6 });
    });

    it("delivers a broadcast with an audience to exactly the matching agents", async () => {
      await register(id("planner"), id("type-sender"));
      const audience = { capability: id("crawl"), agentType: id("type-crawler") };
      await register(id("crawler-1"), id("type-crawler"), [id("crawl")]);
      await register(id("crawler-2"), id("type-crawler"), [], [id("crawl")]);
      await register(id("crawler-3"), id("type-crawler"), [id("index")]);
      await register(id("indexer"), id("type-indexer"), [id("crawl")]);
      const names = ["crawler-1", "crawler-2", "crawler-3", "indexer"].map(id);
      const boxes = names.map(inbox);

      const sent = await api.post("/messages", {
        fromAgentId: id("planner"),
        toAgentId: "*",
        messageType: "crawl",
        payload: { url: "https://example.com" },
        audience,
      });
      // A direct message to each agent after the broadcast: once it is in, the broadcast had its chance.
      for (const agentId of names) {
        await api.post("/messages", {
          fromAgentId: id("planner"),
          toAgentId: agentId,
          messageType: "done",
          payload: null,
        });
      }
      await waitFor(
        async () => boxes.every((box) => box.some((m) => m.messageType === "done")),
        (done) => done,
        5_000,
      );

      expect(sent.status).toBe(202);
      expect([...sent.body.recipients].sort()).toEqual([id("crawler-1"), id("crawler-2")]);
      expect(boxes.map((box) => box.filter((m) => m.messageType === "crawl").length)).toEqual([1, 1, 0, 0]);
    });

    it("never delivers an expired message", async () => {
      await register(id("writer"), id("type-sender"));
      const reader = await register(id("reader"), id("type-reader"));
      const received = inbox(reader.agentId);
      const tenSecondsAgo = new Date(Date.now() - 10_000).toISOString();

      const expired = await api.post("/messages", {
        fromAgentId: id("writer"),
        toAgentId: reader.agentId,
        messageType: "stale-news",
        payload: 1,
        ttlSeconds: 2,
        timestamp: tenSecondsAgo,
      });
      await api.post("/messages", {
        fromAgentId: id("writer"),
        toAgentId: reader.agentId,
        messageType: "fresh-news",
        payload: 2,
        ttlSeconds: 60,
      });
      await waitFor(
        async () => received.length,
        (n) => n >= 1,
        5_000,
      );

      expect(expired.status).toBe(202);
      expect(received.map((m) => m.messageType)).toEqual(["fresh-news"]);
    });

    it("answers 400 with details for an invalid registration", async () => {
      const response = await api.post("/agents", {
        agentId: "-bad id",
        capabilities: { maxConcurrentTasks: 0, supportedTools: "search" },
        extra: true,
      });

      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe("validation_error");
      expect(response.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual([
        "agentId",
        "agentType",
        "capabilities.maxConcurrentTasks",
        "capabilities.supportedTools",
        "extra",
      ]);
    });

    it("answers 404 for every operation on an unknown agent", async () => {
      await register(id("x"), id("type-sender"));
      const unknown = id("ghost");
      const responses = await Promise.all([
        api.get(`/agents/${unknown}`),
        api.request("PUT", `/agents/${unknown}/status`, { status: "busy" }),
        api.post(`/agents/${unknown}/heartbeat`),
        api.request("DELETE", `/agents/${unknown}`),
        api.post("/messages", { fromAgentId: id("x"), toAgentId: unknown, messageType: "t", payload: 1 }),
      ]);

      expect(responses.map((r) => [r.status, r.body?.error?.code])).toEqual(
        responses.map(() => [404, "not_found"]),
      );
    });

    it("sets an agent's status and unregisters it", async () => {
      const agent = await register(id("leaving"), id("type-leaving"));

      const busy = await api.request("PUT", `/agents/${agent.agentId}/status`, { status: "busy" });
      const removed = await api.request("DELETE", `/agents/${agent.agentId}`);
      const after = await api.get(`/agents/${agent.agentId}`);

      expect([busy.status, busy.body.status]).toEqual([200, "busy"]);
      expect(removed.status).toBe(204);
      expect(after.status).toBe(404);
    });
  });
}
