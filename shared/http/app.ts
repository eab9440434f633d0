import { randomUUID } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { Hono } from "hono/tiny";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type * as z from "zod";
import { NotFoundError, PayloadTooLargeError } from "#shared/domain/errors";
import type { Logger } from "#shared/ports/logger";
import { errorResponse, InvalidJsonError, MethodNotAllowedError } from "./errors.ts";
import type { ApiEnv, ApiRoute } from "./route.ts";
import { assertRequestDepth, parseRequest } from "./schemas.ts";

/** 1 MiB plus 64 KiB for the JSON around the inputs (field names, escaping, a batch's array). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024 + 64 * 1024;

export interface ApiAppOptions {
  /** The routes served, e.g. `apiRoutes(deps)` (`routes.ts`). */
  readonly routes: readonly ApiRoute[];
  /** Receives every error that became a 5xx, as the Error it was. A Powertools Logger fits as is. */
  readonly logger: Pick<Logger, "error">;
  /**
   * Largest request body. A declared `Content-Length` above it is refused before the body is read;
   * an undeclared (chunked) body is refused as soon as the bytes read pass it.
   * @default DEFAULT_MAX_BODY_BYTES
   */
  readonly maxBodyBytes?: number;
}

/**
 * The HTTP API as one Hono app: the given routes, each request part validated against its route's
 * schemas before the handler runs (a path id that fails its schema names nothing: 404), a body limit
 * enforced while the body streams in, 404 for an unknown path and 405 (with `Allow`) for a known
 * path with another method, and every error in the envelope `{ "error": { "code", "message",
 * "details"? } }`. The same app runs on Lambda (`hono/aws-lambda`, `lambda.ts`) and in the local
 * runtime (`@hono/node-server`, local/http-server.ts).
 *
 * @example
 * const app = createApiApp({ routes: apiRoutes({ supervisor, agents, messaging, jobs }), logger });
 * const response = await app.request("/health"); // 200 { "status": "ok" }
 */
export function createApiApp(options: ApiAppOptions): Hono<ApiEnv> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const fail = (c: Context<ApiEnv>, error: unknown) => {
    const response = errorResponse(error, {
      requestId: c.get("requestId") ?? "unknown",
      logger: options.logger,
      method: c.req.method,
      path: c.req.path,
    });
    return c.json(response.body, response.status as ContentfulStatusCode, response.headers);
  };
  // Trailing slashes are ignored: `/tasks/` and `/tasks` are one resource.
  const app = new Hono<ApiEnv>({ strict: false });
  app.use(async (c, next) => {
    c.set("requestId", lambdaRequestId(c) ?? randomUUID());
    await next();
  });
  app.use(
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new PayloadTooLargeError(`request body exceeds the limit of ${maxBodyBytes} bytes`);
      },
    }),
  );
  const templates: { method: string; pattern: RegExp }[] = [];
  const seen = new Set<string>();
  for (const entry of options.routes) {
    const method = entry.route.method.toUpperCase();
    const key = `${method} ${entry.route.path}`;
    // Two handlers for one method and path is a wiring mistake; fail at cold start, not per request.
    if (seen.has(key)) throw new Error(`duplicate route ${key}`);
    seen.add(key);
    templates.push({ method, pattern: templatePattern(entry.route.path) });
    const handlers = [...requestValidators(entry), entry.handler] as [MiddlewareHandler<ApiEnv>];
    app.on(method, honoPath(entry.route.path), ...handlers);
  }
  app.notFound((c) => {
    const allowed = [...new Set(templates.filter((t) => t.pattern.test(c.req.path)).map((t) => t.method))];
    return fail(
      c,
      allowed.length > 0
        ? new MethodNotAllowedError(c.req.method, c.req.path, allowed.sort())
        : new NotFoundError(`no route for ${c.req.method} ${c.req.path}`),
    );
  });
  app.onError((error, c) => fail(c, error));
  return app;
}

/**
 * The validators of a route's request parts: each part is parsed with its schema and stored for
 * `c.req.valid(...)`. (Hono's `validator` would also parse forms and cookies, which this API has not.)
 */
function requestValidators(entry: ApiRoute): MiddlewareHandler[] {
  const request = entry.route.request;
  const validators: MiddlewareHandler[] = [];
  const part = (
    target: "param" | "query" | "header",
    read: (c: Context) => unknown,
    parse: (value: unknown, c: Context) => unknown,
  ) =>
    validators.push(async (c, next) => {
      c.req.addValidatedData(target, parse(read(c), c) as object);
      await next();
    });
  const params = request?.params as z.ZodType | undefined;
  if (params !== undefined) {
    part(
      "param",
      (c) => c.req.param(),
      (value, c) => {
        const parsed = params.safeParse(value);
        // An id no resource could have names no resource: the same 404 as any other unknown id.
        if (!parsed.success) throw new NotFoundError(`${c.req.path.slice(0, 256)} not found`);
        return parsed.data;
      },
    );
  }
  const query = request?.query as z.ZodType | undefined;
  if (query !== undefined) {
    part(
      "query",
      (c) => c.req.query(),
      (value) => parseRequest(query, value, { message: "invalid query parameters" }),
    );
  }
  const headers = request?.headers as z.ZodType | undefined;
  if (headers !== undefined) {
    part(
      "header",
      (c) => c.req.header(),
      (value) => parseRequest(headers, value, { message: "invalid request headers" }),
    );
  }
  const json = request?.body?.content["application/json"] as { schema?: z.ZodType } | undefined;
  const body = json?.schema;
  if (body !== undefined) {
    const parse =
      entry.parseBody ?? ((value: unknown) => parseRequest(body, value, { message: "invalid request body" }));
    validators.push(async (c, next) => {
      c.req.addValidatedData("json", parse(await readJson(c.req.raw)) as object);
      await next();
    });
  }
  return validators;
}

/**
 * Reads the body as JSON whatever its content type (clients forget the header; the schema decides).
 * An absent or non-JSON body is a 400 `invalid_json`, distinct from a JSON body that breaks the
 * schema (`validation_error`).
 */
async function readJson(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.trim() === "") {
    throw new InvalidJsonError("request body must be a JSON document", [
      { path: "", message: "body is empty" },
    ]);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new InvalidJsonError(
      "request body is not valid JSON",
      [{ path: "", message: (error as SyntaxError).message }],
      error,
    );
  }
  // Before anything recursive (the schema, stringify) walks it: thousands of levels overflow the stack.
  assertRequestDepth(body);
  return body;
}

/** On Lambda the request id is API Gateway's, so a client's report can be found in its logs. */
function lambdaRequestId(c: Context<ApiEnv>): string | undefined {
  const env = c.env as { requestContext?: { requestId?: unknown } } | undefined;
  const id = env?.requestContext?.requestId;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** `/tasks/{taskId}` → `/tasks/:taskId`. */
function honoPath(path: string): string {
  return path.replaceAll(/\{([^}]+)\}/g, ":$1");
}

/** The paths a template matches, for telling 405 from 404. */
function templatePattern(path: string): RegExp {
  const body = path
    .split("/")
    .map((segment) =>
      /^\{[^}]+\}$/.test(segment) ? "[^/]+" : segment.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("/");
  return new RegExp(`^${body}/?$`);
}
