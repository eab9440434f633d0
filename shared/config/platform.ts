import * as z from "zod";

/** Queue-safe: what a capability, and so a queue name, can be. */
const CAPABILITY_NAME = /^[A-Za-z0-9-]{1,64}$/;

export const CapabilityRuntimeSchema = z.enum(["lambda", "fargate"]);
export type CapabilityRuntime = z.infer<typeof CapabilityRuntimeSchema>;

/** One capability: a queue pair (normal and high tier) and what serves it. */
export const CapabilityConfigSchema = z
  .object({
    /** Queue-safe name: letters, digits, hyphens. */
    name: z.string().regex(CAPABILITY_NAME),
    /** Worker timeout in seconds for this capability's handlers (the Lambda timeout on AWS). */
    workerTimeoutSeconds: z.int().min(1).max(900),
    /**
     * Most concurrent Lambda invocations for this capability (SQS event source MaximumConcurrency); for
     * a Fargate capability, the most tasks its service scales out to.
     */
    maxConcurrency: z.int().min(2).max(1000),
    /**
     * What serves the capability on AWS: SQS-triggered Lambdas (queue visibility 6 × the worker
     * timeout), or long-running pollers on ECS Fargate (queue visibility = `pollerLeaseSeconds`, which
     * the pollers renew while a task runs). Locally every capability runs in process either way.
     * @default "lambda"
     */
    runtime: CapabilityRuntimeSchema.optional(),
    /**
     * Its workers run outside the platform (pollers of your own, on your machines): its queues exist,
     * but neither the stack nor the local runtime runs a worker for it, and neither refuses it for
     * having none.
     * @default false
     */
    external: z.boolean().optional(),
  })
  .readonly();
export type CapabilityConfig = z.infer<typeof CapabilityConfigSchema>;

export const RetryPolicySchema = z
  .object({
    /** Default attempts per task when the submission does not say. */
    defaultMaxAttempts: z.int().min(1).max(10),
    /** First backoff; doubles each attempt, with full jitter, capped at maxDelaySeconds. */
    baseDelaySeconds: z.number().positive(),
    maxDelaySeconds: z.int().min(1).max(900),
  })
  .readonly();
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

/**
 * The one typed configuration shared by the CDK stack and the local runtime: which capabilities
 * exist (one queue each, plus a high-priority tier), which task types route to which capability,
 * and the retry, timeout and liveness policy. The types are inferred from this schema, which
 * `loadPlatformConfig` checks a deployed function's `PLATFORM_CONFIG` against: one definition, no twin.
 */
export const PlatformConfigSchema = z
  .object({
    capabilities: z.array(CapabilityConfigSchema).min(1).readonly(),
    /** Task type → capability, used when a task names no requiredCapability. */
    taskTypes: z.record(z.string(), z.string()).readonly(),
    retry: RetryPolicySchema,
    /** Handler timeout when the task does not set timeoutSeconds. */
    defaultTimeoutSeconds: z.int().min(1).max(900),
    /** Tasks with priority ≥ this go to the capability's high tier, which workers drain first. */
    highPriorityThreshold: z.int(),
    /** Deliveries before SQS / the memory queue moves a message to the DLQ. */
    maxReceiveCount: z.int().min(1),
    /** Extra lease time beyond the task's timeout before another worker may take the task over. */
    leaseGraceSeconds: z.int().min(0),
    /** A task still `submitted` this long after its last update is enqueued again by the sweeper. */
    stuckSubmittedSeconds: z.int().min(1),
    /** An agent without a heartbeat for this long is marked `unavailable`. */
    agentStalenessSeconds: z.int().min(1),
    /**
     * A job working on a step is looked at by the sweeper at least this often: outcomes whose events
     * never reached the aggregator are read from the tasks and recorded, and the step is decided again.
     */
    jobReconcileSeconds: z.int().min(1).max(86_400),
    /** Shards for statistics counters and status listings (no hot partition key). */
    shards: z.int().min(1).max(1000),
    /** Days a finished task is kept before the store's TTL removes it. */
    finishedTaskRetentionDays: z.int().min(1),
    /**
     * A long-running poller's lease on a message and its task, renewed every third of it while the
     * handler runs: a crashed poller's tasks are taken over after at most this.
     * @default 60 (DEFAULT_POLLER_LEASE_SECONDS)
     */
    pollerLeaseSeconds: z.int().min(3).max(43_200).optional(),
  })
  .refine((c) => c.stuckSubmittedSeconds > c.retry.maxDelaySeconds, {
    path: ["stuckSubmittedSeconds"],
    message:
      "must exceed retry.maxDelaySeconds, or the sweeper re-sends tasks that are waiting out their backoff",
  })
  .readonly();
export type PlatformConfig = z.infer<typeof PlatformConfigSchema>;

export const DEFAULT_POLLER_LEASE_SECONDS = 60;

export const HIGH_TIER_SUFFIX = "-high";

/** Everything in the configuration that is not derived from the registered workers. */
export type PlatformPolicies = Omit<PlatformConfig, "capabilities" | "taskTypes">;

/** The policies every deployment starts from (`platformConfigFor` combines them with the workers). */
export const defaultPolicies: PlatformPolicies = {
  // maxDelaySeconds stays below stuckSubmittedSeconds, so the sweeper never re-sends a task that is
  // only waiting out its backoff.
  retry: { defaultMaxAttempts: 3, baseDelaySeconds: 1, maxDelaySeconds: 60 },
  defaultTimeoutSeconds: 30,
  highPriorityThreshold: 5,
  maxReceiveCount: 5,
  leaseGraceSeconds: 10,
  stuckSubmittedSeconds: 120,
  agentStalenessSeconds: 90,
  jobReconcileSeconds: 300,
  shards: 16,
  finishedTaskRetentionDays: 30,
};

/** Default handler timeout of a capability whose worker does not set `deployment.timeoutSeconds`. */
export const DEFAULT_WORKER_TIMEOUT_SECONDS = 30;
/** Default MaximumConcurrency of a capability whose worker does not set `deployment.maxConcurrency`. */
export const DEFAULT_WORKER_MAX_CONCURRENCY = 5;

/**
 * What the configuration needs to know of a worker (the shape of `WorkerDefinition` in
 * `shared/worker/define-worker.ts`, kept structural so the config — which the CDK app imports — does
 * not depend on the worker SDK).
 */
export interface WorkerDeclaration {
  readonly agentType: string;
  readonly capabilities: readonly string[];
  readonly handlers: Readonly<Record<string, unknown>>;
  readonly deployment?: {
    readonly runsOn?: CapabilityRuntime;
    readonly timeoutSeconds?: number;
    readonly maxConcurrency?: number;
  };
}

/**
 * The platform configuration for a set of workers: one capability (queue pair; a Lambda function, or
 * a Fargate service for `runsOn: "fargate"`) per capability a worker serves, with the worker's
 * timeout and concurrency, and each task type routed to
 * the first capability of the worker that handles it. A capability or task type claimed by two
 * workers is refused, naming both: tasks on a shared queue would reach a worker without their handler.
 *
 * @example
 * const config = platformConfigFor(workers); // shared/agents/workers.ts
 */
export function platformConfigFor(
  workers: readonly WorkerDeclaration[],
  policies: PlatformPolicies = defaultPolicies,
): PlatformConfig {
  if (workers.length === 0) throw new Error("no workers are registered: shared/agents/workers.ts lists none");
  const capabilityOwner = new Map<string, string>();
  const capabilities: CapabilityConfig[] = [];
  const taskTypes: Record<string, string> = {};
  const taskTypeOwner = new Map<string, string>();
  for (const worker of workers) {
    for (const name of worker.capabilities) {
      const owner = capabilityOwner.get(name);
      if (owner !== undefined) {
        throw new Error(
          `capability "${name}" is served by two workers ("${owner}" and "${worker.agentType}"); give each worker its own capability`,
        );
      }
      capabilityOwner.set(name, worker.agentType);
      const runsOn = worker.deployment?.runsOn;
      capabilities.push({
        name,
        workerTimeoutSeconds: worker.deployment?.timeoutSeconds ?? DEFAULT_WORKER_TIMEOUT_SECONDS,
        maxConcurrency: worker.deployment?.maxConcurrency ?? DEFAULT_WORKER_MAX_CONCURRENCY,
        ...(runsOn === undefined || runsOn === "lambda" ? {} : { runtime: runsOn }),
      });
    }
    const [primary] = worker.capabilities;
    for (const taskType of Object.keys(worker.handlers)) {
      const owner = taskTypeOwner.get(taskType);
      if (owner !== undefined) {
        throw new Error(
          `task type "${taskType}" is handled by two workers ("${owner}" and "${worker.agentType}"); a task type routes to one capability`,
        );
      }
      taskTypeOwner.set(taskType, worker.agentType);
      if (primary !== undefined) taskTypes[taskType] = primary;
    }
  }
  return { ...policies, capabilities, taskTypes };
}

/**
 * Checks that every configured capability and task type has a worker, before anything runs: a
 * capability nobody consumes would leave its tasks `submitted` forever. Throws naming each gap and
 * where to fix it.
 *
 * @example
 * assertEveryCapabilityServed(config, workers); // at local start-up and at synth
 */
export function assertEveryCapabilityServed(
  config: PlatformConfig,
  workers: readonly WorkerDeclaration[],
): void {
  const problems: string[] = [];
  for (const capability of config.capabilities) {
    if (capability.external) continue;
    if (!workers.some((w) => w.capabilities.includes(capability.name))) {
      problems.push(`capability "${capability.name}" is configured but no registered worker serves it`);
    }
  }
  for (const [taskType, capability] of Object.entries(config.taskTypes)) {
    const worker = workers.find((w) => w.capabilities.includes(capability));
    if (worker !== undefined && !Object.hasOwn(worker.handlers, taskType)) {
      problems.push(
        `task type "${taskType}" routes to capability "${capability}", whose worker "${worker.agentType}" has no "${taskType}" handler`,
      );
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `${problems.join("; ")}. Register a worker for it in shared/agents/workers.ts (see "Writing a worker" in the README), mark the capability \`external: true\` if its workers run elsewhere, or remove it from the configuration.`,
    );
  }
}

/** Logical queue names for a capability, highest tier first. */
export function queuesForCapability(capability: string): readonly [high: string, normal: string] {
  return [`${capability}${HIGH_TIER_SUFFIX}`, capability];
}

/** The lease a long-running poller holds a message and its task for (see `pollerLeaseSeconds`). */
export function pollerLeaseSeconds(config: PlatformConfig): number {
  return config.pollerLeaseSeconds ?? DEFAULT_POLLER_LEASE_SECONDS;
}

export function findCapability(config: PlatformConfig, name: string): CapabilityConfig | undefined {
  return config.capabilities.find((c) => c.name === name);
}

/**
 * The configuration a deployed function runs with: `PLATFORM_CONFIG` (JSON, set by the CDK stack
 * from the config it was synthesized with). A missing or malformed value stops the function at init
 * with the reason, rather than routing tasks by a configuration nobody deployed.
 *
 * @example
 * const config = loadPlatformConfig(process.env);
 */
export function loadPlatformConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): PlatformConfig {
  const raw = env.PLATFORM_CONFIG;
  if (raw === undefined || raw === "") {
    throw new Error("PLATFORM_CONFIG is not set: the CDK stack sets it on every function it deploys");
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error("PLATFORM_CONFIG is not valid JSON");
  }
  const parsed = PlatformConfigSchema.safeParse(json);
  if (!parsed.success) throw new Error(`PLATFORM_CONFIG is invalid:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
