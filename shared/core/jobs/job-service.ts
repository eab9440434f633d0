import { randomUUID } from "node:crypto";
import type { ErrorDetail } from "#shared/domain/errors";
import {
  ConcurrentUpdateError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "#shared/domain/errors";
import {
  defaultFailurePolicy,
  JobCounter,
  type JobRecord,
  type JobStatistics,
  type JobStepPlan,
  type JobStepState,
  type JobView,
  jobCounts,
  jobStatisticsFromCounters,
  MAX_JOB_PLAN_BYTES,
  type SubmitJobRequest,
  type SubmitJobResponse,
} from "#shared/domain/job";
import { jsonByteLength, MAX_PAYLOAD_BYTES, type TaskInput } from "#shared/domain/task";
import { JobAlreadyFinishedError } from "./errors.ts";
import { type JobDeps, JobSteps } from "./job-steps.ts";
import { stepDeadline } from "./policies.ts";

const MAX_CANCEL_ROUNDS = 5;

/**
 * The job use cases behind `/jobs`: submit a job (fan-out), read it, cancel it, and the job
 * statistics. Requests arrive validated by the HTTP schemas; what only the service knows (which
 * reducers exist, stored sizes) is checked here, before anything is written.
 *
 * @example
 * const jobs = new JobService({ jobs: jobStore, tasks: taskStore, supervisor, publisher: bus, reducers });
 * const { jobId, taskIds } = await jobs.submit({
 *   tasks: [{ taskType: "echo", input: { value: 1 } }, { taskType: "echo", input: { value: 2 } }],
 *   aggregation: { policy: "all", reducer: "collect" },
 * });
 */
export class JobService {
  private readonly deps: JobDeps;
  private readonly runner: JobSteps;
  private readonly newId: () => string;

  constructor(deps: JobDeps) {
    this.deps = deps;
    this.runner = new JobSteps(deps);
    this.newId = deps.newId ?? randomUUID;
  }

  async submit(request: SubmitJobRequest): Promise<SubmitJobResponse> {
    const pipeline = "steps" in request;
    const steps: JobStepPlan[] = (pipeline ? request.steps : [request]).map((step) => ({
      tasks: step.tasks,
      aggregation: step.aggregation,
      failurePolicy: step.failurePolicy ?? defaultFailurePolicy(step.aggregation.policy),
    }));
    this.check(steps, pipeline);
    const [first, ...plan] = steps;
    if (!first || !Array.isArray(first.tasks)) {
      throw new ValidationError("the first step needs a list of tasks", [
        { path: "tasks", message: "required" },
      ]);
    }
    const inputs = first.tasks as readonly TaskInput[];

    const now = this.runner.clock.now();
    const createdAt = now.toISOString();
    const deadlineAt = stepDeadline(first, now);
    const step: JobStepState = {
      status: "working",
      total: inputs.length,
      aggregation: first.aggregation,
      failurePolicy: first.failurePolicy,
      startedAt: createdAt,
      ...(deadlineAt !== undefined ? { deadlineAt } : {}),
      tasksSubmitted: false,
      counts: { completed: 0, failed: 0, canceled: 0 },
    };
    const job: JobRecord = {
      jobId: this.newId(),
      kind: pipeline ? "pipeline" : "tasks",
      status: "working",
      version: 1,
      createdAt,
      updatedAt: createdAt,
      currentStep: 0,
      stepCount: steps.length,
      steps: [step],
      // Due only if the submission below never completes: then advanceDueJobs fails the job.
      dueAt: this.runner.submissionDue(now),
      eventPublished: false,
    };
    // The job exists before its tasks do, so not even the first task's outcome can miss it.
    await this.deps.jobs.create({ job, plan, counters: { [JobCounter.submitted]: 1 } });
    let taskIds: string[];
    try {
      taskIds = await this.runner.submitStep(job, 0, inputs, false);
    } catch (error) {
      await this.runner
        .tryFinish(job, "failed", {
          error: { code: "submission_failed", message: "the job's tasks could not be submitted" },
        })
        .catch(() => undefined);
      throw error;
    }
    return { jobId: job.jobId, taskIds };
  }

  async get(jobId: string): Promise<JobView> {
    const job = await this.deps.jobs.get(jobId);
    if (!job) throw new NotFoundError(`job ${jobId} not found`);
    return this.view(job);
  }

  /**
   * Ends a working job as `canceled` and cancels its remaining tasks (a task that finished meanwhile
   * is left as it is). A job that already ended is a 409.
   */
  async cancel(jobId: string): Promise<JobView> {
    for (let round = 0; round < MAX_CANCEL_ROUNDS; round++) {
      const job = await this.deps.jobs.get(jobId);
      if (!job) throw new NotFoundError(`job ${jobId} not found`);
      if (job.status !== "working") throw new JobAlreadyFinishedError(jobId, job.status);
      const write = await this.runner.tryFinish(job, "canceled", {
        error: { code: "canceled", message: "the job was canceled" },
      });
      if (write.ok) return this.view(write.job);
    }
    throw new ConcurrentUpdateError(`job ${jobId} changed while it was being canceled; try again`);
  }

  async statistics(): Promise<JobStatistics> {
    return jobStatisticsFromCounters(await this.deps.jobs.readCounters());
  }

  private async view(job: JobRecord): Promise<JobView> {
    const [taskIds, result] = await Promise.all([
      this.deps.jobs.readTaskIds(job.jobId),
      job.status === "completed" ? this.deps.jobs.readStepResult(job.jobId, job.currentStep) : undefined,
    ]);
    const counts = jobCounts(job);
    return {
      jobId: job.jobId,
      status: job.status,
      ...counts,
      ...(result !== undefined ? { result } : {}),
      ...(job.error !== undefined ? { error: job.error } : {}),
      createdAt: job.createdAt,
      ...(job.completedAt !== undefined ? { completedAt: job.completedAt } : {}),
      taskIds: taskIds.flat(),
      ...(job.kind === "pipeline"
        ? {
            currentStep: job.currentStep,
            steps: job.steps.map((step, index) => ({
              status: step.status,
              total: step.total,
              ...step.counts,
              taskIds: [...(taskIds[index] ?? [])],
              startedAt: step.startedAt,
              ...(step.deadlineAt !== undefined ? { deadlineAt: step.deadlineAt } : {}),
              ...(step.completedAt !== undefined ? { completedAt: step.completedAt } : {}),
            })),
          }
        : {}),
    };
  }

  /** What the request schema cannot know: registered reducers, and what the store can hold. */
  private check(steps: readonly JobStepPlan[], pipeline: boolean): void {
    const at = (index: number, path: string) => (pipeline ? `steps.${index}.${path}` : path);
    const unknown: ErrorDetail[] = steps.flatMap((step, index) =>
      this.deps.reducers.has(step.aggregation.reducer)
        ? []
        : [
            {
              path: at(index, "aggregation.reducer"),
              message: `no reducer named "${step.aggregation.reducer}"; known: ${this.deps.reducers.names().join(", ")}`,
            },
          ],
    );
    if (unknown.length > 0) throw new ValidationError("unknown reducer", unknown);
    steps.forEach((step, index) => {
      if (!Array.isArray(step.tasks)) return;
      (step.tasks as readonly TaskInput[]).forEach((task, taskIndex) => {
        const bytes = jsonByteLength(task.input);
        if (bytes > MAX_PAYLOAD_BYTES) {
          throw new PayloadTooLargeError(
            `${at(index, `tasks.${taskIndex}.input`)} is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`,
          );
        }
      });
    });
    const planBytes = jsonByteLength(steps.slice(1));
    if (planBytes > MAX_JOB_PLAN_BYTES) {
      throw new PayloadTooLargeError(
        `the steps after the first take ${planBytes} bytes; a pipeline may keep at most ${MAX_JOB_PLAN_BYTES}`,
      );
    }
  }
}
