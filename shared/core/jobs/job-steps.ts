import { AlreadyTerminalError, NotFoundError } from "#shared/domain/errors";
import { type BusEvent, DetailType, EVENT_SOURCE } from "#shared/domain/events";
import {
  JOB_INDEX_METADATA_KEY,
  JOB_STEP_METADATA_KEY,
  JobCounter,
  type JobError,
  type JobRecord,
  type JobResult,
  type JobStatus,
  type JobStepState,
  jobCounts,
  MAX_JOB_RESULT_BYTES,
  type TaskOutcome,
} from "#shared/domain/job";
import { jsonByteLength, type TaskInput } from "#shared/domain/task";
import type { Clock } from "#shared/ports/clock";
import { systemClock } from "#shared/ports/clock";
import type { EventPublisher } from "#shared/ports/event-bus";
import type { JobStore, JobWriteOutcome } from "#shared/ports/job-store";
import type { Logger } from "#shared/ports/logger";
import type { TaskStore } from "#shared/ports/task-store";
import { forEachLimited } from "../concurrency.ts";
import type { Supervisor } from "../supervisor.ts";
import { JobStepError } from "./errors.ts";
import { buildStepInputs, needsPreviousTasks, type PreviousTask } from "./pipeline.ts";
import type { ReducerRegistry } from "./reducers.ts";

/** The supervisor use cases a job needs: submit its tasks, cancel the ones it no longer wants. */
export type JobTaskSupervisor = Pick<Supervisor, "submit" | "cancel">;

/** What the job service and the aggregator are built from (one set, shared by both). */
export interface JobDeps {
  readonly jobs: JobStore;
  /** Reads task records: their outputs, metadata and inputs. */
  readonly tasks: Pick<TaskStore, "get">;
  readonly supervisor: JobTaskSupervisor;
  /** Where `Job Completed` goes. */
  readonly publisher: EventPublisher;
  readonly reducers: ReducerRegistry;
  readonly clock?: Clock;
  readonly logger?: Pick<Logger, "warn">;
  readonly newId?: () => string;
  /**
   * How long a step's tasks may take to be submitted before `advanceDueJobs` takes over (resubmits a
   * pipeline step, or fails a job whose first submission was interrupted).
   * @default 300
   */
  readonly submissionGraceSeconds?: number;
  /**
   * How often, at the latest, `advanceDueJobs` looks at a job working on a submitted step: it records
   * the outcomes of finished tasks whose events never reached the aggregator (or whose aggregation
   * failed) and decides the step again. `PlatformConfig.jobReconcileSeconds` on AWS.
   * @default 300
   */
  readonly reconcileSeconds?: number;
  /** How long after a job ends `advanceDueJobs` publishes its `Job Completed` if nobody confirmed it. @default 30 */
  readonly publishGraceSeconds?: number;
  /** Task cancels in flight at once when a job drops its remaining tasks. @default 16 */
  readonly cancelConcurrency?: number;
}

/**
 * The steps every job path shares: submitting a step's tasks, reducing a step, ending the job,
 * dropping tasks the job no longer needs and announcing `Job Completed`. The job service and the
 * aggregator decide *when*; this does it, with every write guarded so that racing callers do each
 * thing once.
 */
export class JobSteps {
  readonly jobs: JobStore;
  readonly clock: Clock;
  private readonly deps: JobDeps;

  constructor(deps: JobDeps) {
    this.deps = deps;
    this.jobs = deps.jobs;
    this.clock = deps.clock ?? systemClock;
  }

  /** Seconds from now, as ISO. */
  later(seconds: number, from: Date = this.clock.now()): string {
    return new Date(from.getTime() + seconds * 1000).toISOString();
  }

  submissionDue(from?: Date): string {
    return this.later(this.deps.submissionGraceSeconds ?? 300, from);
  }

  /**
   * When a step whose tasks are submitted must be looked at next: its deadline, or the next
   * reconciliation, whichever comes first.
   */
  nextCheck(step: JobStepState | undefined, from: Date = this.clock.now()): string {
    const check = this.later(this.deps.reconcileSeconds ?? 300, from);
    return step?.deadlineAt !== undefined && step.deadlineAt < check ? step.deadlineAt : check;
  }

  /**
   * Submits a step's tasks as part of the job, tagged with their step and position, then attaches
   * their ids. `idempotent` keys each task by job, step and position, so resubmitting an interrupted
   * step returns the tasks already created. If the job finished or moved on meanwhile, the tasks are
   * canceled at once.
   */
  async submitStep(
    job: JobRecord,
    step: number,
    inputs: readonly TaskInput[],
    idempotent: boolean,
  ): Promise<string[]> {
    const tagged = inputs.map((input, index) => ({
      ...input,
      metadata: {
        ...input.metadata,
        [JOB_STEP_METADATA_KEY]: String(step),
        [JOB_INDEX_METADATA_KEY]: String(index),
      },
      ...(idempotent ? { idempotencyKey: `job:${job.jobId}:${step}:${index}` } : {}),
    }));
    const submitted = await this.deps.supervisor.submit(tagged, { jobId: job.jobId });
    const taskIds = submitted.map((t) => t.taskId);
    const now = this.clock.now();
    const attach = await this.jobs.attachTasks({
      jobId: job.jobId,
      step,
      taskIds,
      updatedAt: now.toISOString(),
      dueAt: this.nextCheck(job.steps[step], now),
    });
    if (!attach.attached) await this.cancelTasks(taskIds);
    return taskIds;
  }

  /**
   * Reduces a step's successful outputs (all of them, or the first `take` recorded) in submission
   * order, and lists what did not succeed.
   */
  async reduceStep(job: JobRecord, step: number, take?: number): Promise<JobResult> {
    const outcomes = await this.jobs.listOutcomes(job.jobId, step);
    const byRecording = (a: TaskOutcome, b: TaskOutcome) =>
      a.recordedAt < b.recordedAt ? -1 : a.recordedAt > b.recordedAt ? 1 : a.index - b.index;
    let successes = outcomes.filter((o) => o.status === "completed");
    if (take !== undefined) successes = [...successes].sort(byRecording).slice(0, take);
    successes = [...successes].sort((a, b) => a.index - b.index);
    const state = job.steps[step];
    const outputTaskIds = successes.map((o) => o.taskId);
    const output = this.deps.reducers.reduce(
      state?.aggregation.reducer ?? "collect",
      successes.map((o) => o.output ?? null),
      { jobId: job.jobId, step, taskIds: outputTaskIds },
    );
    const result: JobResult = {
      output,
      outputTaskIds,
      failedTasks: outcomes
        .filter((o) => o.status !== "completed")
        .sort((a, b) => a.index - b.index)
        .map((o) => ({
          taskId: o.taskId,
          index: o.index,
          status: o.status as "failed" | "canceled" | "rejected",
          ...(o.error !== undefined ? { error: o.error } : {}),
        })),
    };
    const bytes = jsonByteLength(result);
    if (bytes > MAX_JOB_RESULT_BYTES) {
      throw new JobStepError(
        "result_too_large",
        `the step's result is ${bytes} bytes; the limit is ${MAX_JOB_RESULT_BYTES}`,
      );
    }
    return result;
  }

  /**
   * Step `next` of a pipeline, built from its stored plan and the previous step's result: its task
   * inputs, and its state as a step started at `now`.
   */
  async buildStep(
    job: JobRecord,
    next: number,
    previous: JobResult,
    now: Date,
  ): Promise<{ inputs: TaskInput[]; state: JobStepState }> {
    const plan = (await this.jobs.readPlan(job.jobId))[next - 1];
    if (!plan) throw new JobStepError("missing_plan", `job ${job.jobId} has no plan for step ${next}`);
    const tasks = needsPreviousTasks(plan) ? await this.previousTasks(previous) : undefined;
    const inputs = buildStepInputs(plan, { result: previous, ...(tasks ? { tasks } : {}) });
    const deadlineSeconds =
      plan.aggregation.policy === "deadline" ? plan.aggregation.deadlineSeconds : undefined;
    const state: JobStepState = {
      status: "working",
      total: inputs.length,
      aggregation: plan.aggregation,
      failurePolicy: plan.failurePolicy,
      startedAt: now.toISOString(),
      ...(deadlineSeconds !== undefined ? { deadlineAt: this.later(deadlineSeconds, now) } : {}),
      tasksSubmitted: false,
      counts: { completed: 0, failed: 0, canceled: 0 },
    };
    return { inputs, state };
  }

  /**
   * Ends the job with one guarded write (and the job statistics with it). On success, drops the current
   * step's unfinished tasks and announces `Job Completed`; a lost race writes nothing and says who won.
   */
  async tryFinish(
    job: JobRecord,
    status: Exclude<JobStatus, "working">,
    outcome: { readonly result?: JobResult; readonly error?: JobError } = {},
  ): Promise<JobWriteOutcome> {
    const now = this.clock.now();
    const completedAt = now.toISOString();
    const write = await this.jobs.finish({
      jobId: job.jobId,
      expectedVersion: job.version,
      status,
      completedAt,
      updatedAt: completedAt,
      steps: job.steps.map((step, index) =>
        index === job.currentStep ? { ...step, status, completedAt } : step,
      ),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      ...(outcome.result !== undefined
        ? { stepResult: { step: job.currentStep, result: outcome.result } }
        : {}),
      // Confirmed at once by the publish below; if that never happens, advanceDueJobs publishes it.
      dueAt: this.later(this.deps.publishGraceSeconds ?? 30, now),
      counters: { [JobCounter.finished(status)]: 1 },
    });
    if (write.ok) await this.afterFinish(write.job);
    return write;
  }

  /** Drops the current step's unfinished tasks, then publishes `Job Completed` and confirms it. */
  async afterFinish(job: JobRecord): Promise<void> {
    await this.cancelUnfinished(job, job.currentStep);
    const event = jobCompletedEvent(job);
    try {
      await this.deps.publisher.publish([event]);
      await this.jobs.markEventPublished(job.jobId);
    } catch (error) {
      this.deps.logger?.warn("Job Completed could not be published; advanceDueJobs will publish it", {
        jobId: job.jobId,
        error,
      });
    }
  }

  /** Cancels the tasks of a step that have no recorded outcome yet. */
  async cancelUnfinished(job: JobRecord, step: number): Promise<void> {
    const [taskIds, outcomes] = await Promise.all([
      this.jobs.readTaskIds(job.jobId),
      this.jobs.listOutcomes(job.jobId, step),
    ]);
    const finished = new Set(outcomes.map((o) => o.taskId));
    await this.cancelTasks((taskIds[step] ?? []).filter((id) => !finished.has(id)));
  }

  /** Cancels tasks, a few at a time; a task that already ended (or is gone) is simply skipped. */
  async cancelTasks(taskIds: readonly string[]): Promise<void> {
    await forEachLimited(taskIds, this.deps.cancelConcurrency ?? 16, async (taskId) => {
      try {
        await this.deps.supervisor.cancel(taskId);
      } catch (error) {
        if (error instanceof AlreadyTerminalError || error instanceof NotFoundError) return;
        this.deps.logger?.warn("could not cancel a job's task", {
          taskId,
          error,
        });
      }
    });
  }

  private async previousTasks(result: JobResult): Promise<PreviousTask[]> {
    return Promise.all(
      result.outputTaskIds.map(async (taskId) => {
        const task = await this.deps.tasks.get(taskId);
        if (!task || task.result?.output === undefined) {
          throw new JobStepError(
            "invalid_previous_result",
            `task ${taskId} of the previous step is no longer readable`,
          );
        }
        return {
          taskId,
          index: Number(task.metadata[JOB_INDEX_METADATA_KEY] ?? 0),
          input: task.input,
          output: task.result.output,
        };
      }),
    );
  }
}

/**
 * The `Job Completed` event of a finished job, whatever its end (`detail.status` says which). Its id is
 * stable per job, so a republished event is recognisably the same one.
 */
export function jobCompletedEvent(job: JobRecord): BusEvent {
  const counts = jobCounts(job);
  return {
    id: `job:${job.jobId}`,
    source: EVENT_SOURCE,
    "detail-type": DetailType.JobCompleted,
    time: job.completedAt ?? job.updatedAt,
    resources: [],
    detail: {
      jobId: job.jobId,
      status: job.status,
      ...counts,
      steps: job.stepCount,
      ...(job.error !== undefined ? { error: job.error } : {}),
      ...(job.completedAt !== undefined ? { completedAt: job.completedAt } : {}),
    },
  };
}
