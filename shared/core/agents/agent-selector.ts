import { type AgentInfo, agentHasCapability } from "#shared/domain/agent";

/**
 * Picks one agent out of eligible candidates, for direct dispatch. Returns undefined when there are none.
 *
 * @example
 * const selector = leastLoaded();
 * const agent = selector.select(candidates.filter((a) => isEligibleAgent(a, "summarization")));
 */
export interface AgentSelector {
  readonly name: string;
  select(candidates: readonly AgentInfo[]): AgentInfo | undefined;
}

/** The metadata key under which an agent declares the task inbox it consumes. */
export const INBOX_METADATA_KEY = "inbox";

/**
 * Whether an agent may be sent a task directly: it is `available`, has a free slot (`currentTaskCount`
 * below `maxConcurrentTasks`, counting `extraLoad` tasks already assigned to it in the same batch)
 * and, when a capability is given, serves it (as a tool or an intent).
 *
 * @example
 * agents.filter((agent) => isEligibleAgent(agent, "summarization"));
 */
export function isEligibleAgent(agent: AgentInfo, capability?: string, extraLoad = 0): boolean {
  return (
    agent.status === "available" &&
    agent.currentTaskCount + extraLoad < agent.capabilities.maxConcurrentTasks &&
    (capability === undefined || agentHasCapability(agent, capability))
  );
}

/**
 * Least loaded first: the lowest share of slots in use, then the fewest running tasks, then the agent id
 * (so the choice is deterministic). Spreads work by capacity: an agent with 8 slots and 2 tasks (25 %)
 * wins over one with 2 slots and 1 task (50 %).
 *
 * @example
 * leastLoaded().select(candidates);
 */
export function leastLoaded(): AgentSelector {
  return {
    name: "least-loaded",
    select(candidates) {
      let best: AgentInfo | undefined;
      for (const agent of candidates) {
        if (best === undefined || compareLoad(agent, best) < 0) best = agent;
      }
      return best;
    },
  };
}

/**
 * Round robin over the candidates in agent id order. The position is kept per selector, so keep one
 * selector per supervisor; each process has its own position, which spreads as evenly over time.
 *
 * @example
 * const selector = roundRobin();
 * selector.select(candidates); // a, then b, then a, …
 */
export function roundRobin(): AgentSelector {
  let next = 0;
  return {
    name: "round-robin",
    select(candidates) {
      if (candidates.length === 0) return undefined;
      const ordered = [...candidates].sort((a, b) => compareIds(a.agentId, b.agentId));
      const chosen = ordered[next % ordered.length];
      next = (next + 1) % Number.MAX_SAFE_INTEGER;
      return chosen;
    },
  };
}

function compareLoad(a: AgentInfo, b: AgentInfo): number {
  const share = (agent: AgentInfo) => agent.currentTaskCount / agent.capabilities.maxConcurrentTasks;
  return share(a) - share(b) || a.currentTaskCount - b.currentTaskCount || compareIds(a.agentId, b.agentId);
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
