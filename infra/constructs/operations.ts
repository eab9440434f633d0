import { Duration } from "aws-cdk-lib";
import type { IHttpStage } from "aws-cdk-lib/aws-apigatewayv2";
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Stats,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type { FargateService } from "aws-cdk-lib/aws-ecs";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { FilterPattern, type ILogGroup, MetricFilter } from "aws-cdk-lib/aws-logs";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

const ALARM_PERIOD = Duration.minutes(5);
const GRAPH_WIDTH = 8;

export interface OperationsProps {
  /**
   * Topic notified when an alarm fires.
   *
   * @default - alarms have no action; they show on the dashboard only
   */
  readonly alarmTopic?: ITopic;
  /**
   * A task queue alarms when its oldest message is older than this: workers are down, throttled or
   * too few.
   *
   * @default Duration.minutes(15)
   */
  readonly queueAgeThreshold?: Duration;
  /**
   * The API alarms when it returns at least this many 5xx responses in 5 minutes.
   *
   * @default 5
   */
  readonly apiServerErrorThreshold?: number;
  /**
   * @default - a name CloudFormation generates
   */
  readonly dashboardName?: string;
}

/**
 * Alarms and one dashboard for the platform. Each `monitor*` call adds the alarms for one
 * component and one dashboard row with its graphs and alarm states:
 *
 * - dead-letter queues: any visible message;
 * - task queues: the age of the oldest message;
 * - functions: any error, any throttle;
 * - the HTTP API: 5xx responses;
 * - Fargate workers: any error logged (a task message that failed), memory close to the limit.
 *
 * @example
 * const ops = new Operations(this, "Operations", { alarmTopic });
 * ops.monitorFunction("sweeper", sweeper.handler.function);
 * ops.monitorTaskQueue("summarization", queue, dlq);
 */
export class Operations extends Construct {
  public readonly dashboard: Dashboard;
  private readonly alarmTopic: ITopic | undefined;
  private readonly queueAgeThreshold: Duration;
  private readonly apiServerErrorThreshold: number;
  private readonly createdAlarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: OperationsProps = {}) {
    super(scope, id);
    this.alarmTopic = props.alarmTopic;
    this.queueAgeThreshold = props.queueAgeThreshold ?? Duration.minutes(15);
    this.apiServerErrorThreshold = props.apiServerErrorThreshold ?? 5;
    if (this.queueAgeThreshold.toSeconds() < 60) {
      throw new Error(
        `queueAgeThreshold must be at least 1 minute, got ${this.queueAgeThreshold.toHumanString()}`,
      );
    }
    if (!Number.isInteger(this.apiServerErrorThreshold) || this.apiServerErrorThreshold < 1) {
      throw new Error(
        `apiServerErrorThreshold must be a positive integer, got ${this.apiServerErrorThreshold}`,
      );
    }
    this.dashboard = new Dashboard(this, "Dashboard", {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
    });
  }

  /** Every alarm created so far. */
  get alarms(): readonly Alarm[] {
    return this.createdAlarms;
  }

  /** Alarms on the 5xx responses of the API's stage; graphs requests, errors and latency. */
  monitorHttpApi(name: string, stage: IHttpStage): void {
    const scope = new Construct(this, `HttpApi-${name}`);
    const serverErrors = stage.metricServerError({ period: ALARM_PERIOD, statistic: Stats.SUM });
    const alarm = this.createAlarm(scope, "ServerErrors", {
      metric: serverErrors,
      threshold: this.apiServerErrorThreshold,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description: `${name}: at least ${this.apiServerErrorThreshold} 5xx responses in 5 minutes`,
    });
    this.dashboard.addWidgets(
      graph(`${name} requests`, [
        stage.metricCount({ statistic: Stats.SUM }),
        stage.metricClientError({ statistic: Stats.SUM }),
        stage.metricServerError({ statistic: Stats.SUM }),
      ]),
      graph(`${name} latency`, [
        stage.metricLatency({ statistic: Stats.percentile(50) }),
        stage.metricLatency({ statistic: Stats.percentile(99) }),
        stage.metricIntegrationLatency({ statistic: Stats.percentile(99) }),
      ]),
      alarmStatus(name, [alarm]),
    );
  }

  /** Alarms on any error and any throttle of the function; graphs invocations and duration. */
  monitorFunction(name: string, fn: IFunction): void {
    const scope = new Construct(this, `Function-${name}`);
    const errors = this.createAlarm(scope, "Errors", {
      metric: fn.metricErrors({ period: ALARM_PERIOD, statistic: Stats.SUM }),
      threshold: 0,
      description: `${name}: the function failed at least once in 5 minutes`,
    });
    const throttles = this.createAlarm(scope, "Throttles", {
      metric: fn.metricThrottles({ period: ALARM_PERIOD, statistic: Stats.SUM }),
      threshold: 0,
      description: `${name}: the function was throttled at least once in 5 minutes`,
    });
    this.dashboard.addWidgets(
      graph(`${name} invocations`, [
        fn.metricInvocations({ statistic: Stats.SUM }),
        fn.metricErrors({ statistic: Stats.SUM }),
        fn.metricThrottles({ statistic: Stats.SUM }),
      ]),
      graph(`${name} duration`, [
        fn.metricDuration({ statistic: Stats.percentile(50) }),
        fn.metricDuration({ statistic: Stats.percentile(99) }),
      ]),
      alarmStatus(name, [errors, throttles]),
    );
  }

  /**
   * The Lambda worker alarms, for a Fargate worker: any error its containers logged (the counterpart
   * of a function error: a task message failed and will be redelivered) and memory above 90 % of
   * the limit (the counterpart of a throttle: the service is about to lose containers). Graphs
   * running tasks, CPU and memory.
   */
  monitorFargateService(name: string, service: FargateService, logGroup: ILogGroup): void {
    const scope = new Construct(this, `FargateService-${name}`);
    const errorLines = new MetricFilter(scope, "ErrorLogs", {
      logGroup,
      filterPattern: FilterPattern.stringValue("$.level", "=", "ERROR"),
      metricNamespace: "Agentry",
      metricName: `${name}-errors`,
      metricValue: "1",
    });
    const errors = this.createAlarm(scope, "Errors", {
      metric: errorLines.metric({ period: ALARM_PERIOD, statistic: Stats.SUM }),
      threshold: 0,
      description: `${name}: a container logged an error in 5 minutes`,
    });
    const memory = this.createAlarm(scope, "Memory", {
      metric: service.metricMemoryUtilization({ period: ALARM_PERIOD, statistic: Stats.MAXIMUM }),
      threshold: 90,
      description: `${name}: memory above 90 % of the task's limit`,
    });
    this.dashboard.addWidgets(
      graph(`${name} CPU and memory (%)`, [
        service.metricCpuUtilization({ statistic: Stats.MAXIMUM }),
        service.metricMemoryUtilization({ statistic: Stats.MAXIMUM }),
      ]),
      graph(`${name} errors logged`, [errorLines.metric({ statistic: Stats.SUM })]),
      alarmStatus(name, [errors, memory]),
    );
  }

  /** Alarms on the age of the queue's oldest message and on any message in its DLQ. */
  monitorTaskQueue(name: string, queue: IQueue, deadLetterQueue: IQueue): void {
    const scope = new Construct(this, `TaskQueue-${name}`);
    const age = this.createAlarm(scope, "OldestMessageAge", {
      metric: queue.metricApproximateAgeOfOldestMessage({ period: ALARM_PERIOD, statistic: Stats.MAXIMUM }),
      threshold: this.queueAgeThreshold.toSeconds(),
      description: `${name}: a task has waited more than ${this.queueAgeThreshold.toHumanString()} for a worker`,
    });
    const deadLetters = this.createDeadLetterAlarm(scope, name, deadLetterQueue);
    this.dashboard.addWidgets(
      graph(`${name} queue`, [
        queue.metricApproximateNumberOfMessagesVisible({ statistic: Stats.MAXIMUM }),
        queue.metricApproximateNumberOfMessagesNotVisible({ statistic: Stats.MAXIMUM }),
        deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          statistic: Stats.MAXIMUM,
          label: "dead letters",
        }),
      ]),
      graph(`${name} oldest message (s)`, [
        queue.metricApproximateAgeOfOldestMessage({ statistic: Stats.MAXIMUM }),
      ]),
      alarmStatus(name, [age, deadLetters]),
    );
  }

  /** Alarms on any message in a dead-letter queue that has no source queue (failed invocations). */
  monitorDeadLetterQueue(name: string, deadLetterQueue: IQueue): void {
    const scope = new Construct(this, `DeadLetterQueue-${name}`);
    const alarm = this.createDeadLetterAlarm(scope, name, deadLetterQueue);
    this.dashboard.addWidgets(
      graph(`${name} dead letters`, [
        deadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: Stats.MAXIMUM }),
      ]),
      alarmStatus(name, [alarm]),
    );
  }

  private createDeadLetterAlarm(scope: Construct, name: string, deadLetterQueue: IQueue): Alarm {
    return this.createAlarm(scope, "DeadLetters", {
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: Stats.MAXIMUM,
      }),
      threshold: 0,
      description: `${name}: messages in the dead-letter queue need inspection and redrive`,
    });
  }

  private createAlarm(
    scope: Construct,
    id: string,
    options: {
      metric: IMetric;
      threshold: number;
      description: string;
      /** @default GREATER_THAN_THRESHOLD */
      comparisonOperator?: ComparisonOperator;
    },
  ): Alarm {
    const alarm = new Alarm(scope, id, {
      metric: options.metric,
      threshold: options.threshold,
      comparisonOperator: options.comparisonOperator ?? ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    if (this.alarmTopic) {
      alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    }
    this.createdAlarms.push(alarm);
    return alarm;
  }
}

function graph(title: string, metrics: IMetric[]): GraphWidget {
  return new GraphWidget({ title, left: metrics, width: GRAPH_WIDTH, height: 6 });
}

function alarmStatus(name: string, alarms: Alarm[]): AlarmStatusWidget {
  return new AlarmStatusWidget({ title: `${name} alarms`, alarms, width: GRAPH_WIDTH, height: 6 });
}
