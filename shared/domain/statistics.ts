import * as z from "zod";

export const SupervisorStatisticsSchema = z.object({
  totalTasksSubmitted: z.int(),
  tasksCompleted: z.int(),
  tasksFailed: z.int(),
  tasksCanceled: z.int(),
  tasksRejected: z.int(),
  tasksPending: z.int(),
  tasksInProgress: z.int(),
  averageExecutionTimeMs: z.number(),
  tasksByType: z.record(z.string(), z.int()),
  tasksByAgent: z.record(z.string(), z.int()),
});
export type SupervisorStatistics = z.infer<typeof SupervisorStatisticsSchema>;

/**
 * Counter names. Counters are additive, so a store can keep them in shards and sum them on read.
 * `status:<s>` counts tasks currently in status s; `type:<t>` counts submitted tasks by type;
 * `agent:<id>` counts tasks an agent finished; `execMsTotal`/`execCount` give the average.
 */
export const Counter = {
  submitted: "submitted",
  status: (status: string) => `status:${status}`,
  type: (taskType: string) => `type:${taskType}`,
  agent: (agentId: string) => `agent:${agentId}`,
  execMsTotal: "execMsTotal",
  execCount: "execCount",
} as const;

export type CounterDeltas = Record<string, number>;

export function statisticsFromCounters(counters: Readonly<Record<string, number>>): SupervisorStatistics {
  const get = (name: string) => counters[name] ?? 0;
  const byPrefix = (prefix: string) =>
    Object.fromEntries(
      Object.entries(counters)
        .filter(([name, value]) => name.startsWith(prefix) && value !== 0)
        .map(([name, value]) => [name.slice(prefix.length), value]),
    );
  const execCount = get(Counter.execCount);
  return {
    totalTasksSubmitted: get(Counter.submitted),
    tasksCompleted: get(Counter.status("completed")),
    tasksFailed: get(Counter.status("failed")),
    tasksCanceled: get(Counter.status("canceled")),
    tasksRejected: get(Counter.status("rejected")),
    tasksPending: get(Counter.status("submitted")),
    tasksInProgress: get(Counter.status("working")) + get(Counter.status("input-required")),
    averageExecutionTimeMs: execCount === 0 ? 0 : Math.round(get(Counter.execMsTotal) / execCount),
    tasksByType: byPrefix("type:"),
    tasksByAgent: byPrefix("agent:"),
  };
}
