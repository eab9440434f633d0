import type { JobService } from "#shared/core/jobs/job-service";
import {
  JobStatisticsSchema,
  JobViewSchema,
  MAX_JOB_STEPS,
  MAX_JOB_TASKS,
  PipelineJobRequestSchema,
  type SubmitJobRequest,
  SubmitJobRequestSchema,
  SubmitJobResponseSchema,
  TaskJobRequestSchema,
} from "#shared/domain/job";
import { type ApiRoute, defineRoute, errorResponses, json, jsonBody } from "./route.ts";
import { assertInputsWithinLimit, isPlainObject, JobPathSchema, parseRequest } from "./schemas.ts";

/** The job use cases the routes call (a JobService, or a stand-in in tests). */
export type JobUseCases = Pick<JobService, "submit" | "get" | "cancel" | "statistics">;

const tags = ["jobs"];

/**
 * The job routes: submit a fan-out job or a pipeline, read it, cancel it, and the job statistics
 * (`GET /stats/jobs`, next to the task statistics of `GET /stats`, whose shape stays as it is).
 *
 * @example
 * const app = createApiApp({ routes: jobRoutes({ jobs }), logger });
 */
export function jobRoutes({ jobs }: { jobs: JobUseCases }): ApiRoute[] {
  return [
    defineRoute(
      {
        method: "post",
        path: "/jobs",
        operationId: "submitJob",
        summary: "Submit a job: fan-out / fan-in over tasks, or a pipeline of steps",
        description:
          `\`{ "tasks": [...], "aggregation": {...}, "failurePolicy"? }\` fans out 1 to ${MAX_JOB_TASKS} tasks and ` +
          'aggregates them; `{ "steps": [...] }` runs steps in order (at most ' +
          `${MAX_JOB_STEPS}), each built from the previous one's result.`,
        tags,
        request: { body: jsonBody(SubmitJobRequestSchema) },
        responses: {
          202: json("Accepted; the job runs asynchronously", SubmitJobResponseSchema),
          ...errorResponses({
            400: "`invalid_json`: the body is not JSON; `validation_error`: it breaks the schema (see details)",
            413: "`payload_too_large`: a task input (256 KiB) or the stored pipeline is too large",
          }),
        },
      },
      async (c) => c.json(await jobs.submit(c.req.valid("json")), 202),
      { parseBody: parseJob },
    ),
    defineRoute(
      {
        method: "get",
        path: "/jobs/{jobId}",
        operationId: "getJob",
        summary: "Get a job: status, counts, result",
        tags,
        request: { params: JobPathSchema },
        responses: {
          200: json("The job", JobViewSchema),
          ...errorResponses({ 404: "`not_found`: no such job" }),
        },
      },
      async (c) => c.json(await jobs.get(c.req.valid("param").jobId), 200),
    ),
    defineRoute(
      {
        method: "post",
        path: "/jobs/{jobId}/cancel",
        operationId: "cancelJob",
        summary: "Cancel a job and its remaining tasks",
        tags,
        request: { params: JobPathSchema },
        responses: {
          200: json("The job, canceled", JobViewSchema),
          ...errorResponses({
            404: "`not_found`: no such job",
            409: "`already_terminal`: the job has already ended",
          }),
        },
      },
      async (c) => c.json(await jobs.cancel(c.req.valid("param").jobId), 200),
    ),
    defineRoute(
      {
        method: "get",
        path: "/stats/jobs",
        operationId: "getJobStatistics",
        summary: "Job statistics",
        tags,
        responses: { 200: json("Job counts", JobStatisticsSchema), ...errorResponses({}) },
      },
      async (c) => c.json(await jobs.statistics(), 200),
    ),
  ];
}

/**
 * A body is a pipeline exactly when it has `steps`, so validation reports against the shape the
 * client meant rather than against a union of both. Oversized task inputs are a 413 first.
 */
function parseJob(body: unknown): SubmitJobRequest {
  if (isPlainObject(body) && Object.hasOwn(body, "steps")) {
    if (Array.isArray(body.steps)) {
      body.steps.forEach((step: unknown, index) => {
        if (isPlainObject(step)) assertInputsWithinLimit(step.tasks, `steps.${index}.tasks`);
      });
    }
    return parseRequest(PipelineJobRequestSchema, body, { message: "invalid pipeline job" });
  }
  if (isPlainObject(body)) assertInputsWithinLimit(body.tasks, "tasks");
  return parseRequest(TaskJobRequestSchema, body, { message: "invalid job" });
}
