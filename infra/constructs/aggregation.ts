import { Duration, type RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { type IEventBus, Match, Rule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { AgentryFunction, functionEntry } from "./agentry-function.ts";
import { createDeadLetterQueue } from "./dead-letter-queue.ts";
import { AGENTRY_EVENT_SOURCE } from "./event-bus.ts";
import type { TaskQueues } from "./task-queues.ts";
import { TaskTable } from "./task-table.ts";

/** Every task lifecycle event's detail-type starts with this ("Task Submitted", "Task Completed", …). */
export const TASK_EVENT_DETAIL_TYPE_PREFIX = "Task ";

export interface AggregationProps {
  /** The task table holding jobs and statistics. */
  readonly table: ITable;
  /** The bus carrying lifecycle events; the aggregator also publishes `Job Completed` to it. */
  readonly eventBus: IEventBus;
  /** Every task queue; pipelines submit follow-up tasks from the aggregator. */
  readonly taskQueues: TaskQueues;
  /**
   * The aggregator's entry file.
   *
   * @default functions/aggregator.ts
   */
  readonly entry?: string;
  /**
   * How long EventBridge keeps retrying a delivery it could not make before dead-lettering it.
   *
   * @default Duration.hours(6)
   */
  readonly maxEventAge?: Duration;
  /**
   * How many times EventBridge retries a delivery it could not make.
   *
   * @default 50
   */
  readonly retryAttempts?: number;
  /**
   * @default Duration.seconds(30)
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
 * Aggregation: an EventBridge rule sending every task lifecycle event (`source: agentry`,
 * detail-type `Task …`) to the aggregator function, which advances jobs, keeps statistics and
 * emits `Job Completed`. Events EventBridge cannot deliver and invocations that still fail after
 * Lambda's asynchronous retries both land in one dead-letter queue, ready for redrive (the
 * aggregator is idempotent under duplicates).
 *
 * @example
 * const aggregation = new Aggregation(this, "Aggregation", { table: tasks.table, eventBus: bus.eventBus, taskQueues: queues });
 */
export class Aggregation extends Construct {
  public readonly handler: AgentryFunction;
  public readonly rule: Rule;
  /** Lifecycle events that could not be delivered or processed. */
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: AggregationProps) {
    super(scope, id);
    const maxEventAge = props.maxEventAge ?? Duration.hours(6);
    const retryAttempts = props.retryAttempts ?? 50;
    // EventBridge target retry policy bounds.
    if (maxEventAge.toSeconds() < 60 || maxEventAge.toSeconds() > Duration.hours(24).toSeconds()) {
      throw new Error(
        `maxEventAge must be between 1 minute and 24 hours, got ${maxEventAge.toHumanString()}`,
      );
    }
    if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 185) {
      throw new Error(`retryAttempts must be an integer between 0 and 185, got ${retryAttempts}`);
    }

    this.deadLetterQueue = createDeadLetterQueue(this, "DeadLetterQueue");
    this.handler = new AgentryFunction(this, "Handler", {
      entry: props.entry ?? functionEntry("aggregator.ts"),
      serviceName: "aggregator",
      description: "Agentry aggregation: jobs, statistics, pipelines",
      table: props.table,
      eventBus: props.eventBus,
      queueUrls: props.taskQueues.queueUrls(),
      storeShards: props.taskQueues.config.shards,
      platformConfig: props.taskQueues.config,
      timeout: props.timeout,
      memorySize: props.memorySize ?? 512,
      deadLetterQueue: this.deadLetterQueue,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const fn = this.handler.function;
    // No BatchGetItem: the aggregator reads no counters and lists no agents (statistics are the API's).
    TaskTable.grantItemAccess(props.table, fn, [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
      "dynamodb:BatchWriteItem",
    ]);
    // SendMessage only, on every task queue: a pipeline's next step is enqueued from here.
    props.taskQueues.grantSendMessages(fn);
    props.eventBus.grantPutEventsTo(fn);

    this.rule = new Rule(this, "LifecycleRule", {
      description: "Task lifecycle events to the aggregator",
      eventBus: props.eventBus,
      eventPattern: {
        source: [AGENTRY_EVENT_SOURCE],
        detailType: Match.prefix(TASK_EVENT_DETAIL_TYPE_PREFIX),
      },
      targets: [
        new LambdaFunction(fn, {
          deadLetterQueue: this.deadLetterQueue,
          maxEventAge,
          retryAttempts,
        }),
      ],
    });
  }
}
