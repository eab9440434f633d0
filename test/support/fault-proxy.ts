import { Agent, createServer, request, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the proxy does with one request: pass it on, answer it with an error, or cut the connection. */
export type Fault =
  | "pass"
  | "drop"
  | { readonly status: number; readonly body: unknown; readonly headers?: Record<string, string> };

export interface FaultProxy {
  readonly url: string;
  /** Decides per request (by its `X-Amz-Target`) from now on; `undefined` passes everything. */
  setFault(decide: ((target: string) => Fault) | undefined): void;
  /** Requests answered with a fault or dropped so far, by target. */
  readonly faulted: readonly string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of an emulator that can fail requests on demand, for faults the emulators
 * cannot produce themselves: SQS throttling (an error answer the SDK reads as `RequestThrottled`) and
 * a DynamoDB outage (connections cut). Everything else is forwarded unchanged.
 *
 * @example
 * const proxy = await startFaultProxy(inject("dynamoEndpoint"));
 * proxy.setFault(() => "drop"); // DynamoDB is down
 * proxy.setFault(undefined); // and back
 */
export async function startFaultProxy(upstreamUrl: string): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  const faulted: string[] = [];
  let decide: ((target: string) => Fault) | undefined;
  const server: Server = createServer((req, res) => {
    const target = String(req.headers["x-amz-target"] ?? "unknown");
    const fault = decide?.(target) ?? "pass";
    if (fault !== "pass") {
      faulted.push(target);
      req.resume();
      if (fault === "drop") {
        req.socket.destroy();
        return;
      }
      res.writeHead(fault.status, { "content-type": "application/x-amz-json-1.0", ...fault.headers });
      res.end(JSON.stringify(fault.body));
      return;
    }
    const forward = request(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    res.on("close", () => {
      if (!res.writableFinished) forward.destroy();
    });
    forward.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    faulted,
    setFault(next) {
      decide = next;
      // Kept-alive connections of a "down" service must not survive the outage's start.
      if (next !== undefined) for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

/** SQS's answer when a caller exceeds its request rate (awsJson protocol). */
export const SQS_THROTTLED: Fault = {
  status: 400,
  body: { __type: "com.amazonaws.sqs#RequestThrottled", message: "Rate exceeded" },
  headers: { "x-amzn-query-error": "RequestThrottled;Sender" },
};
