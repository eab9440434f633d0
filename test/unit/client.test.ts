import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { AgentryClient } from "#shared/client/client";
import {
  AgentryApiError,
  ApiUnreachableError,
  UnexpectedResponseError,
  WaitTimeoutError,
} from "#shared/client/errors";

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}
type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

/** A real HTTP server that answers from a script, one entry per request, and records what it got. */
async function scriptedServer(script: (seen: Seen, index: number) => Answer) {
  const seen: Seen[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry = {
        method: request.method ?? "",
        url: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(entry);
      const answer = script(entry, seen.length - 1);
      response.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      response.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const task = (status: string, extra: Record<string, unknown> = {}) => ({
  taskId: "t-1",
  taskType: "echo",
  status,
  input: { value: 1 },
  requiredCapability: "diagnostics",
  priority: 0,
  attempts: 1,
  maxAttempts: 3,
  cancelRequested: false,
  version: 2,
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
  metadata: {},
  ...extra,
});
const fast = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 };

describe("AgentryClient", () => {
  const servers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const serve = async (script: (seen: Seen, index: number) => Answer) => {
    const server = await scriptedServer(script);
    servers.push(server);
    return server;
  };

  it("throws the error envelope as an AgentryApiError with code, details and request id", async () => {
    const server = await serve(() => ({
      status: 400,
      body: {
        error: {
          code: "validation_error",
          message: "invalid task",
          details: [{ path: "taskType", message: "Required" }],
          requestId: "r-1",
        },
      },
    }));
    const client = new AgentryClient({ baseUrl: server.url, retry: fast });

    const error = await client.submitTask({ taskType: "x", input: 1 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AgentryApiError);
    expect(error).toMatchObject({
      status: 400,
      code: "validation_error",
      message: "invalid task",
      details: [{ path: "taskType", message: "Required" }],
      requestId: "r-1",
    });
    expect(server.seen).toHaveLength(1); // a 400 is not retried
  });

  it("retries a read on 503 and 429 (honouring Retry-After), then returns the parsed answer", async () => {
    const server = await serve((_, index) =>
      index === 0
        ? { status: 503, body: { error: { code: "dependency_error", message: "try later" } } }
        : index === 1
          ? { status: 429, body: { message: "Too Many Requests" }, headers: { "retry-after": "0" } }
          : { status: 200, body: task("completed", { unknownExtra: "dropped" }) },
    );
    const client = new AgentryClient({ baseUrl: server.url, retry: fast });

    const got = await client.getTask("t-1");

    expect(server.seen.map((s) => s.url)).toEqual(["/tasks/t-1", "/tasks/t-1", "/tasks/t-1"]);
    expect(got.status).toBe("completed");
    expect(got).not.toHaveProperty("unknownExtra");
  });

  it("gives up after maxAttempts with the last error", async () => {
    const server = await serve(() => ({ status: 502, body: { message: "Bad Gateway" } }));
    const client = new AgentryClient({ baseUrl: server.url, retry: { ...fast, maxAttempts: 3 } });

    await expect(client.statistics()).rejects.toMatchObject({ status: 502, code: "http_502" });
    expect(server.seen).toHaveLength(3);
  });

  it("retries a single submission with the same Idempotency-Key, so the server can deduplicate it", async () => {
    const server = await serve((_, index) =>
      index === 0
        ? { status: 500, body: { error: { code: "internal_error", message: "x" } } }
        : { status: 202, body: { tasks: [{ taskId: "t-1", status: "submitted" }] } },
    );
    const client = new AgentryClient({ baseUrl: server.url, retry: fast });

    expect(await client.submitTask({ taskType: "echo", input: { value: 1 } })).toEqual({
      taskId: "t-1",
      status: "submitted",
    });
    const [first, second] = server.seen;
    expect(first?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(second?.headers["idempotency-key"]).toBe(first?.headers["idempotency-key"]);
    expect(JSON.parse(second?.body ?? "")).toEqual({ taskType: "echo", input: { value: 1 } });
  });

  it("does not retry a write the server cannot deduplicate on 5xx (cancel, job submission)", async () => {
    const server = await serve(() => ({
      status: 500,
      body: { error: { code: "internal_error", message: "x" } },
    }));
    const client = new AgentryClient({ baseUrl: server.url, retry: fast });

    await expect(client.cancelTask("t-1")).rejects.toBeInstanceOf(AgentryApiError);
    await expect(
      client.submitJob({
        tasks: [{ taskType: "echo", input: 1 }],
        aggregation: { policy: "all", reducer: "collect" },
      }),
    ).rejects.toBeInstanceOf(AgentryApiError);
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /tasks/t-1/cancel", "POST /jobs"]);
  });

  it("refuses a 2xx answer that breaks the response schema", async () => {
    const server = await serve(() => ({ status: 200, body: { taskId: "t-1", status: "exploded" } }));
    const client = new AgentryClient({ baseUrl: server.url, retry: fast });

    await expect(client.getTask("t-1")).rejects.toThrow(UnexpectedResponseError);
    await expect(client.getTask("t-1")).rejects.toThrow(
      /getTask: the 200 response does not match its schema: .*status: Invalid option/,
    );
  });

  it("waitForTask reads until the task ends; WaitTimeoutError when it does not in time", async () => {
    const server = await serve((seen, index) =>
      seen.url === "/tasks/t-1"
        ? { status: 200, body: task(index < 2 ? "working" : "completed") }
        : { status: 200, body: task("working", { taskId: "t-2" }) },
    );
    const client = new AgentryClient({ baseUrl: server.url, retry: fast });

    expect((await client.waitForTask("t-1", { intervalMs: 5 })).status).toBe("completed");
    expect(server.seen).toHaveLength(3);
    const timeout = await client
      .waitForTask("t-2", { intervalMs: 5, timeoutMs: 50 })
      .catch((e: unknown) => e);
    expect(timeout).toBeInstanceOf(WaitTimeoutError);
    expect(timeout).toMatchObject({
      code: "wait_timeout",
      last: expect.objectContaining({ status: "working" }),
    });
  });

  it("sends a bearer token in JWT mode and nothing in the local mode", async () => {
    const server = await serve(() => ({ status: 200, body: { status: "ok" } }));

    await new AgentryClient({ baseUrl: server.url, auth: { type: "bearer", token: "tok-1" } }).health();
    await new AgentryClient({ baseUrl: server.url }).health();

    expect(server.seen.map((s) => s.headers.authorization)).toEqual(["Bearer tok-1", undefined]);
  });

  it("reports an unreachable API as ApiUnreachableError after retrying reads", async () => {
    const server = await serve(() => ({ status: 200, body: {} }));
    const { url } = server;
    await server.close();
    servers.length = 0;

    const error = await new AgentryClient({ baseUrl: url, retry: fast }).health().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ApiUnreachableError);
    expect((error as Error).message).toContain(`cannot reach ${url}`);
  });
});
