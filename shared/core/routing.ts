import { createHash } from "node:crypto";
import { findCapability, type PlatformConfig, queuesForCapability } from "#shared/config/platform";
import type { TaskInput } from "#shared/domain/task";

export type Route =
  | { readonly capability: string; readonly queue: string }
  | { readonly capability?: undefined };

/**
 * Picks the queue for a task: its `requiredCapability`, else the capability configured for its task
 * type; the high tier when its priority reaches the threshold. No configured capability → no route.
 */
export function routeTask(
  config: PlatformConfig,
  input: Pick<TaskInput, "taskType" | "requiredCapability" | "priority">,
): Route {
  const capability = input.requiredCapability ?? config.taskTypes[input.taskType];
  if (capability === undefined || !findCapability(config, capability)) return {};
  const [high, normal] = queuesForCapability(capability);
  return { capability, queue: (input.priority ?? 0) >= config.highPriorityThreshold ? high : normal };
}

// --- Agent routing (issue #5) -----------------------------------------------------------------------

/** Longest agent id kept readable in an inbox name: `agent-` + 56 + `-` + 8 stays under SQS's 80. */
const INBOX_ID_CHARS = 56;

/**
 * The logical queue of one agent's task inbox: `agent-<agentId>`. Characters an SQS queue name cannot
 * hold become `-`; when anything was replaced or cut, a hash of the real id is appended, so two agent
 * ids never share an inbox (`a.b` and `a:b` would otherwise both be `agent-a-b`).
 *
 * @example
 * agentInboxQueue("diagnostics-1a2b3c4d"); // "agent-diagnostics-1a2b3c4d"
 * agentInboxQueue("lambda:diagnostics"); // "agent-lambda-diagnostics-<8 hex>"
 */
export function agentInboxQueue(agentId: string): string {
  const safe = agentId.replace(/[^A-Za-z0-9_-]/g, "-");
  if (safe === agentId && agentId.length <= INBOX_ID_CHARS) return `agent-${agentId}`;
  const hash = createHash("sha256").update(agentId).digest("hex").slice(0, 8);
  return `agent-${safe.slice(0, INBOX_ID_CHARS)}-${hash}`;
}
