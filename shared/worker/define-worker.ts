import * as z from "zod";
import type { TaskHandler } from "#shared/core/dispatcher";
import { ValidationError } from "#shared/domain/errors";

export type { TaskContext, TaskHandler } from "#shared/core/dispatcher";
export { NonRetryableError } from "#shared/domain/errors";

export interface WorkerDefinition {
  /** What kind of agent this is (shown in the registry). */
  readonly agentType: string;
  /** The capabilities this worker serves: it consumes each capability's queues. */
  readonly capabilities: readonly string[];
  /** Most tasks one instance runs at once. */
  readonly maxConcurrentTasks: number;
  /** One handler per task type. */
  readonly handlers: Readonly<Record<string, TaskHandler>>;
}

const DefinitionSchema = z.object({
  agentType: z.string().min(1).max(128),
  capabilities: z.array(z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "letters, digits and hyphens")).min(1),
  maxConcurrentTasks: z.int().min(1).max(1000),
  handlers: z.record(
    z.string().min(1),
    z.custom<TaskHandler>((h) => typeof h === "function", "must be a function"),
  ),
});

/**
 * Declares a worker: which capabilities it serves and the handler for each task type. The same
 * definition runs as an SQS-triggered Lambda (`createLambdaWorkerHandler`) or as a long-running
 * poller (`startPoller`, in process or on ECS Fargate).
 *
 * @example
 * export const translator = defineWorker({
 *   agentType: "translator",
 *   capabilities: ["translation"],
 *   maxConcurrentTasks: 4,
 *   handlers: {
 *     translate: async (input, ctx) => {
 *       const { text } = input as { text: string };
 *       ctx.logger.info("translating", { taskId: ctx.taskId });
 *       return { text: await translate(text, { signal: ctx.signal }) };
 *     },
 *   },
 * });
 */
export function defineWorker(definition: WorkerDefinition): WorkerDefinition {
  const parsed = DefinitionSchema.safeParse(definition);
  if (!parsed.success) {
    throw new ValidationError(
      `invalid worker definition "${definition.agentType}"`,
      parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    );
  }
  if (Object.keys(definition.handlers).length === 0) {
    throw new ValidationError(`worker "${definition.agentType}" has no handlers`, [
      { path: "handlers", message: "at least one handler is required" },
    ]);
  }
  return Object.freeze({ ...definition, capabilities: [...definition.capabilities] });
}
