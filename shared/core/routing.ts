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
