import * as z from "zod";

/**
 * The one typed configuration shared by the CDK stack and the local runtime: which capabilities
 * exist (one queue each, plus a high-priority tier), which task types route to which capability,
 * and the retry, timeout and liveness policy.
 */
export interface CapabilityConfig {
  /** Queue-safe name: letters, digits, hyphens. */
  readonly name: string;
  /** Worker timeout in seconds for this capability's handlers (the Lambda timeout on AWS). */
  readonly workerTimeoutSeconds: number;
  /**
   * Most concurrent Lambda invocations for this capability (SQS event source MaximumConcurrency); for
   * a Fargate capability, the most tasks its service scales out to.
   */
  readonly maxConcurrency: number;
  /**
   * What serves the capability on AWS: SQS-triggered Lambdas (queue visibility 6 × the worker
   * timeout), or long-running pollers on ECS Fargate (queue visibility = `pollerLeaseSeconds`, which
   * the pollers renew while a task runs). Locally every capability runs in process either way.
   * @default "lambda"
   */
  readonly runtime?: CapabilityRuntime;
}

export type CapabilityRuntime = "lambda" | "fargate";

export interface RetryPolicy {
  /** Default attempts per task when the submission does not say. */
  readonly defaultMaxAttempts: number;
  /** First backoff; doubles each attempt, with full jitter, capped at maxDelaySeconds. */
  readonly baseDelaySeconds: number;
  readonly maxDelaySeconds: number;
}

export interface PlatformConfig {
  readonly capabilities: readonly CapabilityConfig[];
  /** Task type → capability, used when a task names no requiredCapability. */
  readonly taskTypes: Readonly<Record<string, string>>;
  readonly retry: RetryPolicy;
  /** Handler timeout when the task does not set timeoutSeconds. */
  readonly defaultTimeoutSeconds: number;
  /** Tasks with priority ≥ this go to the capability's high tier, which workers drain first. */
  readonly highPriorityThreshold: number;
  /** Deliveries before SQS / the memory queue moves a message to the DLQ. */
  readonly maxReceiveCount: number;
  /** Extra lease time beyond the task's timeout before another worker may take the task over. */
  readonly leaseGraceSeconds: number;
  /** A task still `submitted` this long after its last update is enqueued again by the sweeper. */
  readonly stuckSubmittedSeconds: number;
  /** An agent without a heartbeat for this long is marked `unavailable`. */
  readonly agentStalenessSeconds: number;
  /**
   * A job working on a step is looked at by the sweeper at least this often: outcomes whose events
   * never reached the aggregator are read from the tasks and recorded, and the step is decided again.
   */
  readonly jobReconcileSeconds: number;
  /** Shards for statistics counters and status listings (no hot partition key). */
  readonly shards: number;
  /** Days a finished task is kept before the store's TTL removes it. */
  readonly finishedTaskRetentionDays: number;
  /**
   * A long-running poller's lease on a message and its task, renewed every third of it while the
   * handler runs: a crashed poller's tasks are taken over after at most this.
   * @default 60 (DEFAULT_POLLER_LEASE_SECONDS)
   */
  readonly pollerLeaseSeconds?: number;
}

export const DEFAULT_POLLER_LEASE_SECONDS = 60;

export const HIGH_TIER_SUFFIX = "-high";

/** The demo deployment: three capabilities served by the demo agents. */
export const defaultPlatformConfig: PlatformConfig = {
  capabilities: [
    { name: "text-analysis", workerTimeoutSeconds: 30, maxConcurrency: 5 },
    { name: "summarization", workerTimeoutSeconds: 30, maxConcurrency: 5 },
    { name: "diagnostics", workerTimeoutSeconds: 60, maxConcurrency: 5 },
    // Long-running research agents: pollers on ECS Fargate, scaled to zero when idle.
    { name: "research", workerTimeoutSeconds: 900, maxConcurrency: 4, runtime: "fargate" },
  ],
  taskTypes: {
    analyze_text: "text-analysis",
    summarize: "summarization",
    echo: "diagnostics",
    research: "research",
  },
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

const PlatformConfigSchema = z
  .object({
    capabilities: z
      .array(
        z.object({
          name: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
          workerTimeoutSeconds: z.int().min(1).max(900),
          maxConcurrency: z.int().min(2).max(1000),
          runtime: z.enum(["lambda", "fargate"]).optional(),
        }),
      )
      .min(1),
    taskTypes: z.record(z.string(), z.string()),
    retry: z.object({
      defaultMaxAttempts: z.int().min(1).max(10),
      baseDelaySeconds: z.number().positive(),
      maxDelaySeconds: z.int().min(1).max(900),
    }),
    defaultTimeoutSeconds: z.int().min(1).max(900),
    highPriorityThreshold: z.int(),
    maxReceiveCount: z.int().min(1),
    leaseGraceSeconds: z.int().min(0),
    stuckSubmittedSeconds: z.int().min(1),
    agentStalenessSeconds: z.int().min(1),
    jobReconcileSeconds: z.int().min(1).max(86_400).default(defaultPlatformConfig.jobReconcileSeconds),
    shards: z.int().min(1).max(1000),
    finishedTaskRetentionDays: z.int().min(1),
    pollerLeaseSeconds: z.int().min(3).max(43_200).optional(),
  })
  .refine((c) => c.stuckSubmittedSeconds > c.retry.maxDelaySeconds, {
    path: ["stuckSubmittedSeconds"],
    message:
      "must exceed retry.maxDelaySeconds, or the sweeper re-sends tasks that are waiting out their backoff",
  });

/**
 * The configuration a deployed function runs with: `PLATFORM_CONFIG` (JSON, set by the CDK stack
 * from the config it was synthesized with), else the default. A malformed value stops the function
 * at init with the reason, rather than routing tasks by a configuration nobody deployed.
 *
 * @example
 * const config = loadPlatformConfig(process.env);
 */
export function loadPlatformConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): PlatformConfig {
  const raw = env.PLATFORM_CONFIG;
  if (raw === undefined || raw === "") return defaultPlatformConfig;
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
