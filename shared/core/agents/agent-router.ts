import type { AgentInfo } from "#shared/domain/agent";
import type { Task } from "#shared/domain/task";
import type { AgentRegistry } from "#shared/ports/agent-registry";
import type { Logger } from "#shared/ports/logger";
import { agentInboxQueue } from "../routing.ts";
import { type AgentSelector, INBOX_METADATA_KEY, isEligibleAgent } from "./agent-selector.ts";

/**
 * Decides which submitted tasks go straight to one agent's inbox instead of their capability queue.
 * The supervisor calls it after the tasks were persisted, so it must never throw: a lookup that fails
 * leaves the task on its capability queue, which every agent of the capability serves.
 */
export interface AgentRouting {
  /** Task id → logical inbox queue, for the tasks that go to one agent; the others are not in the map. */
  inboxesFor(tasks: readonly Task[]): Promise<ReadonlyMap<string, string>>;
}

export interface AgentRouterOptions {
  readonly registry: AgentRegistry;
  /**
   * Direct dispatch: when a task's preferred agent is not eligible, send it to the agent this selector
   * picks among the eligible agents of the task's capability, instead of the capability queue.
   * @default undefined - the capability queue (every agent of the capability pulls from it)
   */
  readonly fallback?: AgentSelector;
  readonly logger?: Pick<Logger, "warn">;
}

/**
 * Routing by agent. A task's `preferredAgentId` is honoured when that agent is registered, `available`,
 * below its `maxConcurrentTasks` (counting tasks of the same batch already given to it), serves the
 * task's capability and consumes a task inbox (it declared `capabilities.metadata.inbox`, which the
 * worker SDK's pollers do). Anything else goes to the capability queue, or with `fallback` to the agent
 * that selector picks.
 *
 * An agent without an inbox (a Lambda worker, an agent registered over HTTP only) is never sent a task
 * directly: nothing would read its inbox.
 *
 * @example
 * const supervisor = new Supervisor({ store, queue, config, agentRouting: new AgentRouter({ registry }) });
 */
export class AgentRouter implements AgentRouting {
  private readonly registry: AgentRegistry;
  private readonly fallback: AgentSelector | undefined;
  private readonly logger: Pick<Logger, "warn"> | undefined;

  constructor(options: AgentRouterOptions) {
    this.registry = options.registry;
    this.fallback = options.fallback;
    this.logger = options.logger;
  }

  async inboxesFor(tasks: readonly Task[]): Promise<ReadonlyMap<string, string>> {
    const inboxes = new Map<string, string>();
    const wanted = tasks.filter((t) => t.status === "submitted" && t.preferredAgentId !== undefined);
    if (wanted.length === 0) return inboxes;
    try {
      const agents = new Map<string, AgentInfo | undefined>();
      const pools = new Map<string, readonly AgentInfo[]>();
      // Tasks handed to an agent in this batch count against its free slots.
      const assigned = new Map<string, number>();
      const extraLoad = (agentId: string) => assigned.get(agentId) ?? 0;
      const eligible = (agent: AgentInfo, task: Task) =>
        hasInbox(agent) && isEligibleAgent(agent, task.requiredCapability, extraLoad(agent.agentId));

      for (const task of wanted) {
        const preferredId = task.preferredAgentId ?? "";
        if (!agents.has(preferredId)) agents.set(preferredId, await this.registry.get(preferredId));
        const preferred = agents.get(preferredId);
        let chosen = preferred !== undefined && eligible(preferred, task) ? preferred : undefined;
        if (chosen === undefined && this.fallback !== undefined) {
          let pool = pools.get(task.requiredCapability);
          if (pool === undefined) {
            pool = await this.registry.list({ capability: task.requiredCapability, status: "available" });
            pools.set(task.requiredCapability, pool);
          }
          chosen = this.fallback.select(
            pool
              .filter((agent) => eligible(agent, task))
              .map((agent) => ({
                ...agent,
                currentTaskCount: agent.currentTaskCount + extraLoad(agent.agentId),
              })),
          );
        }
        if (chosen === undefined) continue;
        inboxes.set(task.taskId, agentInboxQueue(chosen.agentId));
        assigned.set(chosen.agentId, extraLoad(chosen.agentId) + 1);
      }
      return inboxes;
    } catch (error) {
      // The tasks are already persisted: the capability queue is always a correct place for them.
      this.logger?.warn("agent routing failed; the tasks go to their capability queues", {
        error,
      });
      return new Map();
    }
  }
}

/** The agent consumes its own inbox: it declared exactly the inbox its id maps to. */
function hasInbox(agent: AgentInfo): boolean {
  return agent.capabilities.metadata[INBOX_METADATA_KEY] === agentInboxQueue(agent.agentId);
}
