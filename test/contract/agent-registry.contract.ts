import { beforeEach, describe, expect, it } from "vitest";
import type { AgentInfo } from "#shared/domain/agent";
import type { AgentRegistry } from "#shared/ports/agent-registry";

export interface AgentRegistryContractSubject<R extends AgentRegistry> {
  /** A fresh, empty registry. */
  create(): Promise<R> | R;
  /** The agent as stored, read around the adapter. */
  inspect(registry: R, agentId: string): Promise<AgentInfo | undefined> | AgentInfo | undefined;
}

const T0 = "2030-01-01T00:00:00.000Z";
const T1 = "2030-01-01T00:01:00.000Z";
const T2 = "2030-01-01T00:02:00.000Z";

function newAgent(agentId: string, overrides: Partial<AgentInfo> = {}): AgentInfo {
  return {
    agentId,
    agentType: "summarizer",
    status: "available",
    capabilities: {
      supportedTools: ["summarization"],
      supportedIntents: ["summarize-document"],
      maxConcurrentTasks: 4,
      metadata: { model: "small", limits: { tokens: 4096 }, tags: ["a", "b"] },
    },
    lastHeartbeat: T0,
    endpoint: `http://agents.local/${agentId}`,
    currentTaskCount: 0,
    registeredAt: T0,
    ...overrides,
  };
}

const ids = (agents: readonly AgentInfo[]) => agents.map((a) => a.agentId).sort();

/**
 * The AgentRegistry contract: every adapter runs it. Each test gets a fresh registry.
 *
 * @example
 * describeAgentRegistryContract("MemoryAgentRegistry", {
 *   create: () => new MemoryAgentRegistry(),
 *   inspect: (registry, agentId) => registry.get(agentId),
 * });
 */
export function describeAgentRegistryContract<R extends AgentRegistry>(
  name: string,
  subject: AgentRegistryContractSubject<R>,
): void {
  describe(`${name} (AgentRegistry contract)`, () => {
    let registry: R;
    const inspect = (agentId: string) => Promise.resolve(subject.inspect(registry, agentId));

    beforeEach(async () => {
      registry = await subject.create();
    });

    it("registers an agent and returns it as stored", async () => {
      const agent = newAgent("agent-1");

      const registered = await registry.register(agent);

      expect(registered).toEqual(agent);
      expect(await registry.get("agent-1")).toEqual(agent);
      expect(await inspect("agent-1")).toEqual(agent);
    });

    it("returns undefined for an unknown agent", async () => {
      expect(await registry.get("nobody")).toBeUndefined();
    });

    it("replaces a registered agent but keeps its first registration time", async () => {
      await registry.register(newAgent("agent-1"));
      const { endpoint: _dropped, ...withoutEndpoint } = newAgent("agent-1", {
        agentType: "analyzer",
        status: "busy",
        capabilities: {
          supportedTools: ["text-analysis"],
          supportedIntents: [],
          maxConcurrentTasks: 1,
          metadata: {},
        },
        lastHeartbeat: T1,
        registeredAt: T1,
      });

      const replaced = await registry.register(withoutEndpoint);

      const expected = { ...withoutEndpoint, registeredAt: T0 };
      expect(replaced).toEqual(expected);
      expect(await inspect("agent-1")).toEqual(expected);
    });

    it("lists agents by capability, matching a supported tool or intent", async () => {
      await registry.register(newAgent("by-tool", { capabilities: caps(["summarization"], []) }));
      await registry.register(newAgent("by-intent", { capabilities: caps([], ["summarization"]) }));
      await registry.register(newAgent("neither", { capabilities: caps(["text-analysis"], ["analyze"]) }));

      expect(ids(await registry.list({ capability: "summarization" }))).toEqual(["by-intent", "by-tool"]);
      expect(ids(await registry.list({ capability: "analyze" }))).toEqual(["neither"]);
      expect(await registry.list({ capability: "unknown-capability" })).toEqual([]);
    });

    it("lists agents by type, by status, by all three at once, and all agents", async () => {
      await registry.register(newAgent("a", { agentType: "summarizer", status: "available" }));
      await registry.register(newAgent("b", { agentType: "summarizer", status: "busy" }));
      await registry.register(
        newAgent("c", { agentType: "analyzer", status: "available", capabilities: caps(["x"], []) }),
      );
      await registry.register(newAgent("d", { agentType: "analyzer", status: "unavailable" }));

      expect(ids(await registry.list({ agentType: "summarizer" }))).toEqual(["a", "b"]);
      expect(ids(await registry.list({ status: "available" }))).toEqual(["a", "c"]);
      expect(ids(await registry.list({ agentType: "analyzer", status: "available" }))).toEqual(["c"]);
      expect(
        ids(
          await registry.list({ agentType: "summarizer", status: "available", capability: "summarization" }),
        ),
      ).toEqual(["a"]);
      expect(ids(await registry.list({}))).toEqual(["a", "b", "c", "d"]);
      expect(await registry.list({ agentType: "summarizer", status: "available" })).toEqual([
        newAgent("a", { agentType: "summarizer", status: "available" }),
      ]);
    });

    it("pages through matching agents by id, each exactly once, with bounded pages", async () => {
      const statuses = ["available", "busy", "unavailable"] as const;
      for (let i = 0; i < 23; i++) {
        await registry.register(
          newAgent(`agent-${String(i).padStart(2, "0")}`, {
            status: statuses[i % 3] ?? "available",
            capabilities: caps(i % 2 === 0 ? ["even"] : ["odd"], []),
          }),
        );
      }
      const allPages = async (query: Parameters<R["listPage"]>[0], limit: number) => {
        const pages: string[][] = [];
        let after: string | undefined;
        do {
          const page = await registry.listPage(query, { limit, ...(after !== undefined ? { after } : {}) });
          expect(page.items.length).toBeLessThanOrEqual(limit);
          pages.push(page.items.map((a) => a.agentId));
          after = page.nextAfter;
          if (pages.length > 50) throw new Error("listPage never ends");
        } while (after !== undefined);
        return pages;
      };
      const expected = (keep: (i: number) => boolean) =>
        Array.from({ length: 23 }, (_, i) => i)
          .filter(keep)
          .map((i) => `agent-${String(i).padStart(2, "0")}`);

      expect((await allPages({}, 5)).flat()).toEqual(expected(() => true));
      expect((await allPages({ capability: "even" }, 4)).flat()).toEqual(expected((i) => i % 2 === 0));
      expect((await allPages({ status: "busy", capability: "odd" }, 2)).flat()).toEqual(
        expected((i) => i % 3 === 1 && i % 2 === 1),
      );
      expect((await allPages({ agentType: "summarizer", status: "available" }, 3)).flat()).toEqual(
        expected((i) => i % 3 === 0),
      );
      expect(await registry.listPage({}, { limit: 5, after: "agent-99" })).toEqual({ items: [] });
    });

    it("updates the status, and listings follow it", async () => {
      await registry.register(newAgent("agent-1"));

      const updated = await registry.updateStatus("agent-1", "unavailable");

      expect(updated).toEqual(newAgent("agent-1", { status: "unavailable" }));
      expect(await inspect("agent-1")).toEqual(updated);
      expect(ids(await registry.list({ status: "unavailable" }))).toEqual(["agent-1"]);
      expect(await registry.list({ status: "available" })).toEqual([]);
    });

    it("marks an agent unavailable only while its heartbeat is at or before the cutoff", async () => {
      await registry.register(newAgent("stale", { lastHeartbeat: T0, status: "busy" }));
      await registry.register(newAgent("fresh", { lastHeartbeat: T2 }));
      await registry.register(newAgent("gone", { lastHeartbeat: T0, status: "unavailable" }));

      const stale = await registry.markUnavailableIfStale("stale", T0);
      const fresh = await registry.markUnavailableIfStale("fresh", T1);
      const gone = await registry.markUnavailableIfStale("gone", T1);
      const nobody = await registry.markUnavailableIfStale("nobody", T1);

      expect(stale).toEqual(newAgent("stale", { lastHeartbeat: T0, status: "unavailable" }));
      expect(await inspect("stale")).toEqual(stale);
      expect([fresh, gone, nobody]).toEqual([undefined, undefined, undefined]);
      expect(await inspect("fresh")).toEqual(newAgent("fresh", { lastHeartbeat: T2 }));
      expect(await inspect("nobody")).toBeUndefined();
      expect(ids(await registry.list({ status: "unavailable" }))).toEqual(["gone", "stale"]);
    });

    it("lets a heartbeat that landed first win over a stale mark", async () => {
      await registry.register(newAgent("agent-1", { lastHeartbeat: T0 }));
      // The sweep saw T0 and computed a cutoff of T1; the heartbeat at T2 lands before its write.
      await registry.heartbeat("agent-1", T2);

      expect(await registry.markUnavailableIfStale("agent-1", T1)).toBeUndefined();
      expect(await inspect("agent-1")).toEqual(newAgent("agent-1", { lastHeartbeat: T2 }));
    });

    it("records heartbeats", async () => {
      await registry.register(newAgent("agent-1"));

      const beat = await registry.heartbeat("agent-1", T2);

      expect(beat).toEqual(newAgent("agent-1", { lastHeartbeat: T2 }));
      expect((await inspect("agent-1"))?.lastHeartbeat).toBe(T2);
    });

    it("returns undefined when updating or heartbeating an unknown agent, and creates nothing", async () => {
      expect(await registry.updateStatus("nobody", "busy")).toBeUndefined();
      expect(await registry.heartbeat("nobody", T2)).toBeUndefined();
      expect(await inspect("nobody")).toBeUndefined();
      expect(await registry.list({})).toEqual([]);
    });

    it("adjusts the task count and never lets it fall below zero", async () => {
      await registry.register(newAgent("agent-1"));

      await registry.adjustTaskCount("agent-1", 2);
      await registry.adjustTaskCount("agent-1", -1);
      const afterOne = (await inspect("agent-1"))?.currentTaskCount;
      await registry.adjustTaskCount("agent-1", -5);
      const floored = (await inspect("agent-1"))?.currentTaskCount;

      expect(afterOne).toBe(1);
      expect(floored).toBe(0);
      expect((await registry.list({ agentType: "summarizer" }))[0]?.currentTaskCount).toBe(0);
    });

    it("keeps every concurrent task count adjustment", async () => {
      await registry.register(newAgent("agent-1"));

      await Promise.all(Array.from({ length: 10 }, () => registry.adjustTaskCount("agent-1", 1)));

      expect((await inspect("agent-1"))?.currentTaskCount).toBe(10);
    });

    it("ignores task count adjustments of an unknown agent", async () => {
      await registry.adjustTaskCount("nobody", 3);

      expect(await inspect("nobody")).toBeUndefined();
    });

    it("unregisters an agent once", async () => {
      await registry.register(newAgent("agent-1"));
      await registry.register(newAgent("agent-2"));

      const first = await registry.unregister("agent-1");
      const second = await registry.unregister("agent-1");

      expect(first).toBe(true);
      expect(second).toBe(false);
      expect(await inspect("agent-1")).toBeUndefined();
      expect(ids(await registry.list({}))).toEqual(["agent-2"]);
    });
  });
}

function caps(supportedTools: string[], supportedIntents: string[]): AgentInfo["capabilities"] {
  return { supportedTools, supportedIntents, maxConcurrentTasks: 1, metadata: {} };
}
