import { Duration, type RemovalPolicy, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IEventBus } from "aws-cdk-lib/aws-events";
import { StartingPosition } from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource, SqsDlq } from "aws-cdk-lib/aws-lambda-event-sources";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { AgentryFunction, functionEntry } from "./agentry-function.ts";
import { createDeadLetterQueue } from "./dead-letter-queue.ts";
import type { TaskQueues } from "./task-queues.ts";
import { TaskTable } from "./task-table.ts";

/** Which task lifecycle events the stream consumer publishes to EventBridge (each is a billed event). */
export type TaskEventPublishing = "all" | "terminal" | "none";

export interface AggregationProps {
  /** The task table (with its stream) holding tasks, jobs and statistics. */
  readonly table: ITable;
  /** The bus `Job Completed` (and, per `publishTaskEvents`, task lifecycle events) go to. */
  readonly eventBus: IEventBus;
  /** Every task queue; pipelines submit follow-up tasks from the aggregator. */
  readonly taskQueues: TaskQueues;
  /**
   * The stream consumer's entry file.
   *
   * @default functions/aggregator.ts
   */
  readonly entry?: string;
  /**
   * Task lifecycle events published to the bus. Nothing in the stack consumes them (jobs are fed
   * from the stream directly), and EventBridge bills every event: publish them only for your own
   * rules.
   *
   * @default "none"
   */
  readonly publishTaskEvents?: TaskEventPublishing;
  /**
   * Most stream records per invocation.
   *
   * @default 100
   */
  readonly batchSize?: number;
  /**
   * How long the event source gathers records before invoking (fewer, fuller batches: fewer
   * invocations and statistics writes, at the price of that much latency for jobs).
   *
   * @default Duration.seconds(1)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Retries of a failing batch before its records go to the dead-letter queue.
   *
   * @default 50
   */
  readonly retryAttempts?: number;
  /**
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;
  /**
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * Aggregation: the consumer of the task table's DynamoDB Stream (docs/adr/0007-write-path-cost.md).
 * One Lambda event source, in batches with a batching window, ReportBatchItemFailures (a failed
 * change and the ones after it are delivered again, nothing before it), bounded retries, then the
 * failed batch's description to a dead-letter queue. Each batch: job tasks' lifecycle events advance
 * their jobs, the statistics are applied in one write, and lifecycle events go to EventBridge only
 * as `publishTaskEvents` says. Batches are not bisected: a batch whose statistics were committed
 * must come again from its first record for the statistics marker to recognise it.
 *
 * @example
 * const aggregation = new Aggregation(this, "Aggregation", { table: tasks.table, eventBus: bus.eventBus, taskQueues: queues });
 */
export class Aggregation extends Construct {
  public readonly handler: AgentryFunction;
  /** Descriptions of stream batches that still failed after every retry (for redrive by hand). */
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: AggregationProps) {
    super(scope, id);
    const batchSize = props.batchSize ?? 100;
    const retryAttempts = props.retryAttempts ?? 50;
    const maxBatchingWindow = props.maxBatchingWindow ?? Duration.seconds(1);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new Error(`batchSize must be an integer between 1 and 10000, got ${batchSize}`);
    }
    if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 10_000) {
      throw new Error(`retryAttempts must be an integer between 0 and 10000, got ${retryAttempts}`);
    }
    if (maxBatchingWindow.toSeconds() > 300) {
      throw new Error(
        `maxBatchingWindow must be at most 5 minutes, got ${maxBatchingWindow.toHumanString()}`,
      );
    }
    if (!props.table.tableStreamArn) {
      throw new Error("the task table has no stream: aggregation consumes its changes");
    }

    this.deadLetterQueue = createDeadLetterQueue(this, "DeadLetterQueue");
    Validations.of(this.deadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is the on-failure destination of the stream event source mapping (descriptions of stream batches that failed every retry), not a redrive source; it is the end of the chain, watched by the DLQ alarm.",
    });
    this.handler = new AgentryFunction(this, "Handler", {
      entry: props.entry ?? functionEntry("aggregator.ts"),
      serviceName: "aggregator",
      description: "Agentry aggregation: the task table's stream to jobs, statistics and events",
      table: props.table,
      eventBus: props.eventBus,
      queueUrls: props.taskQueues.queueUrls(),
      storeShards: props.taskQueues.config.shards,
      platformConfig: props.taskQueues.config,
      timeout: props.timeout ?? Duration.seconds(60),
      memorySize: props.memorySize ?? 512,
      environment: { PUBLISH_TASK_EVENTS: props.publishTaskEvents ?? "none" },
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const fn = this.handler.function;
    // Reads tasks and jobs; writes jobs, pipeline steps' tasks, cancellations and statistics batches
    // (TransactWriteItems: PutItem + UpdateItem). No BatchGetItem: it reads no counters. The stream
    // read actions (DescribeStream, GetRecords, GetShardIterator, ListStreams) come with the event source.
    TaskTable.grantItemAccess(props.table, fn, [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
    ]);
    // SendMessage only, on every task queue: a pipeline's next step is enqueued from here.
    props.taskQueues.grantSendMessages(fn);
    props.eventBus.grantPutEventsTo(fn);

    fn.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize,
        maxBatchingWindow,
        reportBatchItemFailures: true,
        bisectBatchOnError: false,
        retryAttempts,
        maxRecordAge: Duration.hours(24),
        onFailure: new SqsDlq(this.deadLetterQueue),
        parallelizationFactor: 1,
      }),
    );
    Validations.of(fn).acknowledge({
      id: "Serverless-LambdaDLQ",
      reason:
        "Invoked synchronously by the DynamoDB stream event source mapping, never asynchronously; a batch that fails every retry goes to the mapping's on-failure destination (this construct's dead-letter queue).",
    });
  }
}
