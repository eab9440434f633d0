import { randomUUID } from "node:crypto";
import { type AgentInfo, type AgentStatus, AgentStatusSchema } from "#shared/domain/agent";
import { NotFoundError, ValidationError } from "#shared/domain/errors";
import { statisticsFromCounters } from "#shared/domain/statistics";
import type { AgentQuery, AgentRegistry } from "#shared/ports/agent-registry";
import { type Clock, systemClock } from "#shared/ports/clock";
import type { TaskStore } from "#shared/ports/task-store";
import {
  AgentIdentifierSchema,
  type HeartbeatResponse,
  parseInput,
  type RegisterAgentInput,
  RegisterAgentInputSchema,
  type WorkerPoolStatistics,
} from "./schemas.ts";

export interface AgentServiceDeps {
  readonly registry: AgentRegistry;
  /** Read for cancel requests (heartbeats) and for the pool's task statistics. */
  readonly store: TaskStore;
  readonly clock?: Clock;
  readonly newId?: () => string;
}

export interface HeartbeatOptions {
  /**
   * Look up the agent's working tasks that were asked to cancel. A poller of the worker SDK reads its
   * own tasks and does not need them, so it skips the lookup.
   * @default true
   */
  readonly includeCancelRequests?: boolean;
}

/** Most agents on one page of `listPage` (`GET /agents`). */
export const MAX_AGENT_PAGE_SIZE = 100;

/** A cursor of `listPage` is the last agent id of a page, base64url; anything else is a 400. */
function decodeAgentCursor(cursor: string): string {
  const agentId = Buffer.from(cursor, "base64url").toString("utf8");
  if (!AgentIdentifierSchema.safeParse(agentId).success) {
    throw new ValidationError("invalid cursor", [
      { path: "cursor", message: "not a cursor this API returned" },
    ]);
  }
  return agentId;
}

/** Working tasks looked at per heartbeat, in pages of {@link PAGE_SIZE}. */
const MAX_SCANNED_PAGES = 10;
const PAGE_SIZE = 100;
/** Completed tasks sampled for a filtered pool's average duration. */
const DURATION_SAMPLE_PAGES = 2;

/**
 * The agent registry's use cases: registration, lookup, status, liveness (heartbeats), and the
 * worker pool's statistics. Every operation on an unknown agent throws a NotFoundError.
 *
 * @example
 * const agents = new AgentService({ registry, store });
 * const agent = await agents.register({ agentType: "summarizer", capabilities: { supportedTools: ["summarization"] } });
 * const { cancelRequests } = await agents.heartbeat(agent.agentId);
 */
export class AgentService {
  private readonly registry: AgentRegistry;
  private readonly store: TaskStore;
  private readonly clock: Clock;
  private readonly newId: () => string;

  constructor(deps: AgentServiceDeps) {
    this.registry = deps.registry;
    this.store = deps.store;
    this.clock = deps.clock ?? systemClock;
    this.newId = deps.newId ?? randomUUID;
  }

  /**
   * Registers an agent as `available`, alive now. Registering an existing id replaces its type,
   * capabilities and endpoint but keeps its `registeredAt` and its running task count (an update
   * from a live agent must not forget the tasks it runs).
   */
  async register(input: RegisterAgentInput): Promise<AgentInfo> {
    const parsed = parseInput(RegisterAgentInputSchema, input, "invalid agent registration");
    const now = this.clock.now().toISOString();
    const agentId = parsed.agentId ?? this.newId();
    const existing = parsed.agentId === undefined ? undefined : await this.registry.get(agentId);
    return this.registry.register({
      agentId,
      agentType: parsed.agentType,
      status: "available",
      capabilities: parsed.capabilities,
      lastHeartbeat: now,
      ...(parsed.endpoint !== undefined ? { endpoint: parsed.endpoint } : {}),
      currentTaskCount: existing?.currentTaskCount ?? 0,
      registeredAt: existing?.registeredAt ?? now,
    });
  }

  async get(agentId: string): Promise<AgentInfo> {
    const agent = await this.registry.get(agentId);
    if (agent === undefined) throw notFound(agentId);
    return agent;
  }

  /** Agents matching every given filter; a capability matches a supported tool or intent. */
  async list(query: AgentQuery = {}): Promise<readonly AgentInfo[]> {
    return this.registry.list(query);
  }

  /**
   * One page of matching agents, by agentId. `cursor` is the previous page's `nextCursor`; a page may be
   * short, even empty, and still have one (the registry bounds the work of a call).
   */
  async listPage(
    query: AgentQuery,
    page: { readonly limit: number; readonly cursor?: string },
  ): Promise<{ items: readonly AgentInfo[]; nextCursor?: string }> {
    if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > MAX_AGENT_PAGE_SIZE) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_AGENT_PAGE_SIZE}`, [
        { path: "limit", message: `got ${page.limit}` },
      ]);
    }
    const after = page.cursor === undefined ? undefined : decodeAgentCursor(page.cursor);
    const result = await this.registry.listPage(query, {
      limit: page.limit,
      ...(after !== undefined ? { after } : {}),
    });
    return {
      items: result.items,
      ...(result.nextAfter !== undefined
        ? { nextCursor: Buffer.from(result.nextAfter, "utf8").toString("base64url") }
        : {}),
    };
  }

  async updateStatus(agentId: string, status: AgentStatus): Promise<AgentInfo> {
    const valid = parseInput(AgentStatusSchema, status, "invalid agent status");
    const agent = await this.registry.updateStatus(agentId, valid);
    if (agent === undefined) throw notFound(agentId);
    return agent;
  }

  /**
   * Records that the agent is alive. An agent the liveness sweep marked `unavailable` becomes
   * `available` again; any other status is the agent's own and is kept. Answers the agent's working
   * tasks that were asked to cancel, so an agent that runs tasks outside the worker SDK can stop them.
   */
  async heartbeat(
    agentId: string,
    options: HeartbeatOptions = {},
  ): Promise<HeartbeatResponse & { readonly agent: AgentInfo }> {
    let agent = await this.registry.heartbeat(agentId, this.clock.now().toISOString());
    if (agent === undefined) throw notFound(agentId);
    if (agent.status === "unavailable") {
      agent = (await this.registry.updateStatus(agentId, "available")) ?? agent;
    }
    const cancelRequests =
      (options.includeCancelRequests ?? true) ? await this.cancelRequestsOf(agentId) : [];
    return { agent, cancelRequests };
  }

  async unregister(agentId: string): Promise<void> {
    if (!(await this.registry.unregister(agentId))) throw notFound(agentId);
  }

  /** Bookkeeping for the worker pool: the agent started running a task. Unknown agents are ignored. */
  async taskStarted(agentId: string): Promise<void> {
    await this.registry.adjustTaskCount(agentId, 1);
  }

  /** The agent finished running a task (whatever its outcome). */
  async taskFinished(agentId: string): Promise<void> {
    await this.registry.adjustTaskCount(agentId, -1);
  }

  /**
   * The pool of registered agents serving `capability` (all agents without one). Task counts come
   * from the statistics counters, which count finished tasks per agent. Without a capability the
   * average duration is the exact one of every task; with one, the counters cannot tell it per agent,
   * so it is the average over the most recent completed tasks of the pool's agents (a sample).
   */
  async pool(capability?: string): Promise<WorkerPoolStatistics> {
    const [agents, counters] = await Promise.all([
      this.registry.list(capability === undefined ? {} : { capability }),
      this.store.readCounters(),
    ]);
    const statistics = statisticsFromCounters(counters);
    const members = new Set(agents.map((a) => a.agentId));
    const tasksByWorker: Record<string, number> = Object.fromEntries(agents.map((a) => [a.agentId, 0]));
    for (const [agentId, count] of Object.entries(statistics.tasksByAgent)) {
      if (capability === undefined || members.has(agentId)) tasksByWorker[agentId] = count;
    }
    const full = (a: AgentInfo) => a.currentTaskCount >= a.capabilities.maxConcurrentTasks;
    return {
      totalWorkers: agents.length,
      availableWorkers: agents.filter((a) => a.status === "available" && !full(a)).length,
      busyWorkers: agents.filter((a) => a.status === "busy" || (a.status === "available" && full(a))).length,
      totalTasksProcessed: Object.values(tasksByWorker).reduce((sum, n) => sum + n, 0),
      averageTaskDurationMs:
        capability === undefined ? statistics.averageExecutionTimeMs : await this.sampledDurationMs(members),
      tasksByWorker,
    };
  }

  /**
   * The TaskStore port lists by status, not by worker, so the agent's tasks are found among the
   * working ones (at most MAX_SCANNED_PAGES pages: a heartbeat must stay cheap).
   */
  private async cancelRequestsOf(agentId: string): Promise<string[]> {
    const taskIds: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_SCANNED_PAGES; page++) {
      const { items, nextCursor } = await this.store.list({
        status: "working",
        limit: PAGE_SIZE,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      for (const task of items) {
        if (task.workerAgentId === agentId && task.cancelRequested) taskIds.push(task.taskId);
      }
      if (nextCursor === undefined) break;
      cursor = nextCursor;
    }
    return taskIds;
  }

  private async sampledDurationMs(members: ReadonlySet<string>): Promise<number> {
    if (members.size === 0) return 0;
    let total = 0;
    let count = 0;
    let cursor: string | undefined;
    for (let page = 0; page < DURATION_SAMPLE_PAGES; page++) {
      const { items, nextCursor } = await this.store.list({
        status: "completed",
        limit: PAGE_SIZE,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      for (const task of items) {
        if (task.workerAgentId === undefined || !members.has(task.workerAgentId) || !task.result) continue;
        total += task.result.executionTimeMs;
        count++;
      }
      if (nextCursor === undefined) break;
      cursor = nextCursor;
    }
    return count === 0 ? 0 : Math.round(total / count);
  }
}

function notFound(agentId: string): NotFoundError {
  return new NotFoundError(`agent ${agentId.slice(0, 128)} not found`);
}
