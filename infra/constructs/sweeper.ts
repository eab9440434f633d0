import { Duration, type RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IEventBus } from "aws-cdk-lib/aws-events";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { CfnFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { Schedule, ScheduleExpression } from "aws-cdk-lib/aws-scheduler";
import { LambdaInvoke } from "aws-cdk-lib/aws-scheduler-targets";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { AgentryFunction, functionEntry } from "./agentry-function.ts";
import { createDeadLetterQueue } from "./dead-letter-queue.ts";
import type { TaskQueues } from "./task-queues.ts";
import { TaskTable } from "./task-table.ts";

export interface SweeperProps {
  /** The task table the sweeper scans for stale leases, stuck tasks and silent agents. */
  readonly table: ITable;
  /** The bus the job sweep publishes a finished job's unconfirmed `Job Completed` to. */
  readonly eventBus: IEventBus;
  /** Every task queue; the sweeper re-enqueues stuck and retried tasks. */
  readonly taskQueues: TaskQueues;
  /**
   * The sweeper's entry file.
   *
   * @default functions/sweeper.ts
   */
  readonly entry?: string;
  /**
   * How often the sweep runs.
   *
   * @default Duration.minutes(1)
   */
  readonly interval?: Duration;
  /**
   * Shorter than `interval`, so that sweeps rarely overlap (they must be safe when they do).
   *
   * @default Duration.seconds(50)
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
 * The scheduled sweeper: an EventBridge Scheduler schedule invoking the sweeper function every
 * minute. It closes the loops events cannot: expired leases are retried or timed out, tasks stuck
 * in `submitted` are enqueued again, silent agents are marked unavailable, due jobs are advanced or
 * reconciled and their unconfirmed `Job Completed` published again (task lifecycle events follow
 * from the table's stream, not from here: docs/adr/0007-write-path-cost.md). Failed invocations —
 * undeliverable ones and ones that failed after Lambda's retries — land in one dead-letter queue.
 *
 * @example
 * const sweeper = new Sweeper(this, "Sweeper", { table: tasks.table, eventBus: bus.eventBus, taskQueues: queues });
 */
export class Sweeper extends Construct {
  public readonly handler: AgentryFunction;
  public readonly schedule: Schedule;
  /** The role EventBridge Scheduler assumes to invoke the sweeper. */
  public readonly scheduleRole: Role;
  /** Failed sweeps: scheduler delivery failures and asynchronous invocation failures. */
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: SweeperProps) {
    super(scope, id);
    const interval = props.interval ?? Duration.minutes(1);
    const timeout = props.timeout ?? Duration.seconds(50);
    if (interval.toSeconds() < 60) {
      throw new Error(
        `interval must be at least 1 minute (EventBridge Scheduler's finest rate), got ${interval.toHumanString()}`,
      );
    }
    if (timeout.toSeconds() >= interval.toSeconds()) {
      throw new Error(
        `timeout must be shorter than interval (${interval.toHumanString()}), got ${timeout.toHumanString()}`,
      );
    }

    this.deadLetterQueue = createDeadLetterQueue(this, "DeadLetterQueue");
    this.handler = new AgentryFunction(this, "Handler", {
      entry: props.entry ?? functionEntry("sweeper.ts"),
      serviceName: "sweeper",
      description: "Agentry sweeper: leases, stuck tasks, agent liveness, due jobs",
      table: props.table,
      eventBus: props.eventBus,
      queueUrls: props.taskQueues.queueUrls(),
      storeShards: props.taskQueues.config.shards,
      platformConfig: props.taskQueues.config,
      timeout,
      memorySize: props.memorySize ?? 512,
      deadLetterQueue: this.deadLetterQueue,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const fn = this.handler.function;
    // No DeleteItem and no BatchWriteItem: the task sweep, the agent liveness sweep and the due-jobs
    // sweep only get, query, put and update (lifecycle events follow from the table's stream).
    TaskTable.grantItemAccess(props.table, fn, [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
    ]);
    // SendMessage only, on every task queue: re-enqueued and retried tasks go to the URLs in QUEUE_URLS.
    props.taskQueues.grantSendMessages(fn);
    props.eventBus.grantPutEventsTo(fn);

    this.scheduleRole = new Role(this, "ScheduleRole", {
      description: "Lets EventBridge Scheduler invoke the Agentry sweeper",
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } },
      }),
    });
    Validations.of(this.scheduleRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(fn.node.defaultChild as CfnFunction)}.Arn>:*]`,
      reason:
        "LambdaInvoke grants lambda:InvokeFunction on the sweeper function and its own versions and aliases (<function ARN>:*); no other function is reachable.",
    });
    this.schedule = new Schedule(this, "Schedule", {
      description: "Runs the Agentry sweeper",
      schedule: ScheduleExpression.rate(interval),
      // A missed sweep is not retried: the next one does the same work a minute later.
      target: new LambdaInvoke(fn, {
        role: this.scheduleRole,
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 0,
        maxEventAge: Duration.minutes(1),
      }),
    });
  }
}
