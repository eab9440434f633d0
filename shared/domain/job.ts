import * as z from "zod";
import { type JsonValue, JsonValueSchema, StorableJsonSchema } from "./json.ts";
import { TaskErrorSchema, TaskInputSchema } from "./task.ts";

/**
 * Jobs: fan-out / fan-in over tasks, and pipelines of such steps (docs/adr/0005-jobs-and-aggregation.md).
 *
 * A job is a list of steps; a plain job (`{ tasks, aggregation }`) is a job with one step. Each step
 * fans out to tasks, waits for them according to its aggregation policy, reduces the successful
 * outputs, and hands the reduced result to the next step.
 */

/** A JSON value, as task inputs and outputs are. */
export type { JsonValue };

export const JOB_STATUSES = ["working", "completed", "failed", "canceled"] as const;
export const JobStatusSchema = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatusSchema>;

/** Most tasks in one step of a job (the first step's are submitted in one request). */
export const MAX_JOB_TASKS = 1000;
/** Most steps in a pipeline. */
export const MAX_JOB_STEPS = 10;
/**
 * Largest stored plan of a pipeline's later steps and largest step result, in bytes of JSON. Both
 * live in one DynamoDB item each (400 KB), so the limits leave room for keys and attributes.
 */
export const MAX_JOB_PLAN_BYTES = 300 * 1024;
export const MAX_JOB_RESULT_BYTES = 350 * 1024;
/**
 * Most bytes of task input one pipeline step may fan out to, all its tasks together. Each input has
 * its own 256 KiB limit, but a template that copies a large previous result into each of 1,000 tasks
 * would multiply it a thousandfold; the step fails (`fan_out_too_large`) before any task is created.
 */
export const MAX_STEP_INPUT_BYTES = 8 * 1024 * 1024;
/**
 * Task metadata keys the platform sets on a job's tasks (which step, which position), so the
 * aggregator learns both from the task record. Clients may not use the prefix.
 */
export const RESERVED_METADATA_PREFIX = "agentry:";
export const JOB_STEP_METADATA_KEY = "agentry:jobStep";
export const JOB_INDEX_METADATA_KEY = "agentry:jobIndex";

const identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
    "must start with a letter or digit and use only A-Z a-z 0-9 . _ : -",
  );

export const AGGREGATION_POLICIES = ["all", "quorum", "first", "deadline"] as const;
export const AggregationPolicySchema = z.enum(AGGREGATION_POLICIES);
export type AggregationPolicy = z.infer<typeof AggregationPolicySchema>;

/** The built-in reducers; any other name must be registered with `defineReducer`. */
export const BUILT_IN_REDUCERS = ["collect", "merge", "concat", "vote"] as const;

/** When a step is done, and how its successful outputs become one result. */
export const AggregationSchema = z
  .strictObject({
    policy: AggregationPolicySchema,
    /** `quorum`: how many tasks must succeed. */
    quorum: z.int().min(1).max(MAX_JOB_TASKS).optional(),
    /** `deadline`: seconds after the step starts at which it is aggregated with what finished. */
    deadlineSeconds: z.int().min(1).max(86_400).optional(),
    /** `collect`, `merge`, `concat`, `vote`, or the name of a registered custom reducer. */
    reducer: identifier,
  })
  .superRefine((aggregation, ctx) => {
    if (aggregation.policy === "quorum" && aggregation.quorum === undefined)
      ctx.addIssue({ code: "custom", path: ["quorum"], message: 'required with policy "quorum"' });
    if (aggregation.policy !== "quorum" && aggregation.quorum !== undefined)
      ctx.addIssue({ code: "custom", path: ["quorum"], message: 'only allowed with policy "quorum"' });
    if (aggregation.policy === "deadline" && aggregation.deadlineSeconds === undefined)
      ctx.addIssue({ code: "custom", path: ["deadlineSeconds"], message: 'required with policy "deadline"' });
    if (aggregation.policy !== "deadline" && aggregation.deadlineSeconds !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["deadlineSeconds"],
        message: 'only allowed with policy "deadline"',
      });
  });
export type Aggregation = z.infer<typeof AggregationSchema>;

/** When failed (or canceled, or rejected) tasks fail the job. */
export const FailurePolicySchema = z
  .strictObject({
    mode: z.enum(["fail-fast", "tolerate"]),
    /** `tolerate`: the job fails once more tasks than this did not succeed. @default unlimited */
    maxFailures: z.int().min(0).max(MAX_JOB_TASKS).optional(),
  })
  .superRefine((policy, ctx) => {
    if (policy.mode === "fail-fast" && policy.maxFailures !== undefined)
      ctx.addIssue({ code: "custom", path: ["maxFailures"], message: 'only allowed with mode "tolerate"' });
  });
export type FailurePolicy = z.infer<typeof FailurePolicySchema>;

/**
 * The failure policy a step runs with when the request names none: `all` fails fast (like
 * Promise.all); `quorum`, `first` and `deadline` exist to ride out stragglers and failures, so they
 * tolerate failures until the policy can no longer be met.
 */
export function defaultFailurePolicy(policy: AggregationPolicy): FailurePolicy {
  return policy === "all" ? { mode: "fail-fast" } : { mode: "tolerate" };
}

/**
 * A task of a job: a TaskInput without `idempotencyKey` (a job's tasks are created exactly once by the
 * job; a key could hand back a task that belongs to something else) and without reserved metadata.
 */
export const JobTaskInputSchema = TaskInputSchema.superRefine((input, ctx) => {
  if (input.idempotencyKey !== undefined)
    ctx.addIssue({
      code: "custom",
      path: ["idempotencyKey"],
      message: "not allowed in a job: the job creates each task exactly once",
    });
  for (const key of Object.keys(input.metadata ?? {})) {
    if (key.startsWith(RESERVED_METADATA_PREFIX))
      ctx.addIssue({
        code: "custom",
        path: ["metadata", key],
        message: `keys starting with "${RESERVED_METADATA_PREFIX}" are reserved`,
      });
  }
});

/**
 * A reference inside an input template: `{ "$from": "<path>" }`, replaced by the value at the path.
 * Roots: `result` (the previous step's reduced output), `item` and `index` (the element being fanned
 * out with `forEach`). Segments after the root select object fields or array positions (`item.0`).
 */
export const TEMPLATE_REFERENCE_KEY = "$from";
export const TEMPLATE_PATH = /^(result|item|index)(\.[A-Za-z0-9_-]+)*$/;

export const FOR_EACH_SOURCES = ["result", "tasks"] as const;

/**
 * Tasks built from the previous step once it completes, without a client round trip.
 *
 * - no `forEach`: one task; its input is the template (default: the previous result).
 * - `forEach: "result"`: one task per element of the previous result (which must be an array);
 *   `item` is the element, `index` its position. Default input: the element.
 * - `forEach: "tasks"`: one task per task whose output the previous step reduced, in submission
 *   order; `item` is `{ taskId, index, input, output }`, so a task can use both what the previous
 *   task was given and what it produced.
 */
export const FromPreviousSchema = z
  .strictObject({
    taskType: identifier,
    forEach: z.enum(FOR_EACH_SOURCES).optional(),
    /** The input template; `{ "$from": path }` objects are replaced. */
    input: StorableJsonSchema.optional(),
    requiredCapability: identifier.optional(),
    preferredAgentId: identifier.optional(),
    priority: z.int().min(-100).max(100).optional(),
    timeoutSeconds: z.int().min(1).max(900).optional(),
    maxAttempts: z.int().min(1).max(10).optional(),
    metadata: TaskInputSchema.shape.metadata,
  })
  .superRefine((spec, ctx) => {
    for (const key of Object.keys(spec.metadata ?? {})) {
      if (key.startsWith(RESERVED_METADATA_PREFIX))
        ctx.addIssue({
          code: "custom",
          path: ["metadata", key],
          message: `keys starting with "${RESERVED_METADATA_PREFIX}" are reserved`,
        });
    }
    if (spec.input === undefined) return;
    for (const issue of templateIssues(spec.input, spec.forEach !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["input", ...issue.path], message: issue.message });
    }
  });
export type FromPrevious = z.infer<typeof FromPreviousSchema>;

export const FromPreviousTasksSchema = z.strictObject({ fromPrevious: FromPreviousSchema });

/** One step of a pipeline: literal tasks, or tasks built from the previous step's result. */
export const JobStepRequestSchema = z
  .strictObject({
    tasks: z.union([z.array(JobTaskInputSchema).min(1).max(MAX_JOB_TASKS), FromPreviousTasksSchema]),
    aggregation: AggregationSchema,
    failurePolicy: FailurePolicySchema.optional(),
  })
  .superRefine((step, ctx) => {
    const { quorum } = step.aggregation;
    if (Array.isArray(step.tasks) && quorum !== undefined && quorum > step.tasks.length) {
      ctx.addIssue({
        code: "custom",
        path: ["aggregation", "quorum"],
        message: `quorum ${quorum} is more than the ${step.tasks.length} tasks`,
      });
    }
  });
export type JobStepRequest = z.infer<typeof JobStepRequestSchema>;

/** `POST /jobs` with tasks: one fan-out / fan-in step. */
export const TaskJobRequestSchema = z
  .strictObject({
    tasks: z.array(JobTaskInputSchema).min(1).max(MAX_JOB_TASKS),
    aggregation: AggregationSchema,
    failurePolicy: FailurePolicySchema.optional(),
  })
  .superRefine((job, ctx) => {
    const { quorum } = job.aggregation;
    if (quorum !== undefined && quorum > job.tasks.length) {
      ctx.addIssue({
        code: "custom",
        path: ["aggregation", "quorum"],
        message: `quorum ${quorum} is more than the ${job.tasks.length} tasks`,
      });
    }
  });
export type TaskJobRequest = z.infer<typeof TaskJobRequestSchema>;

/** `POST /jobs` with steps: a pipeline. The first step's tasks are literal; later steps may build theirs. */
export const PipelineJobRequestSchema = z
  .strictObject({
    steps: z.array(JobStepRequestSchema).min(1).max(MAX_JOB_STEPS),
  })
  .superRefine((job, ctx) => {
    const first = job.steps[0];
    if (first !== undefined && !Array.isArray(first.tasks)) {
      ctx.addIssue({
        code: "custom",
        path: ["steps", 0, "tasks"],
        message: "the first step has no previous step: give its tasks as a list",
      });
    }
  });
export type PipelineJobRequest = z.infer<typeof PipelineJobRequestSchema>;

export const SubmitJobRequestSchema = z.union([TaskJobRequestSchema, PipelineJobRequestSchema]);
export type SubmitJobRequest = TaskJobRequest | PipelineJobRequest;

export const SubmitJobResponseSchema = z.object({
  jobId: z.string(),
  /** The tasks of the first step, in submission order. */
  taskIds: z.array(z.string()),
});
export type SubmitJobResponse = z.infer<typeof SubmitJobResponseSchema>;

export const JobErrorSchema = z.object({ code: z.string(), message: z.string() });
export type JobError = z.infer<typeof JobErrorSchema>;

/** A task that did not contribute to a result: failed, rejected or canceled. */
export const JobTaskFailureSchema = z.object({
  taskId: z.string(),
  index: z.int(),
  status: z.enum(["failed", "canceled", "rejected"]),
  error: TaskErrorSchema.optional(),
});
export type JobTaskFailure = z.infer<typeof JobTaskFailureSchema>;

/** A completed step's (and so a completed job's) result. */
export const JobResultSchema = z.object({
  /** What the reducer made of the successful outputs. */
  output: JsonValueSchema,
  /** The tasks whose outputs were reduced, in submission order. */
  outputTaskIds: z.array(z.string()),
  /** Tasks that had not succeeded when the step completed (tolerated failures), in submission order. */
  failedTasks: z.array(JobTaskFailureSchema),
});
export type JobResult = z.infer<typeof JobResultSchema>;

export const JobCountsSchema = z.object({
  total: z.int(),
  completed: z.int(),
  failed: z.int(),
  canceled: z.int(),
});
export type JobCounts = z.infer<typeof JobCountsSchema>;

export const JobStepViewSchema = JobCountsSchema.extend({
  status: JobStatusSchema,
  taskIds: z.array(z.string()),
  startedAt: z.string(),
  deadlineAt: z.string().optional(),
  completedAt: z.string().optional(),
});

/** `GET /jobs/{jobId}`. For a pipeline, the counts add up every step started so far. */
export const JobViewSchema = JobCountsSchema.extend({
  jobId: z.string(),
  status: JobStatusSchema,
  result: JobResultSchema.optional(),
  error: JobErrorSchema.optional(),
  createdAt: z.string(),
  completedAt: z.string().optional(),
  /** Every task of the job, step by step, in submission order. */
  taskIds: z.array(z.string()),
  /** Pipelines only: the step running now (or the last one). */
  currentStep: z.int().optional(),
  /** Pipelines only: every step started so far. */
  steps: z.array(JobStepViewSchema).optional(),
});
export type JobView = z.infer<typeof JobViewSchema>;

export const JobStatisticsSchema = z.object({
  jobs: z.object({
    submitted: z.int(),
    completed: z.int(),
    failed: z.int(),
    canceled: z.int(),
    running: z.int(),
  }),
});
export type JobStatistics = z.infer<typeof JobStatisticsSchema>;

/** Job counter names in the JobStore's (sharded) counters. */
export const JobCounter = {
  submitted: "jobs:submitted",
  finished: (status: Exclude<JobStatus, "working">) => `jobs:${status}`,
} as const;

export function jobStatisticsFromCounters(counters: Readonly<Record<string, number>>): JobStatistics {
  const get = (name: string) => counters[name] ?? 0;
  const submitted = get(JobCounter.submitted);
  const completed = get(JobCounter.finished("completed"));
  const failed = get(JobCounter.finished("failed"));
  const canceled = get(JobCounter.finished("canceled"));
  return {
    jobs: { submitted, completed, failed, canceled, running: submitted - completed - failed - canceled },
  };
}

// ---------------------------------------------------------------------------------------------------
// Stored state
// ---------------------------------------------------------------------------------------------------

/** A terminal task status as a job records it. */
export type TaskOutcomeStatus = "completed" | "failed" | "canceled" | "rejected";

/** The outcome of one task of a job, recorded once (first write wins per job and task). */
export interface TaskOutcome {
  readonly taskId: string;
  readonly step: number;
  /** Position in its step's submission order. */
  readonly index: number;
  readonly status: TaskOutcomeStatus;
  /** The task's version when it reached that status. */
  readonly taskVersion: number;
  /** The task's output, when it completed. */
  readonly output?: JsonValue;
  readonly error?: { readonly code: string; readonly message: string };
  readonly recordedAt: string;
}

/** Counter bucket of an outcome: rejected tasks count as failed. */
export function outcomeBucket(status: TaskOutcomeStatus): "completed" | "failed" | "canceled" {
  return status === "rejected" ? "failed" : status;
}

export interface StepCounts {
  readonly completed: number;
  readonly failed: number;
  readonly canceled: number;
}

/** One started step of a job. */
export interface JobStepState {
  readonly status: JobStatus;
  readonly total: number;
  readonly aggregation: Aggregation;
  readonly failurePolicy: FailurePolicy;
  readonly startedAt: string;
  readonly deadlineAt?: string;
  readonly completedAt?: string;
  /** False until the step's task ids are attached (the tasks were all submitted). */
  readonly tasksSubmitted: boolean;
  /** Outcomes recorded so far; maintained by the store, moved only by first writes of outcomes. */
  readonly counts: StepCounts;
}

/** A later step of a pipeline, kept until it starts. */
export interface JobStepPlan {
  readonly tasks: readonly z.infer<typeof JobTaskInputSchema>[] | { readonly fromPrevious: FromPrevious };
  readonly aggregation: Aggregation;
  readonly failurePolicy: FailurePolicy;
}

/** The job record, as the store keeps it (its steps' task ids and results are kept apart). */
export interface JobRecord {
  readonly jobId: string;
  readonly kind: "tasks" | "pipeline";
  readonly status: JobStatus;
  /** Moves with every structural write (create, attach, advance, finish); not with outcomes. */
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly completedAt?: string;
  readonly currentStep: number;
  readonly stepCount: number;
  /** The steps started so far. */
  readonly steps: readonly JobStepState[];
  readonly error?: JobError;
  /**
   * When `advanceDueJobs` must look at the job: a deadline, a step whose submission may have been
   * interrupted, the working step's next reconciliation, or a `Job Completed` event not yet confirmed
   * as published.
   */
  readonly dueAt?: string;
  readonly eventPublished: boolean;
}

/** Sums the outcome counts of every started step. */
export function jobCounts(job: JobRecord): JobCounts {
  return job.steps.reduce<JobCounts>(
    (sum, step) => ({
      total: sum.total + step.total,
      completed: sum.completed + step.counts.completed,
      failed: sum.failed + step.counts.failed,
      canceled: sum.canceled + step.counts.canceled,
    }),
    { total: 0, completed: 0, failed: 0, canceled: 0 },
  );
}

/** Checks a template's `{ "$from": path }` references; returns every problem with its path. */
export function templateIssues(
  template: unknown,
  fanningOut: boolean,
  path: readonly (string | number)[] = [],
): { path: (string | number)[]; message: string }[] {
  if (Array.isArray(template))
    return template.flatMap((item, index) => templateIssues(item, fanningOut, [...path, index]));
  if (template === null || typeof template !== "object") return [];
  const entries = Object.entries(template);
  if (!Object.hasOwn(template, TEMPLATE_REFERENCE_KEY))
    return entries.flatMap(([key, value]) => templateIssues(value, fanningOut, [...path, key]));
  const reference = (template as Record<string, unknown>)[TEMPLATE_REFERENCE_KEY];
  const here = [...path, TEMPLATE_REFERENCE_KEY];
  if (entries.length !== 1)
    return [
      { path: here, message: `a reference is an object with the single key "${TEMPLATE_REFERENCE_KEY}"` },
    ];
  if (typeof reference !== "string" || !TEMPLATE_PATH.test(reference))
    return [
      { path: here, message: 'must be a path such as "result", "result.0.summary", "item.words" or "index"' },
    ];
  if (!fanningOut && !reference.startsWith("result"))
    return [{ path: here, message: `"${reference.split(".")[0]}" is only defined with forEach` }];
  return [];
}
