import { type BusEvent, EVENT_SOURCE, TERMINAL_TASK_DETAIL_TYPES } from "#shared/domain/events";
import {
  JOB_INDEX_METADATA_KEY,
  JOB_STEP_METADATA_KEY,
  type JobError,
  type JobRecord,
  type TaskOutcome,
  type TaskOutcomeStatus,
} from "#shared/domain/job";
import { isTerminal } from "#shared/domain/lifecycle";
import type { Task } from "#shared/domain/task";
import type { JobWriteOutcome } from "#shared/ports/job-store";
import { forEachLimited } from "../concurrency.ts";
import { JobStepError } from "./errors.ts";
import { type JobDeps, JobSteps } from "./job-steps.ts";
import { decideStep } from "./policies.ts";

export type TaskEventReport =
  | { readonly kind: "recorded" | "duplicate"; readonly jobId: string; readonly taskId: string }
  | { readonly kind: "ignored"; readonly reason: string };

export interface DueJobsReport {
  /** Jobs looked at. */
  readonly due: number;
  /** Jobs whose step or job was ended by a deadline or an interrupted submission. */
  readonly advanced: number;
  /** Pipeline steps whose interrupted submission was resumed. */
  readonly resubmitted: number;
  /** `Job Completed` events published again. */
  readonly republished: number;
  /** Task outcomes recorded from the task records because their events had not been aggregated. */
  readonly reconciled: number;
}

const MAX_DECISION_ROUNDS = 8;
/** How many failed tasks a job's error names (the result's failedTasks lists them all). */
const NAMED_FAILURES = 5;
/** Task reads in flight at once while a job is reconciled. */
const RECONCILE_CONCURRENCY = 16;

/**
 * Fan-in: consumes terminal task events, records each task's outcome once per job, and advances the
 * job when its step's policy says so — reduces the step, starts the next pipeline step or ends the
 * job, drops the tasks it no longer needs and emits `Job Completed`. Idempotent under duplicated and
 * reordered events (F12, docs/reliability.md): the task record is read for the truth, the outcome write is
 * first-write-wins, and every job-level write is guarded by the job's version.
 *
 * @example
 * const aggregator = new Aggregator({ jobs, tasks: store, supervisor, publisher: bus, reducers });
 * const stream = new TaskStream({ store, jobs: aggregator }); // job tasks' events, from the changes
 * setInterval(() => aggregator.advanceDueJobs(new Date()), 1_000);
 */
export class Aggregator {
  private readonly runner: JobSteps;
  private readonly deps: JobDeps;

  constructor(deps: JobDeps) {
    this.deps = deps;
    this.runner = new JobSteps(deps);
  }

  async onTaskEvent(event: BusEvent): Promise<TaskEventReport> {
    if (event.source !== EVENT_SOURCE || !TERMINAL_TASK_DETAIL_TYPES.includes(event["detail-type"])) {
      return { kind: "ignored", reason: "not a terminal task event" };
    }
    const { jobId, taskId } = event.detail as { jobId?: unknown; taskId?: unknown };
    if (typeof jobId !== "string" || typeof taskId !== "string") {
      return { kind: "ignored", reason: "the task belongs to no job" };
    }
    // The event only points at the task; its record says how it ended (ADR 0001, rule 1). A replayed
    // or reordered event therefore records exactly what a timely one would.
    const task = await this.deps.tasks.get(taskId);
    if (!task || task.jobId !== jobId) return { kind: "ignored", reason: "the task is unknown to this job" };
    const recording = await this.record(jobId, task);
    if (recording.kind === "ignored") return recording;
    // A duplicate is evaluated too: if the handler of the first delivery died after recording, this
    // is what finishes its work. Every write below is guarded, so nothing happens twice.
    const now = this.runner.clock.now();
    if (this.deadlinePassed(recording.job, now)) {
      // Events reach the aggregator after the write that caused them (the table's stream lags it):
      // a task of this step that finished before the deadline may still be on its way. Read the
      // step's unrecorded tasks before deciding, as the due-job sweep does at the deadline.
      await this.reconcile(recording.job, now);
    } else {
      await this.advance(recording.job, now);
    }
    return { kind: recording.recorded ? "recorded" : "duplicate", jobId, taskId };
  }

  /**
   * What events cannot do: ends deadline steps whose deadline passed, resumes a pipeline step whose
   * submission was interrupted (or fails a job whose first submission was), publishes `Job Completed`
   * events nobody confirmed, and reconciles a working step at least every `reconcileSeconds`: a task
   * outcome whose event was lost, or whose aggregation failed, is read from the task and recorded, so
   * no job waits forever on an event. The local runtime calls it on its sweep timer, the sweeper
   * Lambda every minute.
   */
  async advanceDueJobs(now: Date, limit = 100): Promise<DueJobsReport> {
    const due = await this.deps.jobs.listDue(now.toISOString(), limit);
    let advanced = 0;
    let resubmitted = 0;
    let republished = 0;
    let reconciled = 0;
    for (const listed of due) {
      try {
        const job = await this.deps.jobs.get(listed.jobId);
        if (!job || job.dueAt === undefined || job.dueAt > now.toISOString()) continue;
        if (job.status !== "working") {
          if (!job.eventPublished) {
            await this.runner.afterFinish(job);
            republished++;
          }
          continue;
        }
        const step = job.steps[job.currentStep];
        if (step && !step.tasksSubmitted) {
          const resumed = await this.resumeSubmission(job);
          if (resumed === "resubmitted") resubmitted++;
          if (resumed === "failed") advanced++;
          continue;
        }
        // Outcomes first, so that a deadline or a failure policy decides on every task that finished.
        const reconciliation = await this.reconcile(job, now);
        reconciled += reconciliation.recorded;
        if (reconciliation.advanced) advanced++;
      } catch (error) {
        this.deps.logger?.warn("could not advance a due job", {
          jobId: listed.jobId,
          error,
        });
      }
    }
    return { due: due.length, advanced, resubmitted, republished, reconciled };
  }

  private deadlinePassed(job: JobRecord, now: Date): boolean {
    const deadlineAt = job.status === "working" ? job.steps[job.currentStep]?.deadlineAt : undefined;
    return deadlineAt !== undefined && now.getTime() >= Date.parse(deadlineAt);
  }

  /** Records how a finished task of the job ended, from its record (first write wins per task). */
  private async record(
    jobId: string,
    task: Task,
  ): Promise<{ kind: "ignored"; reason: string } | { kind: "record"; recorded: boolean; job: JobRecord }> {
    if (!isTerminal(task.status)) return { kind: "ignored", reason: `the task is ${task.status}` };
    const step = positionOf(task.metadata[JOB_STEP_METADATA_KEY]);
    const index = positionOf(task.metadata[JOB_INDEX_METADATA_KEY]);
    if (step === undefined || index === undefined)
      return { kind: "ignored", reason: "the task has no job position" };
    const outcome: TaskOutcome = {
      taskId: task.taskId,
      step,
      index,
      status: task.status as TaskOutcomeStatus,
      taskVersion: task.version,
      ...(task.status === "completed" ? { output: task.result?.output ?? null } : {}),
      ...(task.error !== undefined ? { error: task.error } : {}),
      recordedAt: this.runner.clock.now().toISOString(),
    };
    const { recorded, job } = await this.deps.jobs.recordTaskOutcome(jobId, outcome);
    return job ? { kind: "record", recorded, job } : { kind: "ignored", reason: "unknown job" };
  }

  /**
   * A working step at its deadline or its next check: reads the tasks that have no recorded outcome,
   * records those that finished (their events were lost or are still on the way, or their aggregation
   * failed before it recorded), decides the step, and schedules the next check if it still waits.
   */
  private async reconcile(job: JobRecord, now: Date): Promise<{ recorded: number; advanced: boolean }> {
    const step = job.currentStep;
    const [taskIds, outcomes] = await Promise.all([
      this.deps.jobs.readTaskIds(job.jobId),
      this.deps.jobs.listOutcomes(job.jobId, step),
    ]);
    const known = new Set(outcomes.map((o) => o.taskId));
    const unrecorded = (taskIds[step] ?? []).filter((taskId) => !known.has(taskId));
    let recorded = 0;
    await forEachLimited(unrecorded, RECONCILE_CONCURRENCY, async (taskId) => {
      const task = await this.deps.tasks.get(taskId);
      if (!task || task.jobId !== job.jobId) return;
      const recording = await this.record(job.jobId, task);
      if (recording.kind === "record" && recording.recorded) recorded++;
    });
    if (recorded > 0) {
      this.deps.logger?.warn("recorded task outcomes whose events had not reached the aggregator", {
        jobId: job.jobId,
        step,
        recorded,
      });
    }
    const current = await this.deps.jobs.get(job.jobId);
    if (current?.status !== "working") return { recorded, advanced: false };
    if (await this.advance(current, now)) return { recorded, advanced: true };
    await this.deps.jobs.reschedule({
      jobId: job.jobId,
      step,
      dueAt: this.runner.nextCheck(current.steps[step], now),
    });
    return { recorded, advanced: false };
  }

  /**
   * Decides the current step and acts on it, again on the newer job whenever a guarded write loses a
   * race. Returns whether this call changed the job's course.
   */
  private async advance(initial: JobRecord, now: Date): Promise<boolean> {
    let job: JobRecord | undefined = initial;
    for (let round = 0; round < MAX_DECISION_ROUNDS && job?.status === "working"; round++) {
      const step = job.steps[job.currentStep];
      if (!step) return false;
      const decision = decideStep(step, now);
      if (decision.kind === "wait") return false;
      const write: JobWriteOutcome =
        decision.kind === "fail"
          ? await this.runner.tryFinish(job, "failed", {
              error: await this.nameFailures(job, decision.error),
            })
          : await this.completeStep(job, decision.take);
      if (write.ok) return true;
      job = write.current;
    }
    return false;
  }

  /**
   * A step that failed because of its tasks names them in the job's error (the first few, with each
   * one's own error), so whoever reads the job knows which task to look at.
   */
  private async nameFailures(job: JobRecord, error: JobError): Promise<JobError> {
    if (error.code !== "task_failed" && error.code !== "too_many_failures") return error;
    const failures = (await this.deps.jobs.listOutcomes(job.jobId, job.currentStep))
      .filter((o) => o.status !== "completed")
      .sort((a, b) => a.index - b.index);
    if (failures.length === 0) return error;
    const named = failures.slice(0, NAMED_FAILURES).map((o) => {
      const cause = o.error === undefined ? "" : `: ${o.error.code}: ${o.error.message.slice(0, 200)}`;
      return `task ${o.taskId} (index ${o.index}) ${o.status}${cause}`;
    });
    const more = failures.length > NAMED_FAILURES ? `; and ${failures.length - NAMED_FAILURES} more` : "";
    return { ...error, message: `${error.message} — ${named.join("; ")}${more}` };
  }

  private async completeStep(job: JobRecord, take: number | undefined): Promise<JobWriteOutcome> {
    const step = job.currentStep;
    try {
      const result = await this.runner.reduceStep(job, step, take);
      if (step + 1 >= job.stepCount) return await this.runner.tryFinish(job, "completed", { result });
      const now = this.runner.clock.now();
      const { inputs, state: next } = await this.runner.buildStep(job, step + 1, result, now);
      const completedAt = now.toISOString();
      const write = await this.deps.jobs.advance({
        jobId: job.jobId,
        expectedVersion: job.version,
        currentStep: step + 1,
        steps: [
          ...job.steps.map((s, i) => (i === step ? { ...s, status: "completed" as const, completedAt } : s)),
          next,
        ],
        updatedAt: completedAt,
        dueAt: this.runner.submissionDue(now),
        stepResult: { step, result },
      });
      if (write.ok) {
        await this.runner.cancelUnfinished(write.job, step);
        await this.runner.submitStep(write.job, step + 1, inputs, true);
      }
      return write;
    } catch (error) {
      if (!(error instanceof JobStepError)) throw error;
      return this.runner.tryFinish(job, "failed", { error: { code: error.code, message: error.message } });
    }
  }

  /** A step stayed unsubmitted past its grace: resubmit a pipeline step, fail a job's first step. */
  private async resumeSubmission(job: JobRecord): Promise<"resubmitted" | "failed" | "skipped"> {
    const step = job.currentStep;
    let error: { code: string; message: string };
    if (step === 0) {
      // The first step's tasks are stored nowhere but in the request that was interrupted.
      error = { code: "submission_interrupted", message: "the job's tasks could not all be submitted" };
    } else {
      const previous = await this.deps.jobs.readStepResult(job.jobId, step - 1);
      if (!previous) return "skipped";
      try {
        const { inputs } = await this.runner.buildStep(job, step, previous, this.runner.clock.now());
        await this.runner.submitStep(job, step, inputs, true);
        return "resubmitted";
      } catch (caught) {
        if (!(caught instanceof JobStepError)) throw caught;
        error = { code: caught.code, message: caught.message };
      }
    }
    return (await this.runner.tryFinish(job, "failed", { error })).ok ? "failed" : "skipped";
  }
}

function positionOf(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,4}$/.test(value) ? Number(value) : undefined;
}
