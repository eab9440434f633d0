import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";

/** What the server serves: a Hono app, or anything else with a fetch handler. */
export interface FetchApp {
  fetch(request: Request): Response | Promise<Response>;
}

export interface ServeOptions {
  readonly port: number;
  readonly host: string;
  /**
   * Pages the local runtime serves next to the API (the dashboard at `/`): asked first for every
   * request, an `undefined` answer passes the request on to the app.
   * @default none
   */
  readonly pages?: (request: Request) => Response | undefined | Promise<Response | undefined>;
  /** Open connections beyond this are refused. @default 256 */
  readonly maxConnections?: number;
  /** Whole request, body included; a slower upload is cut off with 408. @default 30_000 */
  readonly requestTimeoutMs?: number;
  /** Request line and headers. @default 10_000 */
  readonly headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. @default 5_000 */
  readonly keepAliveTimeoutMs?: number;
}

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Serves the API app over HTTP with `@hono/node-server`: the same app Lambda serves, with Node's
 * request objects turned into fetch `Request`s whose body streams from the socket. Nothing here reads
 * a body: the app's body limit refuses a declared `Content-Length` above it before reading, and stops
 * an undeclared one as soon as the limit is passed, so no more than the limit is ever held. After an
 * early answer (413), the rest of an upload is drained for at most 500 ms and the connection closed
 * (node-server's `autoCleanupIncoming`), so the client reads the answer instead of a reset.
 *
 * @example
 * const server = await serveApi(app, { port: 3000, host: "127.0.0.1" });
 * console.log(server.url);
 */
export async function serveApi(app: FetchApp, options: ServeOptions): Promise<RunningServer> {
  const pages = options.pages;
  const listener = getRequestListener(
    pages === undefined
      ? (request) => app.fetch(request)
      : async (request) => (await pages(request)) ?? app.fetch(request),
  );
  const server = createServer(
    {
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    },
    listener,
  );
  server.maxConnections = options.maxConnections ?? 256;
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
