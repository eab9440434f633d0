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
  /** Most concurrent Lambda invocations for this capability (SQS event source MaximumConcurrency). */
  readonly maxConcurrency: number;
}

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
  /** Shards for statistics counters and status listings (no hot partition key). */
  readonly shards: number;
  /** Days a finished task is kept before the store's TTL removes it. */
  readonly finishedTaskRetentionDays: number;
}

export const HIGH_TIER_SUFFIX = "-high";

/** The demo deployment: three capabilities served by the demo agents. */
export const defaultPlatformConfig: PlatformConfig = {
  capabilities: [
    { name: "text-analysis", workerTimeoutSeconds: 30, maxConcurrency: 5 },
    { name: "summarization", workerTimeoutSeconds: 30, maxConcurrency: 5 },
    { name: "diagnostics", workerTimeoutSeconds: 60, maxConcurrency: 5 },
  ],
  taskTypes: { analyze_text: "text-analysis", summarize: "summarization", echo: "diagnostics" },
  retry: { defaultMaxAttempts: 3, baseDelaySeconds: 1, maxDelaySeconds: 300 },
  defaultTimeoutSeconds: 30,
  highPriorityThreshold: 5,
  maxReceiveCount: 5,
  leaseGraceSeconds: 10,
  stuckSubmittedSeconds: 120,
  agentStalenessSeconds: 90,
  shards: 16,
  finishedTaskRetentionDays: 30,
};

/** Logical queue names for a capability, highest tier first. */
export function queuesForCapability(capability: string): readonly [high: string, normal: string] {
  return [`${capability}${HIGH_TIER_SUFFIX}`, capability];
}

export function findCapability(config: PlatformConfig, name: string): CapabilityConfig | undefined {
  return config.capabilities.find((c) => c.name === name);
}
