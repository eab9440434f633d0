import type {
  JobError,
  JobRecord,
  JobResult,
  JobStatus,
  JobStepPlan,
  JobStepState,
  TaskOutcome,
} from "#shared/domain/job";
import type { CounterDeltas } from "#shared/domain/statistics";

export interface CreateJobRequest {
  /** The new job: version 1, `working`, its first step started with `tasksSubmitted: false`. */
  readonly job: JobRecord;
  /** The steps after the first, kept until each starts. */
  readonly plan: readonly JobStepPlan[];
  /** Counter deltas applied atomically with the write (job statistics). */
  readonly counters: CounterDeltas;
}

export type RecordOutcomeResult =
  /** The outcome was new: it is stored and its step's counts moved by one. `job` is read after the write. */
  | { readonly recorded: true; readonly job: JobRecord }
  /**
   * Nothing was written: the task's outcome was recorded before (`job` is the current job), or the job
   * does not exist (`job` is undefined).
   */
  | { readonly recorded: false; readonly job: JobRecord | undefined };

export interface AttachTasksRequest {
  readonly jobId: string;
  readonly step: number;
  /** The step's tasks, in submission order. */
  readonly taskIds: readonly string[];
  readonly updatedAt: string;
  /** The job's next due time once the step is submitted (its deadline), or none. */
  readonly dueAt?: string;
}

export type AttachTasksOutcome =
  /** The ids are stored; the job is still working on that step. */
  | { readonly attached: true; readonly job: JobRecord }
  /**
   * The ids are stored, but the job finished or moved on meanwhile (or does not exist): whoever
   * attached them must cancel the tasks that are still running.
   */
  | { readonly attached: false; readonly job: JobRecord | undefined };

export interface RescheduleJobRequest {
  readonly jobId: string;
  /** The step the caller looked at: nothing is written once the job moved on from it or ended. */
  readonly step: number;
  /** When `advanceDueJobs` should look at the job next. */
  readonly dueAt: string;
}

/** Fields common to the structural writes, each guarded by the job's version and `working` status. */
interface JobWrite {
  readonly jobId: string;
  /** The write happens only if the stored version equals this (and the job is `working`). */
  readonly expectedVersion: number;
  /** Every started step as it should be stored; `counts` are ignored (the store keeps them). */
  readonly steps: readonly JobStepState[];
  readonly updatedAt: string;
  /** The job's next due time, or none. */
  readonly dueAt?: string;
  /** The result of the step this write completes, stored with the write. */
  readonly stepResult?: { readonly step: number; readonly result: JobResult };
}

/** The current step completed: store its result and start the next one. */
export interface AdvanceJobRequest extends JobWrite {
  readonly currentStep: number;
}

/** The job ends. */
export interface FinishJobRequest extends JobWrite {
  readonly status: Exclude<JobStatus, "working">;
  readonly completedAt: string;
  readonly error?: JobError;
  /** Counter deltas applied atomically with the write (job statistics). */
  readonly counters: CounterDeltas;
}

export type JobWriteOutcome =
  | { readonly ok: true; readonly job: JobRecord }
  /** The guard failed: `current` is the stored job (undefined if there is none). Nothing was written. */
  | { readonly ok: false; readonly current: JobRecord | undefined };

/**
 * Durable jobs. The job record changes in two ways that never contend for one guard:
 *
 * - **Outcomes** (`recordTaskOutcome`): each task's terminal outcome is stored once, first write
 *   wins per (job, task), and the step's counts move only with that first write, atomically. A
 *   duplicate or replayed event writes nothing, so progress and statistics cannot drift.
 * - **Structural writes** (`attachTasks`, `advance`, `finish`): guarded by the job's version and
 *   status, so exactly one aggregator (or canceler) completes a step or ends the job.
 *
 * @example
 * const { recorded, job } = await jobs.recordTaskOutcome(jobId, {
 *   taskId, step: 0, index: 3, status: "completed", taskVersion: 4, output: { words: 4 }, recordedAt: now,
 * });
 * if (job?.status === "working" && job.steps[0]?.counts.completed === job.steps[0]?.total) {
 *   const outcome = await jobs.finish({ jobId, expectedVersion: job.version, status: "completed", ... });
 *   if (!outcome.ok) return; // somebody else finished it first
 * }
 */
export interface JobStore {
  /** Writes a new job and its plan. Throws if the job id exists. */
  create(request: CreateJobRequest): Promise<void>;
  /** The job record (without task ids and results), or undefined. Strongly consistent. */
  get(jobId: string): Promise<JobRecord | undefined>;
  /** The stored later steps of a pipeline (empty for a plain job). */
  readPlan(jobId: string): Promise<readonly JobStepPlan[]>;
  /** Task ids per started step (`[]` for a step whose tasks are not attached yet). */
  readTaskIds(jobId: string): Promise<readonly (readonly string[])[]>;
  /** The stored result of a completed step. */
  readStepResult(jobId: string, step: number): Promise<JobResult | undefined>;
  /** First write wins per (jobId, taskId); counts move only with a first write. */
  recordTaskOutcome(jobId: string, outcome: TaskOutcome): Promise<RecordOutcomeResult>;
  /** Every recorded outcome of one step, in no particular order. */
  listOutcomes(jobId: string, step: number): Promise<readonly TaskOutcome[]>;
  /** Stores a step's task ids and marks it submitted (the latter only while the job works on that step). */
  attachTasks(request: AttachTasksRequest): Promise<AttachTasksOutcome>;
  advance(request: AdvanceJobRequest): Promise<JobWriteOutcome>;
  /**
   * Moves the due time of a job still working on `request.step` with its tasks submitted. Not a
   * structural write: the version stays, so it never makes a concurrent advance or finish lose.
   * Returns whether it wrote.
   */
  reschedule(request: RescheduleJobRequest): Promise<boolean>;
  finish(request: FinishJobRequest): Promise<JobWriteOutcome>;
  /** Confirms the `Job Completed` event of a finished job: the job is no longer due for it. */
  markEventPublished(jobId: string): Promise<void>;
  /** Jobs whose `dueAt` is at or before `now` (ISO), oldest first. */
  listDue(now: string, limit: number): Promise<readonly JobRecord[]>;
  /** The sum of all counter deltas ever applied. */
  readCounters(): Promise<Record<string, number>>;
}
