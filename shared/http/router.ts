import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { NotFoundError, PayloadTooLargeError } from "#shared/domain/errors";
import { errorResult, type HttpLogger, MethodNotAllowedError } from "./errors.ts";
import {
  type ApiOperation,
  buildOpenApiDocument,
  DEFAULT_OPENAPI_INFO,
  type OpenApiDocument,
  type OpenApiInfo,
} from "./openapi.ts";
import { HealthResponseSchema } from "./schemas.ts";
import { type TaskSupervisor, taskRoutes } from "./task-routes.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** A request as a route sees it: matched, size-checked, body decoded, header names lower-cased. */
export interface ApiRequest {
  readonly method: HttpMethod;
  /** The path the route matched, without a named stage's prefix. */
  readonly path: string;
  /** Path template parameters, URL-decoded: `{taskId}` → `params.taskId`. */
  readonly params: Readonly<Record<string, string>>;
  /** Query parameters; a repeated parameter arrives comma-joined, as API Gateway sends it. */
  readonly query: Readonly<Record<string, string>>;
  /** Header names lower-cased, so lookups are case-insensitive: `headers["idempotency-key"]`. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as text (base64 bodies decoded), or undefined when there is none. */
  readonly body: string | undefined;
  readonly requestId: string;
  /** The raw event, for routes that need what the fields above leave out (authorizer claims, …). */
  readonly event: APIGatewayProxyEventV2;
}

/** What a route returns; the router serializes `body` as JSON and adds `content-type`. */
export interface ApiResponse {
  readonly statusCode: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * One route: a method, an OpenAPI-style path template (`/tasks/{taskId}/cancel`), its documentation
 * and its handler. A handler signals failure by throwing an `AgentryError`; anything else it throws
 * becomes a generic 500.
 *
 * @example
 * const listAgents: ApiRoute = {
 *   method: "GET",
 *   path: "/agents",
 *   operation: { operationId: "listAgents", summary: "List agents", responses: { "200": { description: "Agents", schema: AgentListSchema } } },
 *   handle: async () => ({ statusCode: 200, body: { items: await registry.list({}) } }),
 * };
 */
export interface ApiRoute {
  readonly method: HttpMethod;
  readonly path: string;
  readonly operation: ApiOperation;
  handle(request: ApiRequest): Promise<ApiResponse>;
}

/** The routes a router serves; later route modules (`/agents`, `/jobs`, …) are tables of their own. */
export type ApiRouteTable = readonly ApiRoute[];

export interface ApiRouterOptions {
  readonly supervisor: TaskSupervisor;
  /** Routes served next to the task routes, e.g. `agentRoutes(registry)`. Documented in `/openapi.json`. */
  readonly extraRoutes?: ApiRouteTable;
  /**
   * Largest request body, checked before it is parsed.
   * @default DEFAULT_MAX_BODY_BYTES - one 256 KiB task input with room to spare, or a batch of small ones
   */
  readonly maxBodyBytes?: number;
  /** Receives every error that became a 5xx. */
  readonly logger?: HttpLogger;
  /** @default DEFAULT_OPENAPI_INFO */
  readonly openApiInfo?: OpenApiInfo;
}

/** The router: a never-throwing API Gateway HTTP API (payload v2) handler, and the routes it serves. */
export interface ApiRouter {
  (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2>;
  readonly routes: ApiRouteTable;
}

/** 1 MiB plus 64 KiB for the JSON around the inputs (field names, escaping, a batch's array). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024 + 64 * 1024;

/**
 * Builds the HTTP API router: the v1 task routes, `GET /health`, `GET /openapi.json`, and any extra
 * routes. It matches on `requestContext.http.method` and `rawPath`, answers 404 for an unknown path
 * and 405 (with `Allow`) for a known path with another method, refuses an oversized body with 413
 * before reading it, and maps every error to the error envelope: it never throws.
 *
 * @example
 * const router = createApiRouter({ supervisor, logger, extraRoutes: agentRoutes(registry) });
 * export const handler = (event: APIGatewayProxyEventV2) => router(event);
 */
export function createApiRouter(options: ApiRouterOptions): ApiRouter {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let document: OpenApiDocument | undefined;
  const platformRoutes: ApiRouteTable = [
    {
      method: "GET",
      path: "/health",
      operation: {
        operationId: "getHealth",
        summary: "Liveness check",
        description:
          "Answers without touching any dependency, so it says the API is up, not that its stores are.",
        tags: ["platform"],
        responses: { "200": { description: "The API is up", schema: HealthResponseSchema } },
      },
      handle: async () => ({ statusCode: 200, body: { status: "ok" } }),
    },
    {
      method: "GET",
      path: "/openapi.json",
      operation: {
        operationId: "getOpenApiDocument",
        summary: "This OpenAPI 3.1 document",
        tags: ["platform"],
        responses: { "200": { description: "The OpenAPI document" } },
      },
      // Built on first request: cold starts of every other route do not pay for schema generation.
      handle: async () => {
        document ??= buildOpenApiDocument(routes, { info: options.openApiInfo ?? DEFAULT_OPENAPI_INFO });
        return { statusCode: 200, body: document };
      },
    },
  ];
  const routes: ApiRouteTable = [
    ...taskRoutes(options.supervisor),
    ...(options.extraRoutes ?? []),
    ...platformRoutes,
  ];
  const compiled = compileRoutes(routes);

  const router = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const requestId = event?.requestContext?.requestId ?? "unknown";
    let method: string | undefined;
    let path: string | undefined;
    try {
      method = event.requestContext.http.method.toUpperCase();
      path = routablePath(event);
      const { route, params } = matchRoute(compiled, method, path);
      const request: ApiRequest = {
        method: route.method,
        path,
        params,
        query: queryOf(event),
        headers: lowerCaseHeaders(event.headers),
        body: decodeBody(event, maxBodyBytes),
        requestId,
        event,
      };
      const response = await route.handle(request);
      return {
        statusCode: response.statusCode,
        headers: { ...response.headers, "content-type": "application/json" },
        body: JSON.stringify(response.body),
      };
    } catch (error) {
      return errorResult(error, {
        requestId,
        ...(options.logger !== undefined ? { logger: options.logger } : {}),
        ...(method !== undefined ? { method } : {}),
        ...(path !== undefined ? { path } : {}),
      });
    }
  };
  return Object.assign(router, { routes });
}

interface CompiledRoute {
  readonly route: ApiRoute;
  /** Literal segments as themselves, parameters as `{ param: name }`. */
  readonly segments: readonly (string | { readonly param: string })[];
}

function compileRoutes(routes: ApiRouteTable): CompiledRoute[] {
  const seen = new Set<string>();
  const compiled = routes.map((route): CompiledRoute => {
    const key = `${route.method} ${route.path}`;
    // Two handlers for one method and path is a wiring mistake; fail at cold start, not per request.
    if (seen.has(key)) throw new Error(`duplicate route ${key}`);
    seen.add(key);
    return {
      route,
      segments: splitPath(route.path).map((segment) => {
        const param = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(segment)?.[1];
        return param === undefined ? segment : { param };
      }),
    };
  });
  // Most specific first: at the first segment where two templates differ, a literal beats a parameter,
  // so `/tasks/stats` would win over `/tasks/{taskId}` whatever the order routes were given in.
  return compiled.sort((a, b) => {
    for (let i = 0; i < Math.min(a.segments.length, b.segments.length); i++) {
      const aLiteral = typeof a.segments[i] === "string";
      const bLiteral = typeof b.segments[i] === "string";
      if (aLiteral !== bLiteral) return aLiteral ? -1 : 1;
    }
    return 0;
  });
}

function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  path: string,
): { route: ApiRoute; params: Record<string, string> } {
  const segments = splitPath(path);
  const allowed = new Set<string>();
  for (const candidate of routes) {
    const params = matchSegments(candidate.segments, segments);
    if (params === undefined) continue;
    if (candidate.route.method === method) return { route: candidate.route, params };
    allowed.add(candidate.route.method);
  }
  if (allowed.size > 0) throw new MethodNotAllowedError(method, path, [...allowed].sort());
  throw new NotFoundError(`no route for ${method} ${path}`);
}

function matchSegments(
  template: CompiledRoute["segments"],
  segments: readonly string[],
): Record<string, string> | undefined {
  if (template.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, expected] of template.entries()) {
    const actual = segments[index] ?? "";
    if (typeof expected === "string") {
      if (expected !== actual) return undefined;
      continue;
    }
    const decoded = decodeSegment(actual);
    if (decoded === undefined || decoded === "") return undefined;
    params[expected.param] = decoded;
  }
  return params;
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A malformed escape (`%E0`) cannot name anything we serve; it matches no route.
    return undefined;
  }
}

/** `/tasks/` and `/tasks` are one resource; empty segments from `//` are dropped the same way. */
function splitPath(path: string): string[] {
  return path.split("/").filter((segment) => segment !== "");
}

/**
 * The path to route on. On a named stage (not `$default`) API Gateway keeps the stage in `rawPath`
 * (`/prod/tasks`), so it is removed; the routes then work on any stage.
 */
function routablePath(event: APIGatewayProxyEventV2): string {
  const rawPath = event.rawPath || event.requestContext.http.path || "/";
  const stage = event.requestContext.stage;
  if (stage && stage !== "$default") {
    const prefix = `/${stage}`;
    if (rawPath === prefix) return "/";
    if (rawPath.startsWith(`${prefix}/`)) return rawPath.slice(prefix.length);
  }
  return rawPath;
}

function queryOf(event: APIGatewayProxyEventV2): Record<string, string> {
  const query: Record<string, string> = {};
  if (event.queryStringParameters) {
    for (const [name, value] of Object.entries(event.queryStringParameters)) {
      if (value !== undefined) query[name] = value;
    }
    return query;
  }
  // Some event sources fill only rawQueryString; read it the way API Gateway would have.
  for (const [name, value] of new URLSearchParams(event.rawQueryString ?? "")) {
    query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
  }
  return query;
}

function lowerCaseHeaders(headers: APIGatewayProxyEventV2["headers"] | undefined): Record<string, string> {
  const lowered: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    lowered[key] = lowered[key] === undefined ? value : `${lowered[key]},${value}`;
  }
  return lowered;
}

/** The body as text; the size limit is checked on the bytes, before anything parses them. */
function decodeBody(event: APIGatewayProxyEventV2, maxBodyBytes: number): string | undefined {
  if (event.body === undefined || event.body === null) return undefined;
  const tooLarge = (size: number) =>
    new PayloadTooLargeError(`request body is ${size} bytes; the limit is ${maxBodyBytes} bytes`);
  if (!event.isBase64Encoded) {
    const size = Buffer.byteLength(event.body, "utf8");
    if (size > maxBodyBytes) throw tooLarge(size);
    return event.body;
  }
  // API Gateway's base64 has no line breaks, so the decoded size is known without decoding a huge body.
  const decodedSize = Math.floor((event.body.replace(/=+$/, "").length * 3) / 4);
  if (decodedSize > maxBodyBytes) throw tooLarge(decodedSize);
  const bytes = Buffer.from(event.body, "base64");
  if (bytes.length > maxBodyBytes) throw tooLarge(bytes.length);
  return bytes.toString("utf8");
}
