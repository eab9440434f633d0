import type { PlatformConfig } from "#shared/config/platform";
import { AGENT_STATUSES, type AgentInfo } from "#shared/domain/agent";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import { type Clock, systemClock } from "#shared/ports/clock";

export interface AgentLivenessReport {
  /** Agents this sweep marked `unavailable`. */
  readonly markedUnavailable: readonly string[];
}

export interface AgentLivenessSweeperDeps {
  readonly registry: AgentRegistry;
  readonly config: Pick<PlatformConfig, "agentStalenessSeconds">;
  readonly clock?: Clock;
}

/** Every status a live agent may be in: the sweep looks only at these. */
const WATCHED_STATUSES = AGENT_STATUSES.filter((s) => s !== "unavailable");

/**
 * Marks agents `unavailable` once `config.agentStalenessSeconds` have passed without a heartbeat, so
 * routing stops sending them tasks. Their working tasks need nothing from here: when the lease of a
 * dead agent's task expires, the task sweeper sends it back to the queue. A heartbeat makes the agent
 * `available` again (AgentService.heartbeat).
 *
 * Called by the scheduled sweeper (functions/sweeper.ts) and the local runtime's sweep timer.
 *
 * @example
 * const liveness = new AgentLivenessSweeper({ registry, config });
 * const { markedUnavailable } = await liveness.sweep();
 */
export class AgentLivenessSweeper {
  private readonly registry: AgentRegistry;
  private readonly stalenessMs: number;
  private readonly clock: Clock;

  constructor(deps: AgentLivenessSweeperDeps) {
    this.registry = deps.registry;
    this.stalenessMs = deps.config.agentStalenessSeconds * 1000;
    this.clock = deps.clock ?? systemClock;
  }

  async sweep(): Promise<AgentLivenessReport> {
    const listed = await Promise.all(WATCHED_STATUSES.map((status) => this.registry.list({ status })));
    const cutoff = new Date(this.clock.now().getTime() - this.stalenessMs).toISOString();
    const markedUnavailable: string[] = [];
    for (const agent of listed.flat()) {
      if (!this.isStale(agent)) continue;
      // Conditional on the heartbeat still being at or before the cutoff: one that arrived since the
      // listing wins, whichever of the two writes lands first.
      if (await this.registry.markUnavailableIfStale(agent.agentId, cutoff))
        markedUnavailable.push(agent.agentId);
    }
    return { markedUnavailable };
  }

  private isStale(agent: AgentInfo): boolean {
    const last = Date.parse(agent.lastHeartbeat);
    // A heartbeat that cannot be read proves nothing about liveness.
    return Number.isNaN(last) || this.clock.now().getTime() - last >= this.stalenessMs;
  }
}
