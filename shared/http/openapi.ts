import { zodToOpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { OpenAPIHono } from "@hono/zod-openapi";
import type * as z from "zod";
import {
  AgentListResponseSchema,
  HeartbeatResponseSchema,
  MessageAudienceSchema,
  RegisterAgentInputSchema,
  SendMessageInputSchema,
  SendMessageResultSchema,
  UpdateAgentStatusInputSchema,
  WorkerPoolStatisticsSchema,
} from "#shared/core/agents/schemas";
import { AgentInfoSchema } from "#shared/domain/agent";
import {
  AggregationSchema,
  FailurePolicySchema,
  FromPreviousSchema,
  JobStatisticsSchema,
  JobStepRequestSchema,
  JobViewSchema,
  PipelineJobRequestSchema,
  SubmitJobRequestSchema,
  SubmitJobResponseSchema,
  TaskJobRequestSchema,
} from "#shared/domain/job";
import { JsonValueSchema } from "#shared/domain/json";
import { AgentMessageSchema } from "#shared/domain/message";
import { SupervisorStatisticsSchema } from "#shared/domain/statistics";
import { SubmittedTaskSchema, TaskInputSchema, TaskSchema } from "#shared/domain/task";
import type { ApiRoute } from "./route.ts";
import { apiRoutes } from "./routes.ts";
import {
  ErrorDetailSchema,
  ErrorResponseSchema,
  HealthResponseSchema,
  SubmitTasksRequestSchema,
  SubmitTasksResponseSchema,
  TaskBatchRequestSchema,
  TaskPageResponseSchema,
} from "./schemas.ts";

/**
 * Generates the OpenAPI 3.1 document of the API from its route definitions with
 * `@hono/zod-openapi`. Build time only (`npm run openapi`, checked by test/unit/openapi.test.ts):
 * the generator extends zod's whole namespace, which would put all of zod into the API's Lambda
 * bundle; the app serves the generated `shared/http/openapi.json` instead.
 */

export const OPENAPI_INFO = {
  title: "Agentry API",
  version: "1.0.0",
  description:
    "Submit tasks and jobs to the Agentry supervisor, follow them through their lifecycle and cancel " +
    "them; register agents and send them messages. Errors are " +
    '`{ "error": { "code", "message", "details"? } }`; a body that is not JSON is ' +
    "`400 invalid_json`, a body that is JSON but breaks the schema is `400 validation_error`.",
} as const;

/**
 * Schemas that appear as named components (`#/components/schemas/<name>`) wherever they are used.
 * `JsonValue` is also what makes the recursive JSON value expressible at all.
 */
const COMPONENTS: readonly (readonly [z.ZodType, string])[] = [
  [JsonValueSchema, "JsonValue"],
  [TaskInputSchema, "TaskInput"],
  [TaskBatchRequestSchema, "TaskBatchRequest"],
  [SubmitTasksRequestSchema, "SubmitTasksRequest"],
  [SubmittedTaskSchema, "SubmittedTask"],
  [SubmitTasksResponseSchema, "SubmitTasksResponse"],
  [TaskSchema, "Task"],
  [TaskPageResponseSchema, "TaskPage"],
  [SupervisorStatisticsSchema, "SupervisorStatistics"],
  [HealthResponseSchema, "HealthResponse"],
  [ErrorDetailSchema, "ErrorDetail"],
  [ErrorResponseSchema, "ErrorResponse"],
  [RegisterAgentInputSchema, "RegisterAgentRequest"],
  [AgentInfoSchema, "AgentInfo"],
  [AgentListResponseSchema, "AgentList"],
  [UpdateAgentStatusInputSchema, "UpdateAgentStatusRequest"],
  [HeartbeatResponseSchema, "HeartbeatResponse"],
  [WorkerPoolStatisticsSchema, "WorkerPoolStatistics"],
  [MessageAudienceSchema, "MessageAudience"],
  [SendMessageInputSchema, "SendMessageRequest"],
  [AgentMessageSchema, "AgentMessage"],
  [SendMessageResultSchema, "SendMessageResponse"],
  [AggregationSchema, "JobAggregation"],
  [FailurePolicySchema, "JobFailurePolicy"],
  [FromPreviousSchema, "FromPrevious"],
  [JobStepRequestSchema, "JobStep"],
  [TaskJobRequestSchema, "TaskJobRequest"],
  [PipelineJobRequestSchema, "PipelineJobRequest"],
  [SubmitJobRequestSchema, "SubmitJobRequest"],
  [SubmitJobResponseSchema, "SubmitJobResponse"],
  [JobViewSchema, "Job"],
  [JobStatisticsSchema, "JobStatistics"],
];

/** Route modules are bound to use cases; documenting them calls none, so none is needed. */
const NOT_CALLED = {} as never;

/** Every route of the API, as the document describes it. */
export function documentedRoutes(): ApiRoute[] {
  return apiRoutes({
    supervisor: NOT_CALLED,
    jobs: NOT_CALLED,
    agents: NOT_CALLED,
    messaging: NOT_CALLED,
    queueDepth: NOT_CALLED,
    config: NOT_CALLED,
    deadLetters: NOT_CALLED,
  });
}

/**
 * The OpenAPI 3.1 document of the given routes (every route of the API by default).
 *
 * @example
 * const document = buildOpenApiDocument();
 * document.paths?.["/tasks/{taskId}"]?.get?.operationId; // "getTask"
 */
export function buildOpenApiDocument(routes: readonly ApiRoute[] = documentedRoutes()) {
  // The registry `@hono/zod-openapi` names components from; registering the schema instances
  // themselves (`.openapi(name)` would name a copy) makes every use of one a `$ref`.
  for (const [schema, name] of COMPONENTS)
    zodToOpenAPIRegistry.add(schema, { _internal: { refId: name } } as never);
  const app = new OpenAPIHono();
  for (const { route, handler } of routes) app.openapi(route, handler as never);
  return app.getOpenAPI31Document({ openapi: "3.1.0", info: OPENAPI_INFO, tags: TAGS });
}

const TAGS = [
  { name: "tasks", description: "Tasks: submit, follow, cancel; task statistics." },
  { name: "jobs", description: "Jobs: fan-out / fan-in over tasks, and pipelines of steps." },
  { name: "agents", description: "The agent registry and the worker pool." },
  { name: "messages", description: "Messages between agents." },
  { name: "platform", description: "Health and this document." },
];
