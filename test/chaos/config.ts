import { platformConfig } from "#shared/agents/workers";
import type { PlatformConfig } from "#shared/config/platform";

/** The capability the chaos run's worker processes serve (the demo `echo` handler's). */
export const CHAOS_CAPABILITY = "diagnostics";

/** The event bus the worker processes publish to (the runtime process's PutEvents receiver). */
export const CHAOS_EVENT_BUS = "agentry-chaos";

/**
 * The platform configuration of a chaos run: the demo workers, with `diagnostics` served by
 * container-worker processes (so `external` to the runtime, on short poller leases), and every
 * recovery threshold short, so that what a killed process or a lost message leaves behind is found
 * again within seconds rather than minutes.
 */
export const chaosConfig: PlatformConfig = {
  ...platformConfig,
  capabilities: platformConfig.capabilities.map((capability) =>
    capability.name === CHAOS_CAPABILITY
      ? { ...capability, external: true, runtime: "fargate", workerTimeoutSeconds: 5, maxConcurrency: 8 }
      : // Nothing is sent to research: it needs no worker.
        capability.name === "research"
        ? { ...capability, external: true }
        : capability,
  ),
  retry: { defaultMaxAttempts: 3, baseDelaySeconds: 1, maxDelaySeconds: 2 },
  leaseGraceSeconds: 1,
  stuckSubmittedSeconds: 4,
  jobReconcileSeconds: 3,
  pollerLeaseSeconds: 4,
  // Fewer shards, fewer queries per sweep: DynamoDB Local on a small machine is the run's bottleneck.
  shards: 4,
};
