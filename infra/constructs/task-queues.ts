import { Duration } from "aws-cdk-lib";
import { Grant, type IGrantable } from "aws-cdk-lib/aws-iam";
import { type IQueue, Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { platformConfig } from "#shared/agents/workers";
import {
  type CapabilityConfig,
  type PlatformConfig,
  pollerLeaseSeconds,
  queuesForCapability,
} from "#shared/config/platform";
import { createDeadLetterQueue } from "./dead-letter-queue.ts";

/** Lambda's SQS event source mapping requires visibility ≥ 6 × the function timeout (AWS guidance). */
export const VISIBILITY_TIMEOUT_MULTIPLIER = 6;

/** Lambda's longest timeout, in seconds. */
const MAX_LAMBDA_TIMEOUT_SECONDS = 900;
/** SQS bounds on maxReceiveCount; the platform requires at least 5 (docs/reliability.md). */
const MIN_MAX_RECEIVE_COUNT = 5;
const MAX_MAX_RECEIVE_COUNT = 1000;
const CAPABILITY_NAME = /^[A-Za-z0-9-]+$/;
/** SQS queue names are ≤ 80 characters; generated names keep this much of the logical name. */
const MAX_CAPABILITY_NAME_LENGTH = 40;

/** One tier of one capability: a standard queue and its own dead-letter queue. */
export interface TierQueue {
  /** The logical queue name the runtime uses (`<capability>` or `<capability>-high`). */
  readonly logicalName: string;
  readonly capability: string;
  readonly tier: "high" | "normal";
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /**
   * The source queue's visibility timeout: 6 × the capability's worker timeout, or for a Fargate
   * capability the poller's lease (`pollerLeaseSeconds`).
   */
  readonly visibilityTimeout: Duration;
}

export interface TaskQueuesProps {
  /**
   * The capabilities (one queue pair each), their worker timeouts and the redrive threshold.
   *
   * @default platformConfig
   */
  readonly config?: PlatformConfig;
  /**
   * How long a task message may wait in a source queue.
   *
   * @default Duration.days(4)
   */
  readonly retentionPeriod?: Duration;
  /**
   * How long a dead-lettered message is kept; must be longer than `retentionPeriod`, because SQS
   * keeps a message's original enqueue timestamp when it moves to the DLQ.
   *
   * @default Duration.days(14)
   */
  readonly deadLetterRetentionPeriod?: Duration;
}

/**
 * The task queues: for every configured capability two standard SQS queues — `<capability>` and
 * `<capability>-high` — each with its own DLQ (`maxReceiveCount` from the config), SQS-managed SSE,
 * TLS enforced by queue policy, and a visibility timeout of 6 × the capability's worker timeout.
 *
 * @example
 * const queues = new TaskQueues(this, "Queues", { config: platformConfig });
 * queues.grantSendMessages(supervisorFunction);
 * const [high, normal] = queues.forCapability("summarization");
 */
export class TaskQueues extends Construct {
  /** Every tier queue of every capability, in config order, high tier first. */
  public readonly queues: readonly TierQueue[];
  public readonly config: PlatformConfig;

  constructor(scope: Construct, id: string, props: TaskQueuesProps = {}) {
    super(scope, id);
    this.config = props.config ?? platformConfig;
    const retentionPeriod = props.retentionPeriod ?? Duration.days(4);
    const deadLetterRetentionPeriod = props.deadLetterRetentionPeriod ?? Duration.days(14);
    validateConfig(this.config);
    if (deadLetterRetentionPeriod.toSeconds() <= retentionPeriod.toSeconds()) {
      throw new Error(
        `deadLetterRetentionPeriod must be longer than retentionPeriod (${retentionPeriod.toHumanString()}), got ${deadLetterRetentionPeriod.toHumanString()}`,
      );
    }

    const queues: TierQueue[] = [];
    for (const capability of this.config.capabilities) {
      const [high, normal] = queuesForCapability(capability.name);
      for (const [logicalName, tier] of [
        [high, "high"],
        [normal, "normal"],
      ] as const) {
        const scopeForQueue = new Construct(this, logicalName);
        const deadLetterQueue = createDeadLetterQueue(scopeForQueue, "DeadLetterQueue", {
          retentionPeriod: deadLetterRetentionPeriod,
        });
        // A Lambda's event source needs 6 × its timeout; a poller sets (and renews) its own lease.
        const visibilityTimeout = Duration.seconds(
          capability.runtime === "fargate"
            ? pollerLeaseSeconds(this.config)
            : capability.workerTimeoutSeconds * VISIBILITY_TIMEOUT_MULTIPLIER,
        );
        const queue = new Queue(scopeForQueue, "Queue", {
          encryption: QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          retentionPeriod,
          visibilityTimeout,
          deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: this.config.maxReceiveCount },
        });
        queues.push({
          logicalName,
          capability: capability.name,
          tier,
          queue,
          deadLetterQueue,
          visibilityTimeout,
        });
      }
    }
    this.queues = queues;
  }

  /** The configured capability names, in config order. */
  get capabilities(): readonly string[] {
    return this.config.capabilities.map((c) => c.name);
  }

  /** A capability's configuration; throws, naming the configured ones, if it is unknown. */
  capabilityConfig(capability: string): CapabilityConfig {
    const found = this.config.capabilities.find((c) => c.name === capability);
    if (!found) {
      throw new Error(
        `unknown capability "${capability}": configured capabilities are ${this.capabilities.join(", ")}`,
      );
    }
    return found;
  }

  /** A capability's two tier queues, high tier first; throws if the capability is unknown. */
  forCapability(capability: string): readonly [high: TierQueue, normal: TierQueue] {
    this.capabilityConfig(capability);
    const [highName, normalName] = queuesForCapability(capability);
    const high = this.queues.find((q) => q.logicalName === highName);
    const normal = this.queues.find((q) => q.logicalName === normalName);
    if (!high || !normal) {
      throw new Error(`capability "${capability}" has no queue pair`);
    }
    return [high, normal];
  }

  /** Logical queue name → queue URL, for the `QUEUE_URLS` environment variable. */
  queueUrls(queues: readonly TierQueue[] = this.queues): Record<string, string> {
    return Object.fromEntries(queues.map((q) => [q.logicalName, q.queue.queueUrl]));
  }

  /** Logical queue name → its DLQ's URL, for the `DLQ_URLS` environment variable. */
  deadLetterQueueUrls(queues: readonly TierQueue[] = this.queues): Record<string, string> {
    return Object.fromEntries(queues.map((q) => [q.logicalName, q.deadLetterQueue.queueUrl]));
  }

  /**
   * Grants `sqs:SendMessage` (which also authorizes SendMessageBatch) on the given task queues — every
   * task queue by default — and nothing on their DLQs. Nothing else: the runtime sends to the URLs in
   * `QUEUE_URLS`, so it never needs `GetQueueUrl` or `GetQueueAttributes`, which `Queue.grantSendMessages`
   * would add.
   */
  grantSendMessages(grantee: IGrantable, queues: readonly TierQueue[] = this.queues): Grant {
    return grantOnQueues(
      grantee,
      ["sqs:SendMessage"],
      this.own(queues).map((q) => q.queue),
    );
  }

  /**
   * Grants `sqs:SendMessage` on the DLQs of the given task queues: what a worker needs to dead-letter a
   * message itself (`SqsTaskQueue.deadLetter` sends a copy to the DLQ URL in `DLQ_URLS`, then deletes).
   */
  grantSendToDeadLetterQueues(grantee: IGrantable, queues: readonly TierQueue[]): Grant {
    return grantOnQueues(
      grantee,
      ["sqs:SendMessage"],
      this.own(queues).map((q) => q.deadLetterQueue),
    );
  }

  /**
   * Grants what consuming the given task queues through a Lambda event source mapping takes, and no
   * more: `ReceiveMessage`, `DeleteMessage` and `GetQueueAttributes`, which the mapping calls with the
   * function's execution role (the permissions the Lambda Developer Guide lists for an SQS event
   * source), and `ChangeMessageVisibility`, which the worker itself calls to release a contended task
   * (`SqsTaskQueue.release`: the message comes back after a delay). Unlike
   * `Queue.grantConsumeMessages`, no `GetQueueUrl`: neither the mapping nor the worker looks a queue up.
   */
  grantConsumeMessages(grantee: IGrantable, queues: readonly TierQueue[]): Grant {
    return grantOnQueues(
      grantee,
      ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
      this.own(queues).map((q) => q.queue),
    );
  }

  /**
   * Grants what a long-running poller (`startPoller`) calls on the queues it consumes, and no more:
   * `ReceiveMessage`, `DeleteMessage` (batch included) and `ChangeMessageVisibility` (lease renewal and
   * release). No `GetQueueAttributes` or `GetQueueUrl`: it receives from the URLs in `QUEUE_URLS`.
   */
  grantPoll(grantee: IGrantable, queues: readonly TierQueue[]): Grant {
    return grantOnQueues(
      grantee,
      ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
      this.own(queues).map((q) => q.queue),
    );
  }

  /**
   * Grants what the operations routes call, and no more: `GetQueueAttributes` on every task queue and
   * its DLQ (`GET /stats/queues`, `GET /dlq` depths), and `ReceiveMessage` and `DeleteMessage` on the
   * DLQs (`GET /dlq` samples messages with a zero visibility timeout; `POST /dlq/redrive` takes them off
   * after sending them back with the `SendMessage` that `grantSendMessages` gives).
   */
  grantOperations(grantee: IGrantable, queues: readonly TierQueue[] = this.queues): Grant[] {
    const own = this.own(queues);
    return [
      grantOnQueues(
        grantee,
        ["sqs:GetQueueAttributes"],
        [...own.map((q) => q.queue), ...own.map((q) => q.deadLetterQueue)],
      ),
      grantOnQueues(
        grantee,
        ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
        own.map((q) => q.deadLetterQueue),
      ),
    ];
  }

  /** The given queues, checked to be this construct's: a grant on nothing or on a stranger's queue is a bug. */
  private own(queues: readonly TierQueue[]): readonly TierQueue[] {
    if (queues.length === 0) throw new Error("a queue grant needs at least one task queue, got none");
    for (const q of queues) {
      if (!this.queues.includes(q)) {
        throw new Error(`queue "${q.logicalName}" is not one of this construct's task queues`);
      }
    }
    return queues;
  }
}

/**
 * Grants exactly `actions` on the queues' ARNs. Our queues use SQS-managed SSE, so no KMS grant is
 * needed; a queue with a customer-managed key would also need `kms:Decrypt` / `kms:GenerateDataKey`.
 */
function grantOnQueues(grantee: IGrantable, actions: readonly string[], queues: readonly IQueue[]): Grant {
  for (const queue of queues) {
    if (queue.encryptionMasterKey !== undefined) {
      throw new Error(
        `queue ${queue.node.path} is encrypted with a KMS key; these grants cover SQS-managed SSE only`,
      );
    }
  }
  return Grant.addToPrincipal({
    grantee,
    actions: [...actions],
    resourceArns: queues.map((queue) => queue.queueArn),
  });
}

function validateConfig(config: PlatformConfig): void {
  if (config.capabilities.length === 0) {
    throw new Error("config.capabilities must name at least one capability, got none");
  }
  const seen = new Set<string>();
  for (const capability of config.capabilities) {
    if (!CAPABILITY_NAME.test(capability.name) || capability.name.length > MAX_CAPABILITY_NAME_LENGTH) {
      throw new Error(
        `capability name must be 1-${MAX_CAPABILITY_NAME_LENGTH} letters, digits or hyphens, got "${capability.name}"`,
      );
    }
    if (seen.has(capability.name)) {
      throw new Error(`capability names must be unique, got "${capability.name}" twice`);
    }
    seen.add(capability.name);
    const timeout = capability.workerTimeoutSeconds;
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_LAMBDA_TIMEOUT_SECONDS) {
      throw new Error(
        `workerTimeoutSeconds of capability "${capability.name}" must be an integer between 1 and ${MAX_LAMBDA_TIMEOUT_SECONDS}, got ${timeout}`,
      );
    }
  }
  const receives = config.maxReceiveCount;
  if (!Number.isInteger(receives) || receives < MIN_MAX_RECEIVE_COUNT || receives > MAX_MAX_RECEIVE_COUNT) {
    throw new Error(
      `maxReceiveCount must be an integer between ${MIN_MAX_RECEIVE_COUNT} and ${MAX_MAX_RECEIVE_COUNT}, got ${receives}`,
    );
  }
}
