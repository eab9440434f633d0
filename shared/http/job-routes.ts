import type { JobService } from "#shared/core/jobs/job-service";
import { NotFoundError, PayloadTooLargeError } from "#shared/domain/errors";
import {
  AggregationSchema,
  FailurePolicySchema,
  FromPreviousSchema,
  JobStatisticsSchema,
  JobStepRequestSchema,
  JobViewSchema,
  MAX_JOB_STEPS,
  MAX_JOB_TASKS,
  PipelineJobRequestSchema,
  type SubmitJobRequest,
  SubmitJobRequestSchema,
  SubmitJobResponseSchema,
  TaskJobRequestSchema,
} from "#shared/domain/job";
import { jsonByteLength, MAX_PAYLOAD_BYTES } from "#shared/domain/task";
import { errorResponses } from "./openapi.ts";
import type { ApiRequest, ApiRouteTable } from "./router.ts";
import { apiSchemas, isPlainObject, parseRequest, readJsonBody, TaskIdSchema } from "./schemas.ts";

/** The job use cases the routes call (a JobService, or a stand-in in tests). */
export type JobUseCases = Pick<JobService, "submit" | "get" | "cancel" | "statistics">;

const JOBS_TAG = ["jobs"] as const;

apiSchemas.add(AggregationSchema, {
  id: "JobAggregation",
  io: "input",
  description: "When a step is done (policy) and how its successful outputs become one result (reducer).",
});
apiSchemas.add(FailurePolicySchema, { id: "JobFailurePolicy", io: "input" });
apiSchemas.add(FromPreviousSchema, {
  id: "FromPrevious",
  io: "input",
  description:
    'Tasks built from the previous step\'s result; `{ "$from": "result.…" | "item.…" | "index" }` in `input` is replaced.',
});
apiSchemas.add(JobStepRequestSchema, { id: "JobStep", io: "input" });
apiSchemas.add(TaskJobRequestSchema, { id: "TaskJobRequest", io: "input" });
apiSchemas.add(PipelineJobRequestSchema, { id: "PipelineJobRequest", io: "input" });
apiSchemas.add(SubmitJobRequestSchema, {
  id: "SubmitJobRequest",
  io: "input",
  description: `A fan-out of 1 to ${MAX_JOB_TASKS} tasks, or a pipeline of 1 to ${MAX_JOB_STEPS} steps.`,
});
apiSchemas.add(SubmitJobResponseSchema, { id: "SubmitJobResponse" });
apiSchemas.add(JobViewSchema, { id: "Job" });
apiSchemas.add(JobStatisticsSchema, { id: "JobStatistics" });

/**
 * The job routes: submit a fan-out job or a pipeline, read it, cancel it, and the job statistics
 * (`GET /stats/jobs`, next to the task statistics of `GET /stats`, whose shape stays as it is).
 *
 * @example
 * const handler = createSupervisorApiHandler({ supervisor, logger, extraRoutes: jobRoutes(jobService) });
 */
export function jobRoutes(jobs: JobUseCases): ApiRouteTable {
  return [
    {
      method: "POST",
      path: "/jobs",
      operation: {
        operationId: "submitJob",
        summary: "Submit a job: fan-out / fan-in over tasks, or a pipeline of steps",
        description:
          `\`{ "tasks": [...], "aggregation": {...}, "failurePolicy"? }\` fans out 1 to ${MAX_JOB_TASKS} tasks and ` +
          'aggregates them; `{ "steps": [...] }` runs steps in order, each built from the previous one\'s result.',
        tags: JOBS_TAG,
        requestBody: { schema: SubmitJobRequestSchema },
        responses: {
          "202": { description: "Accepted; the job runs asynchronously", schema: SubmitJobResponseSchema },
          ...errorResponses({
            "400":
              "`invalid_json`: the body is not JSON; `validation_error`: it breaks the schema (see details)",
            "413": "`payload_too_large`: a task input (256 KiB) or the stored pipeline is too large",
          }),
        },
      },
      handle: async (request) => {
        const body = readJsonBody(request);
        assertInputsWithinLimit(body);
        const job = await jobs.submit(parseJob(body));
        return { statusCode: 202, body: job };
      },
    },
    {
      method: "GET",
      path: "/jobs/{jobId}",
      operation: {
        operationId: "getJob",
        summary: "Get a job: status, counts, result",
        tags: JOBS_TAG,
        responses: {
          "200": { description: "The job", schema: JobViewSchema },
          ...errorResponses({ "404": "`not_found`: no such job" }),
        },
      },
      handle: async (request) => ({ statusCode: 200, body: await jobs.get(jobIdOf(request)) }),
    },
    {
      method: "POST",
      path: "/jobs/{jobId}/cancel",
      operation: {
        operationId: "cancelJob",
        summary: "Cancel a job and its remaining tasks",
        tags: JOBS_TAG,
        responses: {
          "200": { description: "The job, canceled", schema: JobViewSchema },
          ...errorResponses({
            "404": "`not_found`: no such job",
            "409": "`already_terminal`: the job has already ended",
          }),
        },
      },
      handle: async (request) => ({ statusCode: 200, body: await jobs.cancel(jobIdOf(request)) }),
    },
    {
      method: "GET",
      path: "/stats/jobs",
      operation: {
        operationId: "getJobStatistics",
        summary: "Job statistics",
        tags: JOBS_TAG,
        responses: { "200": { description: "Job counts", schema: JobStatisticsSchema } },
      },
      handle: async () => ({ statusCode: 200, body: await jobs.statistics() }),
    },
  ];
}

/**
 * A body is a pipeline exactly when it has `steps`, so validation reports against the shape the
 * client meant rather than against a union of both.
 */
function parseJob(body: unknown): SubmitJobRequest {
  if (isPlainObject(body) && Object.hasOwn(body, "steps")) {
    return parseRequest(PipelineJobRequestSchema, body, { message: "invalid pipeline job" });
  }
  return parseRequest(TaskJobRequestSchema, body, { message: "invalid job" });
}

/** A path id that no job could have names no job: 404, like any other unknown id. */
function jobIdOf(request: ApiRequest): string {
  const jobId = request.params.jobId ?? "";
  if (!TaskIdSchema.safeParse(jobId).success) throw new NotFoundError(`job ${jobId.slice(0, 128)} not found`);
  return jobId;
}

/** Before the schema: a huge input is a 413 whatever else is wrong, and is never walked by zod. */
function assertInputsWithinLimit(body: unknown): void {
  if (!isPlainObject(body)) return;
  const lists: { path: string; tasks: unknown }[] = Array.isArray(body.steps)
    ? body.steps.map((step: unknown, index) => ({
        path: `steps.${index}.tasks`,
        tasks: isPlainObject(step) ? step.tasks : undefined,
      }))
    : [{ path: "tasks", tasks: body.tasks }];
  for (const { path, tasks } of lists) {
    if (!Array.isArray(tasks)) continue;
    tasks.forEach((task: unknown, index) => {
      if (!isPlainObject(task) || !Object.hasOwn(task, "input")) return;
      const bytes = jsonByteLength(task.input);
      if (bytes > MAX_PAYLOAD_BYTES) {
        throw new PayloadTooLargeError(
          `${path}.${index}.input is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`,
        );
      }
    });
  }
}
