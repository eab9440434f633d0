import { Logger } from "@aws-lambda-powertools/logger";
import { createAwsAdapters } from "#shared/adapters/aws/clients";
import { loadPlatformConfig } from "#shared/config/platform";
import { createPlatform } from "#shared/core/platform";
import { createApiApp } from "#shared/http/app";
import { createApiLambdaHandler } from "#shared/http/lambda";
import { apiRoutes } from "#shared/http/routes";

/**
 * The supervisor HTTP API on Lambda (API Gateway HTTP API, payload v2): the platform from the
 * composition root, the API app on it, served by `hono/aws-lambda`. Built once per execution
 * environment, at module scope, and reused while warm. A malformed environment fails the cold start
 * with a ConfigurationError naming every problem.
 *
 * Tracing is Lambda's active X-Ray tracing and metrics are API Gateway's own (Count, 4xx, 5xx,
 * Latency): the Powertools Tracer (X-Ray SDK) and Metrics would push the bundle past the 500 KB
 * budget (ADR 0006).
 */
const logger = new Logger();
const platform = createPlatform(createAwsAdapters(), loadPlatformConfig(), logger);

export const handler = createApiLambdaHandler(createApiApp({ routes: apiRoutes(platform), logger }), logger);
