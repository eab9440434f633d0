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
  /** One handler per task type. A task type routes to the worker's first capability. */
  readonly handlers: Readonly<Record<string, TaskHandler>>;
  /**
   * How the worker's capabilities run when deployed (and in the emulated runtime). Everything else —
   * queues, routes, the Lambda function, its event sources and alarms — is derived from it.
   *
   * @default - runs on Lambda, 30 s timeout, at most 5 concurrent invocations per capability
   */
  readonly deployment?: WorkerDeployment;
  /**
   * One example input per task type: what the synthesized-app test and the authoring test submit to
   * prove the worker runs where it is deployed. Required for a worker listed in
   * `shared/agents/workers.ts` (every handler needs one); optional for ad-hoc pollers.
   */
  readonly examples?: Readonly<Record<string, unknown>>;
}

/** Where and how a worker's capabilities run. */
export interface WorkerDeployment {
  /**
   * Where the worker runs when deployed: SQS-triggered Lambdas (up to 15 minutes a task), or
   * long-running pollers on ECS Fargate (scaled to zero when idle; see "Workers on ECS Fargate").
   *
   * @default "lambda"
   */
  readonly runsOn?: "lambda" | "fargate";
  /**
   * Handler timeout in seconds for the worker's capabilities (the Lambda timeout; tasks may ask for
   * less, never more).
   *
   * @default 30
   */
  readonly timeoutSeconds?: number;
  /**
   * Most concurrent invocations per capability (the SQS event source's MaximumConcurrency); on
   * Fargate, the most tasks its service scales out to.
   *
   * @default 5
   */
  readonly maxConcurrency?: number;
}

const DefinitionSchema = z.object({
  agentType: z.string().min(1).max(128),
  capabilities: z.array(z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "letters, digits and hyphens")).min(1),
  maxConcurrentTasks: z.int().min(1).max(1000),
  handlers: z.record(
    z.string().min(1),
    z.custom<TaskHandler>((h) => typeof h === "function", "must be a function"),
  ),
  deployment: z
    .object({
      runsOn: z.enum(["lambda", "fargate"]).optional(),
      timeoutSeconds: z.int().min(1).max(900).optional(),
      maxConcurrency: z.int().min(2).max(1000).optional(),
    })
    .optional(),
  examples: z.record(z.string(), z.unknown()).optional(),
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
 *   deployment: { timeoutSeconds: 60, maxConcurrency: 10 },
 *   handlers: {
 *     translate: async (input, ctx) => {
 *       const { text } = input as { text: string };
 *       ctx.logger.info("translating", { taskId: ctx.taskId });
 *       return { text: await translate(text, { signal: ctx.signal }) };
 *     },
 *   },
 *   examples: { translate: { text: "Hello" } },
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
