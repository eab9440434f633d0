import { type AgentRoutesDeps, agentRoutes } from "./agent-routes.ts";
import { type DeadLetterUseCases, dlqRoutes } from "./dlq-routes.ts";
import { type JobUseCases, jobRoutes } from "./job-routes.ts";
import { platformRoutes } from "./platform-routes.ts";
import { type QueueRoutesDeps, queueRoutes } from "./queue-routes.ts";
import type { ApiRoute } from "./route.ts";
import { type TaskSupervisor, taskRoutes } from "./task-routes.ts";

/** Everything the API's routes call: the use cases. */
export interface ApiDeps extends AgentRoutesDeps, QueueRoutesDeps {
  readonly supervisor: TaskSupervisor;
  readonly jobs: JobUseCases;
  /** The dead-letter queues; without them (Service Bus) `/dlq` is not served. */
  readonly deadLetters?: DeadLetterUseCases;
}

/**
 * The route modules of the v1 API. A new module (a function from {@link ApiDeps} to routes) is one
 * line here; the app serves it and the OpenAPI document lists it.
 */
export const API_ROUTE_MODULES: readonly ((deps: ApiDeps) => ApiRoute[])[] = [
  taskRoutes,
  jobRoutes,
  agentRoutes,
  queueRoutes,
  dlqRoutes,
  platformRoutes,
];

/**
 * Every route of the v1 API, bound to its use cases.
 *
 * @example
 * const app = createApiApp({ routes: apiRoutes(platform), logger });
 */
export function apiRoutes(deps: ApiDeps): ApiRoute[] {
  return API_ROUTE_MODULES.flatMap((module) => module(deps));
}
