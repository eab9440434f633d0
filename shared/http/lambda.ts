import { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import type { Hono } from "hono";
import { handle } from "hono/aws-lambda";
import type { Logger as PlatformLogger } from "#shared/ports/logger";
import { errorResponse } from "./errors.ts";
import type { ApiEnv } from "./route.ts";

/** The API on Lambda. `context` is optional so tests can call it with an event alone. */
export type ApiLambdaHandler = (
  event: APIGatewayProxyEventV2,
  context?: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * Serves the API app on API Gateway HTTP API (payload v2) with `hono/aws-lambda`. A Powertools
 * Logger gets the Lambda context in its entries; an outermost envelope turns anything thrown past
 * the app into the API's error body, so API Gateway never answers with its
 * own bare 500. On a named stage (not `$default`) API Gateway keeps the stage in `rawPath`
 * (`/prod/tasks`); it is removed, so the routes work on any stage.
 *
 * @example
 * export const handler = createApiLambdaHandler(createApiApp({ routes, logger }), logger);
 */
export function createApiLambdaHandler(app: Hono<ApiEnv>, logger: PlatformLogger): ApiLambdaHandler {
  const serve = handle(app);
  // Not middy + injectLambdaContext: the 3 KiB they weigh are what keeps this bundle in its budget.
  return async (event, context) => {
    if (context !== undefined && logger instanceof Logger) logger.addContext(context);
    try {
      return (await serve(
        withoutStagePrefix(event) as unknown as Parameters<typeof serve>[0],
        context,
      )) as APIGatewayProxyStructuredResultV2;
    } catch (error) {
      const response = errorResponse(error, {
        requestId: event?.requestContext?.requestId ?? "unknown",
        logger,
      });
      return {
        statusCode: response.status,
        headers: { ...response.headers, "content-type": "application/json" },
        body: JSON.stringify(response.body),
      };
    }
  };
}

function withoutStagePrefix(event: APIGatewayProxyEventV2): APIGatewayProxyEventV2 {
  const stage = event.requestContext?.stage;
  if (!stage || stage === "$default") return event;
  const prefix = `/${stage}`;
  const rawPath = event.rawPath ?? "/";
  if (rawPath !== prefix && !rawPath.startsWith(`${prefix}/`)) return event;
  return { ...event, rawPath: rawPath.slice(prefix.length) || "/" };
}
