import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dashboardResponse } from "#local/dashboard/index";
import { type ClientAuth, requestAuthorizer } from "#shared/client/client";

export interface DashboardProxyOptions {
  /** The API the dashboard shows: a deployed stack's URL (stage included) or a local runtime's. */
  readonly target: string;
  /** @default SigV4 with the default credential chain for an execute-api URL, none otherwise */
  readonly auth?: ClientAuth | undefined;
  /** 0 picks a free port. */
  readonly port: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

export interface DashboardProxy {
  readonly url: string;
  close(): Promise<void>;
}

/** Response headers passed back to the page; nothing else of the API's answer reaches it. */
const PASSED_HEADERS = ["content-type", "retry-after"] as const;

/**
 * `agentry dashboard`: serves the dashboard page on localhost and forwards its API calls to
 * `target`, signed here with the user's AWS credentials (or a bearer token), so no credential ever
 * reaches the browser and nothing new is deployed. It forwards GETs only — the dashboard reads,
 * and a page elsewhere cannot make the user's credentials write — and only requests addressed to
 * its own host name, so a DNS-rebinding page cannot reach it either.
 *
 * @example
 * const proxy = await startDashboardProxy({ target: "https://abc.execute-api.eu-west-1.amazonaws.com", port: 4000 });
 * console.log(`${proxy.url}/`);
 * await proxy.close();
 */
export async function startDashboardProxy(options: DashboardProxyOptions): Promise<DashboardProxy> {
  const target = options.target.replace(/\/+$/, "");
  const authorize = requestAuthorizer(target, options.auth);
  const send = options.fetch ?? globalThis.fetch;
  const host = options.host ?? "127.0.0.1";
  let allowedHosts: ReadonlySet<string> = new Set();

  const server = createServer((request, response) => {
    void forward(request, response).catch((error: unknown) => {
      reply(response, 502, { error: { code: "bad_gateway", message: describe(error) } });
    });
  });

  async function forward(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!allowedHosts.has(request.headers.host ?? "")) {
      return reply(response, 421, { error: { code: "misdirected", message: "unexpected Host header" } });
    }
    const url = new URL(request.url ?? "/", "http://proxy");
    if (request.method !== "GET") {
      response.setHeader("allow", "GET");
      return reply(response, 405, { error: { code: "method_not_allowed", message: "the proxy only reads" } });
    }
    const page = dashboardResponse(url.pathname);
    if (page) {
      response.writeHead(page.status, page.headers).end(page.body);
      return;
    }
    const upstream = `${target}${url.pathname}${url.search}`;
    const headers = await authorize({
      method: "GET",
      url: upstream,
      headers: { accept: "application/json" },
    });
    const answer = await send(upstream, { method: "GET", headers });
    const passed: Record<string, string> = {};
    for (const name of PASSED_HEADERS) {
      const value = answer.headers.get(name);
      if (value !== null) passed[name] = value;
    }
    response.writeHead(answer.status, passed).end(Buffer.from(await answer.arrayBuffer()));
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  allowedHosts = new Set([`${host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]);
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return void response.end();
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
