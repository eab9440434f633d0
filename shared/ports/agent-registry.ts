import type { AgentInfo, AgentStatus } from "#shared/domain/agent";

export interface AgentQuery {
  readonly capability?: string;
  readonly agentType?: string;
  readonly status?: AgentStatus;
}

/** One page of agents, by agentId ascending. */
export interface AgentPageRequest {
  /** Most agents on the page (1–100). */
  readonly limit: number;
  /** Only agents whose id sorts after this one (the previous page's `nextAfter`). */
  readonly after?: string;
}

export interface AgentPage {
  readonly items: readonly AgentInfo[];
  /**
   * Where the next page starts, when there may be more. A page can be short (even empty) and still
   * have one: an adapter bounds the items one call reads.
   */
  readonly nextAfter?: string;
}

/**
 * Where agents announce themselves and prove they are alive.
 *
 * @example
 * await registry.register(agent);
 * const found = await registry.list({ capability: "summarization", status: "available" });
 */
export interface AgentRegistry {
  /** Creates or replaces the agent (keeps `registeredAt` of an existing one). */
  register(agent: AgentInfo): Promise<AgentInfo>;
  get(agentId: string): Promise<AgentInfo | undefined>;
  /** Every matching agent, by agentId (for broadcasts and pool statistics, which need them all). */
  list(query: AgentQuery): Promise<readonly AgentInfo[]>;
  /** A bounded page of matching agents, by agentId: what `GET /agents` serves. */
  listPage(query: AgentQuery, page: AgentPageRequest): Promise<AgentPage>;
  /** Returns undefined when the agent is unknown. */
  updateStatus(agentId: string, status: AgentStatus): Promise<AgentInfo | undefined>;
  /**
   * Marks the agent `unavailable` only while its `lastHeartbeat` is at or before `heartbeatAtOrBefore`
   * and it is not `unavailable` already, in one conditional write: a heartbeat that lands first wins.
   * Returns the updated agent, or undefined when nothing was written (unknown, already unavailable, or
   * heard from since).
   */
  markUnavailableIfStale(agentId: string, heartbeatAtOrBefore: string): Promise<AgentInfo | undefined>;
  /** Refreshes lastHeartbeat; returns undefined when the agent is unknown. */
  heartbeat(agentId: string, at: string): Promise<AgentInfo | undefined>;
  /** Adds `delta` to currentTaskCount (never below zero). */
  adjustTaskCount(agentId: string, delta: number): Promise<void>;
  /** Returns false when the agent was unknown. */
  unregister(agentId: string): Promise<boolean>;
}
