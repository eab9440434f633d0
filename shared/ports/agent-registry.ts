import type { AgentInfo, AgentStatus } from "#shared/domain/agent";

export interface AgentQuery {
  readonly capability?: string;
  readonly agentType?: string;
  readonly status?: AgentStatus;
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
  list(query: AgentQuery): Promise<readonly AgentInfo[]>;
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
