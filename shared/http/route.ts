import type { RouteConfig, RouteHandler } from "@hono/zod-openapi";
import type * as z from "zod";
import { ErrorResponseSchema } from "./schemas.ts";

/**
 * Route definitions: each route is a `@hono/zod-openapi` `RouteConfig` (method, path, request and
 * response schemas) and its handler. The app (`app.ts`) validates every request part against the
 * config's schemas before the handler runs, and the OpenAPI document (`openapi.ts`) is generated from
 * the same configs, so the contract and the checks cannot drift apart.
 *
 * Only types come from `@hono/zod-openapi` here: importing its runtime would put all of zod in every
 * API bundle (it extends zod's namespace object), see docs/adr/0011-http-app-composition-logging.md.
 */

/** What every handler can read from the context: the request id (API Gateway's on Lambda). */
export interface ApiEnv {
  Variables: { requestId: string };
}

/** One route: its OpenAPI definition and the handler that serves it. */
export interface ApiRoute {
  readonly route: RouteConfig;
  readonly handler: RouteHandler<RouteConfig, ApiEnv>;
  /**
   * Reads the JSON body instead of a plain `safeParse` against the body schema, for bodies whose
   * errors read better against the shape the client meant (a batch vs. one task) or that have
   * checks to run before the schema (a 256 KiB input is a 413 whatever else is wrong). Its result
   * must be valid for the body schema: the handler reads it with `c.req.valid("json")`.
   */
  readonly parseBody?: (body: unknown) => unknown;
}

/**
 * Pairs a route definition with its handler; the handler's `c.req.valid(...)` is typed from the
 * definition's schemas.
 *
 * @example
 * defineRoute(
 *   { method: "get", path: "/tasks/{taskId}", request: { params: TaskPathSchema }, responses: { 200: json("The task", TaskSchema) } },
 *   async (c) => c.json(await supervisor.get(c.req.valid("param").taskId), 200),
 * );
 */
export function defineRoute<R extends RouteConfig>(
  route: R,
  handler: RouteHandler<R, ApiEnv>,
  options: { parseBody?: (body: unknown) => z.output<JsonBodySchema<R>> } = {},
): ApiRoute {
  return { route, handler: handler as unknown as ApiRoute["handler"], ...options };
}

type JsonBodySchema<R extends RouteConfig> = R["request"] extends {
  body?: { content: { "application/json": { schema: infer S extends z.ZodType } } };
}
  ? S
  : z.ZodType;

/** A JSON request body or response: `{ description, content: { "application/json": { schema } } }`. */
export function json<S extends z.ZodType>(description: string, schema: S) {
  return { description, content: { "application/json": { schema } } } as const;
}

/** A required JSON request body. */
export function jsonBody<S extends z.ZodType>(schema: S, description?: string) {
  return {
    required: true,
    ...(description !== undefined ? { description } : {}),
    content: { "application/json": { schema } },
  } as const;
}

/**
 * Error responses of a route, all with the error envelope: `{ 404: "`not_found`: no such task" }`.
 * Every route also documents the generic 500.
 *
 * @example
 * responses: { 200: json("The task", TaskSchema), ...errorResponses({ 404: "`not_found`: no such task" }) }
 */
export function errorResponses<const C extends number>(descriptions: Readonly<Record<C, string>>) {
  const all = { ...descriptions, 500: "`internal_error` (with a request id; nothing internal is shown)" };
  return Object.fromEntries(
    Object.entries(all).map(([status, description]) => [
      status,
      json(description as string, ErrorResponseSchema),
    ]),
  ) as Record<C | 500, ReturnType<typeof json<typeof ErrorResponseSchema>>>;
}
