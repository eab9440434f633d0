import { type AgentInfo, type AgentStatus, agentHasCapability } from "#shared/domain/agent";
import type { AgentPage, AgentPageRequest, AgentQuery, AgentRegistry } from "#shared/ports/agent-registry";

/** Most agents one `listPage` call examines, as on DynamoDB. */
const MAX_SCANNED_PER_PAGE = 1000;

/**
 * The embedded agent registry.
 *
 * @example
 * const registry = new MemoryAgentRegistry();
 * await registry.register(agent);
 */
export class MemoryAgentRegistry implements AgentRegistry {
  private readonly agents = new Map<string, AgentInfo>();

  async register(agent: AgentInfo): Promise<AgentInfo> {
    const existing = this.agents.get(agent.agentId);
    const stored = { ...structuredClone(agent), registeredAt: existing?.registeredAt ?? agent.registeredAt };
    this.agents.set(agent.agentId, stored);
    return structuredClone(stored);
  }

  async get(agentId: string): Promise<AgentInfo | undefined> {
    const agent = this.agents.get(agentId);
    return agent === undefined ? undefined : structuredClone(agent);
  }

  async list(query: AgentQuery): Promise<readonly AgentInfo[]> {
    return [...this.agents.values()]
      .filter(
        (a) =>
          (query.capability === undefined || agentHasCapability(a, query.capability)) &&
          (query.agentType === undefined || a.agentType === query.agentType) &&
          (query.status === undefined || a.status === query.status),
      )
      .sort((a, b) => (a.agentId < b.agentId ? -1 : 1))
      .map((a) => structuredClone(a));
  }

  async listPage(query: AgentQuery, page: AgentPageRequest): Promise<AgentPage> {
    const ids = [...this.agents.keys()].filter((id) => page.after === undefined || id > page.after).sort();
    const items: AgentInfo[] = [];
    let scanned = 0;
    for (const id of ids) {
      if (items.length > page.limit) break;
      if (scanned === MAX_SCANNED_PER_PAGE) return { items, nextAfter: ids[scanned - 1] as string };
      scanned++;
      const agent = this.agents.get(id) as AgentInfo;
      if (
        (query.capability === undefined || agentHasCapability(agent, query.capability)) &&
        (query.agentType === undefined || agent.agentType === query.agentType) &&
        (query.status === undefined || agent.status === query.status)
      ) {
        items.push(structuredClone(agent));
      }
    }
    if (items.length <= page.limit) return { items };
    const taken = items.slice(0, page.limit);
    return { items: taken, nextAfter: (taken.at(-1) as AgentInfo).agentId };
  }

  async updateStatus(agentId: string, status: AgentStatus): Promise<AgentInfo | undefined> {
    return this.update(agentId, (a) => ({ ...a, status }));
  }

  async markUnavailableIfStale(agentId: string, heartbeatAtOrBefore: string): Promise<AgentInfo | undefined> {
    const agent = this.agents.get(agentId);
    if (!agent || agent.status === "unavailable" || agent.lastHeartbeat > heartbeatAtOrBefore)
      return undefined;
    return this.update(agentId, (a) => ({ ...a, status: "unavailable" }));
  }

  async heartbeat(agentId: string, at: string): Promise<AgentInfo | undefined> {
    return this.update(agentId, (a) => ({ ...a, lastHeartbeat: at }));
  }

  async adjustTaskCount(agentId: string, delta: number): Promise<void> {
    // Twice per task on the hot path, and nothing is returned: no copy (structuredClone was 3 % of CPU).
    const agent = this.agents.get(agentId);
    if (agent)
      this.agents.set(agentId, { ...agent, currentTaskCount: Math.max(0, agent.currentTaskCount + delta) });
  }

  async unregister(agentId: string): Promise<boolean> {
    return this.agents.delete(agentId);
  }

  private update(agentId: string, change: (agent: AgentInfo) => AgentInfo): AgentInfo | undefined {
    const agent = this.agents.get(agentId);
    if (!agent) return undefined;
    const next = change(agent);
    this.agents.set(agentId, next);
    return structuredClone(next);
  }
}
