import type { JobRecord, JobResult, JobStepPlan, StepCounts, TaskOutcome } from "#shared/domain/job";
import { outcomeBucket } from "#shared/domain/job";
import type {
  AdvanceJobRequest,
  AttachTasksOutcome,
  AttachTasksRequest,
  CreateJobRequest,
  FinishJobRequest,
  JobStore,
  JobWriteOutcome,
  RecordOutcomeResult,
  RescheduleJobRequest,
} from "#shared/ports/job-store";

interface StoredJob {
  record: JobRecord;
  readonly plan: readonly JobStepPlan[];
  readonly taskIds: Map<number, readonly string[]>;
  readonly results: Map<number, JobResult>;
  /** Outcomes by task id: the key is the first-write-wins guard. */
  readonly outcomes: Map<string, TaskOutcome>;
}

const ZERO_COUNTS: StepCounts = { completed: 0, failed: 0, canceled: 0 };

/**
 * The embedded JobStore: the same guards as the DynamoDB adapter, in process. Records are deep-copied
 * in and out so callers can never mutate stored state.
 *
 * @example
 * const jobs = new MemoryJobStore();
 * await jobs.create({ job, plan: [], counters: { "jobs:submitted": 1 } });
 * const { recorded } = await jobs.recordTaskOutcome(job.jobId, outcome);
 */
export class MemoryJobStore implements JobStore {
  private readonly jobs = new Map<string, StoredJob>();
  private readonly counters = new Map<string, number>();

  async create({ job, plan, counters }: CreateJobRequest): Promise<void> {
    if (this.jobs.has(job.jobId)) throw new Error(`job ${job.jobId} already exists`);
    this.jobs.set(job.jobId, {
      record: structuredClone({ ...job, steps: job.steps.map((s) => ({ ...s, counts: ZERO_COUNTS })) }),
      plan: structuredClone([...plan]),
      taskIds: new Map(),
      results: new Map(),
      outcomes: new Map(),
    });
    this.applyCounters(counters);
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const stored = this.jobs.get(jobId);
    return stored === undefined ? undefined : structuredClone(stored.record);
  }

  async readPlan(jobId: string): Promise<readonly JobStepPlan[]> {
    return structuredClone([...(this.jobs.get(jobId)?.plan ?? [])]);
  }

  async readTaskIds(jobId: string): Promise<readonly (readonly string[])[]> {
    const stored = this.jobs.get(jobId);
    if (!stored) return [];
    return stored.record.steps.map((_, step) => [...(stored.taskIds.get(step) ?? [])]);
  }

  async readStepResult(jobId: string, step: number): Promise<JobResult | undefined> {
    const result = this.jobs.get(jobId)?.results.get(step);
    return result === undefined ? undefined : structuredClone(result);
  }

  async recordTaskOutcome(jobId: string, outcome: TaskOutcome): Promise<RecordOutcomeResult> {
    const stored = this.jobs.get(jobId);
    if (!stored) return { recorded: false, job: undefined };
    if (stored.outcomes.has(outcome.taskId)) return { recorded: false, job: structuredClone(stored.record) };
    stored.outcomes.set(outcome.taskId, structuredClone(outcome));
    const bucket = outcomeBucket(outcome.status);
    // A step the job never started has no counts to move; the outcome is kept all the same.
    stored.record = {
      ...stored.record,
      steps: stored.record.steps.map((step, index) =>
        index === outcome.step
          ? { ...step, counts: { ...step.counts, [bucket]: step.counts[bucket] + 1 } }
          : step,
      ),
    };
    return { recorded: true, job: structuredClone(stored.record) };
  }

  async listOutcomes(jobId: string, step: number): Promise<readonly TaskOutcome[]> {
    const stored = this.jobs.get(jobId);
    return [...(stored?.outcomes.values() ?? [])]
      .filter((o) => o.step === step)
      .map((o) => structuredClone(o));
  }

  async attachTasks(request: AttachTasksRequest): Promise<AttachTasksOutcome> {
    const stored = this.jobs.get(request.jobId);
    if (!stored) return { attached: false, job: undefined };
    stored.taskIds.set(request.step, [...request.taskIds]);
    const job = stored.record;
    if (job.status !== "working" || job.currentStep !== request.step) {
      return { attached: false, job: structuredClone(job) };
    }
    stored.record = withDue(
      {
        ...job,
        version: job.version + 1,
        updatedAt: request.updatedAt,
        steps: job.steps.map((s, i) => (i === request.step ? { ...s, tasksSubmitted: true } : s)),
      },
      request.dueAt,
    );
    return { attached: true, job: structuredClone(stored.record) };
  }

  async advance(request: AdvanceJobRequest): Promise<JobWriteOutcome> {
    return this.write(request, (job) => ({ ...job, currentStep: request.currentStep }));
  }

  async reschedule(request: RescheduleJobRequest): Promise<boolean> {
    const stored = this.jobs.get(request.jobId);
    const job = stored?.record;
    if (!stored || !job || job.status !== "working" || job.currentStep !== request.step) return false;
    if (!job.steps[request.step]?.tasksSubmitted) return false;
    stored.record = withDue(job, request.dueAt);
    return true;
  }

  async finish(request: FinishJobRequest): Promise<JobWriteOutcome> {
    const outcome = await this.write(request, (job) => ({
      ...job,
      status: request.status,
      completedAt: request.completedAt,
      ...(request.error !== undefined ? { error: request.error } : {}),
    }));
    if (outcome.ok) this.applyCounters(request.counters);
    return outcome;
  }

  async markEventPublished(jobId: string): Promise<void> {
    const stored = this.jobs.get(jobId);
    if (!stored || stored.record.status === "working") return;
    stored.record = withDue({ ...stored.record, eventPublished: true }, undefined);
  }

  async listDue(now: string, limit: number): Promise<readonly JobRecord[]> {
    return [...this.jobs.values()]
      .map((s) => s.record)
      .filter((job) => job.dueAt !== undefined && job.dueAt <= now)
      .sort((a, b) => ((a.dueAt ?? "") < (b.dueAt ?? "") ? -1 : 1))
      .slice(0, limit)
      .map((job) => structuredClone(job));
  }

  async readCounters(): Promise<Record<string, number>> {
    return Object.fromEntries(this.counters);
  }

  /** Test hook: a step's task ids and outcomes exactly as kept. */
  inspect(jobId: string): { record: JobRecord; outcomes: TaskOutcome[] } | undefined {
    const stored = this.jobs.get(jobId);
    if (!stored) return undefined;
    return structuredClone({ record: stored.record, outcomes: [...stored.outcomes.values()] });
  }

  private async write(
    request: AdvanceJobRequest | FinishJobRequest,
    change: (job: JobRecord) => JobRecord,
  ): Promise<JobWriteOutcome> {
    const stored = this.jobs.get(request.jobId);
    const current = stored?.record;
    if (!stored || !current || current.status !== "working" || current.version !== request.expectedVersion) {
      return { ok: false, current: current === undefined ? undefined : structuredClone(current) };
    }
    // Counts belong to the outcomes, never to a structural write.
    const steps = request.steps.map((step, index) => ({
      ...step,
      counts: current.steps[index]?.counts ?? ZERO_COUNTS,
    }));
    stored.record = withDue(
      change({ ...current, steps, version: current.version + 1, updatedAt: request.updatedAt }),
      request.dueAt,
    );
    if (request.stepResult)
      stored.results.set(request.stepResult.step, structuredClone(request.stepResult.result));
    return { ok: true, job: structuredClone(stored.record) };
  }

  private applyCounters(deltas: Readonly<Record<string, number>>): void {
    for (const [name, delta] of Object.entries(deltas)) {
      this.counters.set(name, (this.counters.get(name) ?? 0) + delta);
    }
  }
}

function withDue(job: JobRecord, dueAt: string | undefined): JobRecord {
  const { dueAt: _previous, ...rest } = job;
  return dueAt === undefined ? rest : { ...rest, dueAt };
}
