import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type { Tracer } from "@aws-lambda-powertools/tracer";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";
import middy, { type MiddlewareObj } from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { errorResult, type HttpLogger } from "./errors.ts";
import { type ApiRouteTable, createApiRouter } from "./router.ts";
import type { TaskSupervisor } from "./task-routes.ts";

export interface SupervisorApiHandlerDeps {
  readonly supervisor: TaskSupervisor;
  /**
   * Receives every error that became a 5xx. A Powertools `Logger` also gets the Lambda context
   * injected into its entries (`injectLambdaContext`); any other logger (the local runtime's) is used as is.
   */
  readonly logger: HttpLogger;
  /** Traces the invocation (`captureLambdaHandler`). @default - no tracing */
  readonly tracer?: Tracer;
  /** Flushes metrics after each invocation (`logMetrics`) and counts responses. @default - no metrics */
  readonly metrics?: Metrics;
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
 * The supervisor API as a Lambda handler: the router inside a middy chain with the Powertools
 * logger, tracer and metrics middleware, and an outermost error envelope so that even a failing
 * middleware answers with the API's error body. The Lambda entry and the local runtime both build
 * it, around AWS and memory adapters respectively.
 *
 * @example
 * const logger = new Logger({ serviceName: "supervisor-api" });
 * export const handler = createSupervisorApiHandler({ supervisor, logger, tracer: new Tracer(), metrics: new Metrics() });
 */
export function createSupervisorApiHandler(deps: SupervisorApiHandlerDeps): SupervisorApiHandler {
  const router = createApiRouter({
    supervisor: deps.supervisor,
    logger: deps.logger,
    ...(deps.extraRoutes !== undefined ? { extraRoutes: deps.extraRoutes } : {}),
    ...(deps.maxBodyBytes !== undefined ? { maxBodyBytes: deps.maxBodyBytes } : {}),
  });
  const lambdaHandler = (event: APIGatewayProxyEventV2) => router(event);

  // middy runs `after`/`onError` in reverse order of `use`: the envelope, used first, sees errors last.
  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(lambdaHandler).use(
    errorEnvelope(deps.logger),
  );
  if (deps.logger instanceof Logger) handler.use(injectLambdaContext(deps.logger, { resetKeys: true }));
  if (deps.tracer !== undefined) handler.use(captureLambdaHandler(deps.tracer, { captureResponse: false }));
  if (deps.metrics !== undefined) {
    handler.use(logMetrics(deps.metrics, { captureColdStartMetric: true })).use(countResponses(deps.metrics));
  }
  // Outside Lambda there is no context; middy and the middlewares accept an empty one.
  return (event, context) => handler(event, context ?? ({} as Context));
}

/**
 * Turns anything thrown past the router (a middleware failure, middy's early timeout) into the
 * API's error body, so API Gateway never answers with its own bare 500.
 */
function errorEnvelope(
  logger: HttpLogger,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    onError: async (request) => {
      request.response = errorResult(request.error, {
        requestId: request.event?.requestContext?.requestId ?? "unknown",
        logger,
      });
    },
  };
}

/**
 * One `ApiResponses` count per invocation, by status class. Besides being the API's own view of its
 * error rate, it means every flush has a metric (Powertools warns on every empty flush otherwise).
 */
function countResponses(
  metrics: Metrics,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    after: async (request) => {
      const status = request.response?.statusCode ?? 500;
      metrics.addDimension("statusClass", `${Math.floor(status / 100)}xx`);
      metrics.addMetric("ApiResponses", MetricUnit.Count, 1);
    },
  };
}
