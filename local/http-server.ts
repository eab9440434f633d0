import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";

/** Answers a GET of a non-API path (`dashboardResponse`), or undefined to leave it to the API. */
export type PageResponder = (
  pathname: string,
) => { status: number; headers: Readonly<Record<string, string>>; body: string } | undefined;

export type HttpApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** Largest body the local server reads (API Gateway's payload limit is 10 MB). */
const MAX_READ_BYTES = 10 * 1024 * 1024;

/**
 * Serves an API Gateway HTTP API (payload v2) handler over plain HTTP, translating each request into
 * the event API Gateway would send, so the local runtime runs the very handler Lambda runs.
 *
 * @example
 * const server = await serveHttpApi(handler, { port: 3000, host: "127.0.0.1" });
 * console.log(server.url);
 */
export async function serveHttpApi(
  handler: HttpApiHandler,
  options: { port: number; host: string; pages?: PageResponder },
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    // Pages (the dashboard) answer GETs of their own paths; everything else is the API's.
    const page =
      request.method === "GET"
        ? options.pages?.(new URL(request.url ?? "/", "http://x").pathname)
        : undefined;
    if (page) response.writeHead(page.status, page.headers).end(page.body);
    else void respond(handler, request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function respond(
  handler: HttpApiHandler,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  try {
    const body = await readBody(request);
    if (body === undefined) {
      writeJson(response, 413, {
        error: { code: "payload_too_large", message: `request body exceeds ${MAX_READ_BYTES} bytes` },
      });
      return;
    }
    const result = await handler(toHttpApiEvent(request, body));
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
    response.writeHead(result.statusCode ?? 200, headers);
    response.end(
      result.isBase64Encoded && result.body ? Buffer.from(result.body, "base64") : (result.body ?? ""),
    );
  } catch {
    // The handler is built never to throw; this is the last line of defence, with no internals.
    writeJson(response, 500, { error: { code: "internal_error", message: "internal error" } });
  }
}

function writeJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_READ_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Builds the API Gateway HTTP API payload v2 event for a request, as API Gateway documents it. */
export function toHttpApiEvent(request: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? "/", "http://localhost");
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    if (name === "cookie") cookies.push(...String(value).split(/;\s*/));
    else headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const queryStringParameters: Record<string, string> = {};
  for (const [name, value] of url.searchParams) {
    queryStringParameters[name] =
      queryStringParameters[name] === undefined ? value : `${queryStringParameters[name]},${value}`;
  }
  const method = request.method ?? "GET";
  const now = new Date();
  const isText = /json|text|xml|x-www-form-urlencoded/.test(headers["content-type"] ?? "application/json");
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(url.searchParams.size > 0 ? { queryStringParameters } : {}),
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: headers.host ?? "localhost",
      domainPrefix: "local",
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: isText ? body.toString("utf8") : body.toString("base64") } : {}),
    isBase64Encoded: body.length > 0 && !isText,
  };
}
