import { createApiApp } from "#shared/http/app";
import { createApiLambdaHandler } from "#shared/http/lambda";
import { platformRoutes } from "#shared/http/platform-routes";
import type { ApiRoute } from "#shared/http/route";
import type { Logger } from "#shared/ports/logger";
import { type HttpApiRequest, httpApiEvent } from "./http-api-events.ts";

/** A logger that keeps what it is given, for asserting on what the app logs. */
export function recordingLogger(): Logger & {
  readonly entries: { level: string; message: string; attributes: Record<string, unknown> }[];
} {
  const entries: { level: string; message: string; attributes: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, ...attributes: Record<string, unknown>[]) =>
      entries.push({ level, message, attributes: Object.assign({}, ...attributes) });
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * The API app with the given routes (plus `/health` and `/openapi.json`) behind the Lambda adapter,
 * called with recorded API Gateway HTTP API events: what a deployed function receives.
 *
 * @example
 * const { call } = lambdaApi(taskRoutes({ supervisor }));
 * const reply = await call({ method: "GET", path: "/tasks/abc" }); // { status: 404, body: { error } }
 */
export function lambdaApi(routes: readonly ApiRoute[], options: { maxBodyBytes?: number } = {}) {
  const logger = recordingLogger();
  const app = createApiApp({ routes: [...routes, ...platformRoutes()], logger, ...options });
  const handler = createApiLambdaHandler(app, logger);
  const call = async (request: HttpApiRequest) => {
    const result = await handler(httpApiEvent(request));
    const text = result.body ?? "";
    // `headers` and `text` are there to read, but left out of `toEqual` comparisons.
    return Object.defineProperties(
      { status: result.statusCode ?? 0, body: text === "" ? undefined : (JSON.parse(text) as any) },
      { headers: { value: result.headers ?? {} }, text: { value: text } },
    ) as { status: number; body: any; readonly headers: Record<string, unknown>; readonly text: string };
  };
  return { app, handler, logger, call };
}
