import { describe, expect, it } from "vitest";
import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { AgentService } from "#shared/core/agents/agent-service";
import { AgentLivenessSweeper } from "#shared/core/agents/liveness-sweeper";
import type { AgentQuery } from "#shared/ports/agent-registry";
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

const STALENESS_SECONDS = 90;

function setup(registry = new MemoryAgentRegistry()) {
  const clock = new FixedClock();
  const agents = new AgentService({ registry, store: new MemoryTaskStore(), clock });
  const liveness = new AgentLivenessSweeper({
    registry,
    config: { agentStalenessSeconds: STALENESS_SECONDS },
    clock,
  });
  const register = (agentId: string) => agents.register({ agentId, agentType: "worker", capabilities: {} });
  return { clock, registry, agents, liveness, register };
}

describe("AgentLivenessSweeper", () => {
  it("marks an agent unavailable once the staleness threshold passed without a heartbeat", async () => {
    const { clock, agents, liveness, register } = setup();
    await register("silent");
    await register("chatty");
    clock.advance(60_000);
    await agents.heartbeat("chatty");
    clock.advance(STALENESS_SECONDS * 1000 - 60_000);

    const report = await liveness.sweep();

    expect(report.markedUnavailable).toEqual(["silent"]);
    expect((await agents.get("silent")).status).toBe("unavailable");
    expect((await agents.get("chatty")).status).toBe("available");
  });

  it("leaves an agent alone until the threshold", async () => {
    const { clock, agents, liveness, register } = setup();
    await register("agent-1");
    clock.advance(STALENESS_SECONDS * 1000 - 1);

    const report = await liveness.sweep();

    expect(report.markedUnavailable).toEqual([]);
    expect((await agents.get("agent-1")).status).toBe("available");
  });

  it("marks stale agents in any live status, and does not mark an unavailable one again", async () => {
    const { clock, agents, liveness, register } = setup();
    for (const id of ["busy", "error", "unknown", "already"]) await register(id);
    await agents.updateStatus("busy", "busy");
    await agents.updateStatus("error", "error");
    await agents.updateStatus("unknown", "unknown");
    await agents.updateStatus("already", "unavailable");
    clock.advance(STALENESS_SECONDS * 1000);

    const report = await liveness.sweep();

    expect([...report.markedUnavailable].sort()).toEqual(["busy", "error", "unknown"]);
    expect((await agents.list({ status: "unavailable" })).map((a) => a.agentId)).toEqual([
      "already",
      "busy",
      "error",
      "unknown",
    ]);
  });

  it("lets a heartbeat bring a swept agent back", async () => {
    const { clock, agents, liveness, register } = setup();
    await register("agent-1");
    clock.advance(STALENESS_SECONDS * 1000);
    await liveness.sweep();

    await agents.heartbeat("agent-1");

    expect((await agents.get("agent-1")).status).toBe("available");
    expect((await liveness.sweep()).markedUnavailable).toEqual([]);
  });

  it("does not mark an agent whose heartbeat arrived after the listing", async () => {
    // The listing sees the agent stale; a heartbeat lands before the sweep writes.
    class RacingRegistry extends MemoryAgentRegistry {
      beat: (() => Promise<unknown>) | undefined;
      override async list(query: AgentQuery) {
        const listed = await super.list(query);
        await this.beat?.();
        this.beat = undefined;
        return listed;
      }
    }
    const registry = new RacingRegistry();
    const { clock, agents, liveness, register } = setup(registry);
    await register("agent-1");
    clock.advance(STALENESS_SECONDS * 1000);
    registry.beat = () => agents.heartbeat("agent-1");

    const report = await liveness.sweep();

    expect(report.markedUnavailable).toEqual([]);
    expect((await agents.get("agent-1")).status).toBe("available");
  });
});
