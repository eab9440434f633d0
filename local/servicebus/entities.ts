import { type PlatformConfig, queuesForCapability } from "#shared/config/platform";

/**
 * The Service Bus entities Agentry needs, derived from the platform config — the one plan that
 * `npm run azure:provision` creates in a namespace and `npm start -- --azure` gives the local peer
 * (docs/azure.md describes each setting).
 */
export interface ServiceBusQueuePlan {
  /** Logical queue name (capability, optionally with its tier suffix). */
  readonly logical: string;
  /** Service Bus queue name. */
  readonly name: string;
  readonly lockDurationSeconds: number;
  readonly maxDeliveryCount: number;
  readonly duplicateDetectionWindowSeconds: number;
}

export interface ServiceBusEntityPlan {
  readonly queues: readonly ServiceBusQueuePlan[];
  readonly topic: { readonly name: string; readonly duplicateDetectionWindowSeconds: number };
  /** One subscription per node (process) that receives agent messages; rules come from the bus. */
  readonly subscriptions: readonly {
    readonly name: string;
    readonly lockDurationSeconds: number;
    readonly maxDeliveryCount: number;
  }[];
}

/** Service Bus caps a lock at 5 minutes; longer leases are kept by renewing the lock. */
export const MAX_LOCK_DURATION_SECONDS = 300;
/** Drops a repeated send of the same task attempt (message id `<taskId>:<attempt>`) within 10 minutes. */
export const DUPLICATE_DETECTION_WINDOW_SECONDS = 600;
const SUBSCRIPTION_LOCK_SECONDS = 60;

/**
 * @example
 * const plan = serviceBusEntities(platformConfig, { prefix: "agentry", nodes: ["node-1"] });
 * // plan.queues[0] → { logical: "text-analysis-high", name: "agentry-text-analysis-high", lockDurationSeconds: 180, … }
 */
export function serviceBusEntities(
  config: PlatformConfig,
  options: { prefix?: string; nodes?: readonly string[] } = {},
): ServiceBusEntityPlan {
  const prefix = options.prefix ?? "agentry";
  return {
    queues: config.capabilities.flatMap((capability) =>
      queuesForCapability(capability.name).map((logical) => ({
        logical,
        name: `${prefix}-${logical}`,
        // 6 × the handler timeout, as the SQS visibility timeout (within the Service Bus ceiling).
        lockDurationSeconds: Math.min(MAX_LOCK_DURATION_SECONDS, 6 * capability.workerTimeoutSeconds),
        maxDeliveryCount: config.maxReceiveCount,
        duplicateDetectionWindowSeconds: DUPLICATE_DETECTION_WINDOW_SECONDS,
      })),
    ),
    topic: {
      name: `${prefix}-messages`,
      duplicateDetectionWindowSeconds: DUPLICATE_DETECTION_WINDOW_SECONDS,
    },
    subscriptions: (options.nodes ?? ["local"]).map((name) => ({
      name,
      lockDurationSeconds: SUBSCRIPTION_LOCK_SECONDS,
      maxDeliveryCount: config.maxReceiveCount,
    })),
  };
}
