import { readFileSync } from "node:fs";
import type { APIGatewayProxyEventV2 } from "aws-lambda";

const FIXTURE = new URL("../events/apigw/http-api-v2.json", import.meta.url);
const base = JSON.parse(readFileSync(FIXTURE, "utf8")) as APIGatewayProxyEventV2;
let sequence = 0;

export interface HttpApiRequest {
  readonly method: string;
  /** Path with an optional query string: `/tasks?status=submitted`. */
  readonly path: string;
  /** Added to the fixture's headers; names are lower-cased as API Gateway does. */
  readonly headers?: Readonly<Record<string, string>>;
  /** A string is sent as is; anything else as its JSON. */
  readonly body?: unknown;
  readonly base64?: boolean;
  /** The API stage; a named stage prefixes the path, as API Gateway does. @default "$default" */
  readonly stage?: string;
}

/**
 * An API Gateway HTTP API (payload v2) event: a clone of the recorded fixture with the request's
 * method, path, query, headers and body filled in the way API Gateway fills them for the API's
 * `ANY /{proxy+}` route: lower-cased header names, repeated query parameters comma-joined, no
 * `queryStringParameters` without a query.
 *
 * @example
 * const event = httpApiEvent({ method: "POST", path: "/tasks", body: { taskType: "echo", input: 1 } });
 */
export function httpApiEvent(request: HttpApiRequest): APIGatewayProxyEventV2 {
  const event = structuredClone(base);
  const url = new URL(request.path, "https://api.example.com");
  const stage = request.stage ?? "$default";
  const rawPath = stage === "$default" ? url.pathname : `/${stage}${url.pathname}`;
  const body =
    request.body === undefined
      ? undefined
      : typeof request.body === "string"
        ? request.body
        : JSON.stringify(request.body);

  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = query[name] === undefined ? value : `${query[name]},${value}`;

  const headers: Record<string, string | undefined> = { ...event.headers };
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  headers["content-length"] = String(body === undefined ? 0 : Buffer.byteLength(body, "utf8"));

  sequence += 1;
  return {
    ...event,
    rawPath,
    rawQueryString: url.search.slice(1),
    headers,
    ...(url.search.length > 1 ? { queryStringParameters: query } : {}),
    // The API's one route is `ANY /{proxy+}`: API Gateway passes the path below it as `proxy`.
    pathParameters: { proxy: url.pathname.replace(/^\//, "") },
    requestContext: {
      ...event.requestContext,
      http: { ...event.requestContext.http, method: request.method, path: rawPath },
      requestId: `${event.requestContext.requestId}-${sequence}`,
      stage,
    },
    ...(body === undefined
      ? {}
      : { body: request.base64 ? Buffer.from(body, "utf8").toString("base64") : body }),
    isBase64Encoded: request.base64 ?? false,
  };
}
