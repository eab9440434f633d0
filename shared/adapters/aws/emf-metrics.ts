import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { type BusEvent, DetailType } from "#shared/domain/events";
import type { EventPublisher } from "#shared/ports/event-bus";

/** The task events that are counted, and the metric each one counts. */
const TASK_COUNTS: Readonly<Record<string, string>> = {
  [DetailType.TaskCompleted]: "TasksCompleted",
  [DetailType.TaskFailed]: "TasksFailed",
  [DetailType.TaskRetrying]: "TasksRetried",
};

/** `Job Completed` by the job's final status. */
const JOB_COUNTS: Readonly<Record<string, string>> = {
  completed: "JobsCompleted",
  failed: "JobsFailed",
  canceled: "JobsCanceled",
};

interface Tally {
  readonly dimensions: Readonly<Record<string, string>>;
  readonly counts: Map<string, number>;
  readonly durationsMs: number[];
}

export interface EmfMetricsOptions {
  /** CloudWatch namespace. @default POWERTOOLS_METRICS_NAMESPACE, else "Agentry" */
  readonly namespace?: string;
  /** The `service` dimension. @default POWERTOOLS_SERVICE_NAME */
  readonly serviceName?: string;
}

/**
 * Task and job metrics in CloudWatch's Embedded Metric Format, written to the function's log: no
 * AWS call, no latency. Counts the lifecycle events the task stream derives (`count`, in the stream
 * consumer, functions/aggregator.ts) and the job events the platform publishes (`counting`):
 * `TasksCompleted`, `TasksFailed`, `TasksRetried` and `TaskDuration` (the handler's execution time)
 * per `capability` and `taskType`, and `JobsCompleted` / `JobsFailed` / `JobsCanceled`. Wrap the
 * publisher the platform is built with, and `flush()` at the end of each invocation (one EMF document
 * per capability and task type seen). A stream batch delivered again is counted again (at-least-once,
 * as the stream is).
 *
 * @example
 * const metrics = new EmfMetrics();
 * const platform = createPlatform({ ...adapters, eventPublisher: metrics.counting(adapters.eventPublisher) }, config, logger);
 * // … after each invocation:
 * metrics.flush();
 */
export class EmfMetrics {
  private readonly namespace: string;
  private readonly serviceName: string | undefined;
  private readonly tallies = new Map<string, Tally>();

  constructor(options: EmfMetricsOptions = {}) {
    this.namespace = options.namespace ?? process.env.POWERTOOLS_METRICS_NAMESPACE ?? "Agentry";
    this.serviceName = options.serviceName ?? process.env.POWERTOOLS_SERVICE_NAME;
  }

  /** A publisher that publishes through `publisher`, then counts what was published. */
  counting(publisher: EventPublisher): EventPublisher {
    return {
      publish: async (events) => {
        await publisher.publish(events);
        for (const event of events) this.record(event);
      },
    };
  }

  /** Counts events that were not published through {@link counting} (the task stream's). */
  count(events: readonly BusEvent[]): void {
    for (const event of events) this.record(event);
  }

  /** Writes what was counted since the last flush, and starts over. */
  flush(): void {
    for (const tally of this.tallies.values()) {
      const metrics = new Metrics({
        namespace: this.namespace,
        ...(this.serviceName !== undefined ? { serviceName: this.serviceName } : {}),
        defaultDimensions: { ...tally.dimensions },
      });
      for (const [name, count] of tally.counts) metrics.addMetric(name, MetricUnit.Count, count);
      for (const ms of tally.durationsMs) metrics.addMetric("TaskDuration", MetricUnit.Milliseconds, ms);
      metrics.publishStoredMetrics();
    }
    this.tallies.clear();
  }

  private record(event: BusEvent): void {
    const detail = event.detail as Record<string, unknown>;
    const type = event["detail-type"];
    const taskMetric = TASK_COUNTS[type];
    if (taskMetric !== undefined) {
      const tally = this.tally({
        capability: String(detail.requiredCapability ?? "unknown"),
        taskType: String(detail.taskType ?? "unknown"),
      });
      tally.counts.set(taskMetric, (tally.counts.get(taskMetric) ?? 0) + 1);
      if (typeof detail.executionTimeMs === "number" && type !== DetailType.TaskRetrying) {
        tally.durationsMs.push(detail.executionTimeMs);
      }
      return;
    }
    const jobMetric = type === DetailType.JobCompleted ? JOB_COUNTS[String(detail.status)] : undefined;
    if (jobMetric !== undefined) {
      const tally = this.tally({});
      tally.counts.set(jobMetric, (tally.counts.get(jobMetric) ?? 0) + 1);
    }
  }

  private tally(dimensions: Readonly<Record<string, string>>): Tally {
    const key = JSON.stringify(dimensions);
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = { dimensions, counts: new Map(), durationsMs: [] };
      this.tallies.set(key, tally);
    }
    return tally;
  }
}
