import { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { errorResult, type HttpLogger } from "./errors.ts";
import { type ApiRouteTable, createApiRouter } from "./router.ts";
import type { TaskSupervisor } from "./task-routes.ts";

export interface SupervisorApiHandlerDeps {
  readonly supervisor: TaskSupervisor;
  /**
   * Receives every error that became a 5xx. A Powertools `Logger` also gets the Lambda context added
   * to its entries for the invocation; any other logger (the local runtime's) is used as is.
   */
  readonly logger: HttpLogger;
  /** Routes served next to the task routes (see `createApiRouter`). */
  readonly extraRoutes?: ApiRouteTable;
  /** @default DEFAULT_MAX_BODY_BYTES */
  readonly maxBodyBytes?: number;
}

/**
 * The supervisor API's handler. `context` is optional so the local runtime can call it with an
 * event alone; Lambda always passes one.
 */
export type SupervisorApiHandler = (
  event: APIGatewayProxyEventV2,
  context?: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * The supervisor API as a Lambda handler: the router, with the Lambda context on the Powertools
 * logger's entries for the invocation, and an outermost error envelope so that even a failure past
 * the router answers with the API's error body, never API Gateway's bare 500. The Lambda entry and
 * the local runtime both build it, around AWS and memory adapters respectively. Tracing is Lambda's
 * active X-Ray tracing and the request metrics are API Gateway's: no middleware chain (middy, the
 * Powertools tracer and metrics middlewares) is bundled for them (ADR 0006's bundle budget).
 *
 * @example
 * const logger = new Logger({ serviceName: "supervisor-api" });
 * export const handler = createSupervisorApiHandler({ supervisor, logger });
 */
export function createSupervisorApiHandler(deps: SupervisorApiHandlerDeps): SupervisorApiHandler {
  const router = createApiRouter({
    supervisor: deps.supervisor,
    logger: deps.logger,
    ...(deps.extraRoutes !== undefined ? { extraRoutes: deps.extraRoutes } : {}),
    ...(deps.maxBodyBytes !== undefined ? { maxBodyBytes: deps.maxBodyBytes } : {}),
  });
  const { logger } = deps;
  const powertools = logger instanceof Logger ? logger : undefined;
  return async (event, context) => {
    // Outside Lambda (the local runtime) there is no context to add.
    if (powertools !== undefined && context !== undefined) powertools.addContext(context);
    try {
      return await router(event);
    } catch (error) {
      return errorResult(error, { requestId: event?.requestContext?.requestId ?? "unknown", logger });
    } finally {
      powertools?.resetKeys();
    }
  };
}
