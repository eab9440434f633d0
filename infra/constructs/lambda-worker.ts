import { Duration, Names, type RemovalPolicy, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IEventBus } from "aws-cdk-lib/aws-events";
import type { EventSourceMapping } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { AgentryFunction, declareConditionalGrants, functionEntry } from "./agentry-function.ts";
import { type TaskQueues, type TierQueue, VISIBILITY_TIMEOUT_MULTIPLIER } from "./task-queues.ts";
import { TaskTable } from "./task-table.ts";

/** Lambda's bounds on an SQS event source mapping's MaximumConcurrency. */
const MIN_MAX_CONCURRENCY = 2;
const MAX_MAX_CONCURRENCY = 1000;
/** Lambda's bound on an SQS event source mapping's batching window. */
const MAX_BATCHING_WINDOW_SECONDS = 300;

/** What `AgentryPlatform.addLambdaWorker` asks for; the platform supplies table, bus and queues. */
export interface LambdaWorkerOptions {
  /** A capability of the platform config; the worker consumes both of its tier queues. */
  readonly capability: string;
  /**
   * Absolute path of the worker's entry file, exporting `handler` (see `shared/worker/aws-lambda.ts`).
   *
   * @default - `functions/workers/worker.ts`: the registered worker that serves the capability
   *   (`shared/agents/workers.ts`), picked by the function's `CAPABILITY` variable
   */
  readonly entry?: string;
  /**
   * The function timeout. Six times this must fit in the capability's queue visibility timeout.
   *
   * @default - the capability's `workerTimeoutSeconds`
   */
  readonly timeout?: Duration;
  /**
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * MaximumConcurrency of each of the two event source mappings (Lambda accepts 2 to 1000). The
   * high and normal tiers are polled independently, so the function runs at most twice this.
   *
   * @default - the capability's `maxConcurrency`
   */
  readonly maxConcurrency?: number;
  /**
   * Messages per invocation (at most 10, so a batch never waits for a window to fill).
   *
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * How long Lambda gathers messages before invoking; 0 invokes as soon as messages arrive.
   *
   * @default Duration.seconds(0)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
}

export interface LambdaWorkerProps extends LambdaWorkerOptions {
  /** The platform's task queues, which know the configured capabilities. */
  readonly taskQueues: TaskQueues;
  /** The task table the worker claims tasks in and records results to. */
  readonly table: ITable;
  /** The platform's bus (EVENT_BUS_NAME); the worker publishes nothing to it. */
  readonly eventBus: IEventBus;
}

/**
 * A worker agent running as an SQS-triggered Lambda: one function consuming both tier queues of
 * its capability (`<capability>-high` and `<capability>`) through event source mappings with
 * `ReportBatchItemFailures`, `MaximumConcurrency` and batches of up to 10. Its role holds exactly what
 * the mappings and the worker call: receive, delete and read the attributes of its queues (the
 * mappings), change visibility on them (releasing a contended task), send to them (retry with backoff)
 * and to their DLQs (non-retryable messages), the task table's item actions, and publish to the bus.
 *
 * @example
 * new LambdaWorker(this, "SummarizationWorker", {
 *   capability: "summarization",
 *   entry: functionEntry("workers/summarization.ts"),
 *   taskQueues: queues,
 *   table: tasks.table,
 *   eventBus: bus.eventBus,
 *   maxConcurrency: 10,
 * });
 */
export class LambdaWorker extends Construct {
  public readonly capability: string;
  public readonly handler: AgentryFunction;
  /** The two queues the worker consumes, high tier first. */
  public readonly queues: readonly [high: TierQueue, normal: TierQueue];
  /** One SQS event source mapping per tier queue, high tier first. */
  public readonly eventSourceMappings: readonly EventSourceMapping[];

  constructor(scope: Construct, id: string, props: LambdaWorkerProps) {
    // Validate before joining the tree, so that a refused worker leaves no half-built construct.
    const { capability, taskQueues } = props;
    const { timeout, maxConcurrency, batchSize, maxBatchingWindow, queues } = resolveSettings(props);
    super(scope, id);
    this.capability = capability;
    this.queues = queues;

    this.handler = new AgentryFunction(this, "Handler", {
      entry: props.entry ?? functionEntry("workers/worker.ts"),
      serviceName: capability,
      description: `Agentry Lambda worker for capability ${capability}`,
      table: props.table,
      eventBus: props.eventBus,
      queueUrls: taskQueues.queueUrls(queues),
      storeShards: taskQueues.config.shards,
      platformConfig: taskQueues.config,
      deadLetterQueueUrls: taskQueues.deadLetterQueueUrls(queues),
      environment: { AGENT_TYPE: capability, CAPABILITY: capability },
      timeout,
      memorySize: props.memorySize,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const fn = this.handler.function;
    // No DeleteItem (a Lambda worker never unregisters its agent) and no BatchGetItem (it never lists).
    TaskTable.grantItemAccess(props.table, fn, [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
    ]);
    // No events:PutEvents: a worker publishes nothing; its writes reach the task table's stream, whose
    // consumer publishes what is published (docs/adr/0007-write-path-cost.md).
    // Explicit, narrow queue grants instead of SqsEventSource's (which adds GetQueueUrl through
    // Queue.grantConsumeMessages) and Queue.grantSendMessages (GetQueueAttributes, GetQueueUrl).
    taskQueues.grantConsumeMessages(fn, queues);
    taskQueues.grantSendMessages(fn, queues);
    taskQueues.grantSendToDeadLetterQueues(fn, queues);
    declareConditionalGrants(fn, {
      "sqs:SendMessage":
        "a worker sends only to retry a failed attempt (a delayed message on the task's queue) or to dead-letter a message (its DLQ)",
      "sqs:ChangeMessageVisibility":
        "only the `release` settlement of a contended task (SqsTaskQueue.release) changes a message's visibility; a Lambda worker's lease extensions are writes to the task, not to the message",
    });

    // The mappings SqsEventSource would create, under the same construct ids (so the same logical ids).
    this.eventSourceMappings = queues.map(({ queue }) =>
      fn.addEventSourceMapping(`SqsEventSource:${Names.nodeUniqueId(queue.node)}`, {
        eventSourceArn: queue.queueArn,
        batchSize,
        maxBatchingWindow,
        maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );

    Validations.of(fn).acknowledge({
      id: "Serverless-LambdaDLQ",
      reason:
        "Invoked synchronously by SQS event source mappings, never asynchronously; failed messages go to each queue's own DLQ through its redrive policy.",
    });
    Validations.of(this).acknowledge({
      id: "Serverless-LambdaEventSourceMappingDestination",
      reason:
        "SQS event source mappings do not support OnFailure destinations (only streams and Kafka do); the source queues' redrive policies dead-letter failed messages.",
    });
  }
}

interface WorkerSettings {
  readonly timeout: Duration;
  readonly maxConcurrency: number;
  readonly batchSize: number;
  readonly maxBatchingWindow: Duration;
  readonly queues: readonly [high: TierQueue, normal: TierQueue];
}

function resolveSettings(props: LambdaWorkerProps): WorkerSettings {
  const { capability, taskQueues } = props;
  const capabilityConfig = taskQueues.capabilityConfig(capability);
  const maxConcurrency = props.maxConcurrency ?? capabilityConfig.maxConcurrency;
  const timeout = props.timeout ?? Duration.seconds(capabilityConfig.workerTimeoutSeconds);
  const batchSize = props.batchSize ?? 10;
  const maxBatchingWindow = props.maxBatchingWindow ?? Duration.seconds(0);
  if (
    !Number.isInteger(maxConcurrency) ||
    maxConcurrency < MIN_MAX_CONCURRENCY ||
    maxConcurrency > MAX_MAX_CONCURRENCY
  ) {
    throw new Error(
      `maxConcurrency must be an integer between ${MIN_MAX_CONCURRENCY} and ${MAX_MAX_CONCURRENCY}, got ${maxConcurrency}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
    throw new Error(`batchSize must be an integer between 1 and 10, got ${batchSize}`);
  }
  if (maxBatchingWindow.toSeconds() > MAX_BATCHING_WINDOW_SECONDS) {
    throw new Error(
      `maxBatchingWindow must be at most ${MAX_BATCHING_WINDOW_SECONDS} seconds, got ${maxBatchingWindow.toHumanString()}`,
    );
  }
  const queues = taskQueues.forCapability(capability);
  for (const { visibilityTimeout, logicalName } of queues) {
    const visibility = visibilityTimeout.toSeconds();
    const seconds = timeout.toSeconds({ integral: false });
    if (seconds * VISIBILITY_TIMEOUT_MULTIPLIER > visibility) {
      throw new Error(
        `timeout of the "${capability}" worker must be at most ${Math.floor(visibility / VISIBILITY_TIMEOUT_MULTIPLIER)} seconds (queue "${logicalName}" has a ${visibility} s visibility timeout, which must be ≥ ${VISIBILITY_TIMEOUT_MULTIPLIER} × the timeout), got ${seconds} seconds`,
      );
    }
  }
  return { timeout, maxConcurrency, batchSize, maxBatchingWindow, queues };
}
