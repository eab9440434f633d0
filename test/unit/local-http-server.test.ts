import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, serveApi } from "#local/http-server";
import { createApiApp } from "#shared/http/app";
import { taskRoutes } from "#shared/http/task-routes";
import { recordingLogger } from "#test/support/api-app";
import { createCoreFixture } from "#test/support/core-fixture";

/** A small limit, so that "at most the limit" is far from the 10 MB the client offers. */
const LIMIT = 64 * 1024;
const TEN_MB = 10 * 1024 * 1024;

let server: RunningServer | undefined;
const serverSockets: Socket[] = [];

afterEach(async () => {
  await server?.close();
  server = undefined;
  serverSockets.length = 0;
});

async function start(): Promise<RunningServer> {
  const { supervisor } = createCoreFixture();
  const app = createApiApp({
    routes: taskRoutes({ supervisor }),
    logger: recordingLogger(),
    maxBodyBytes: LIMIT,
  });
  server = await serveApi(app, { port: 0, host: "127.0.0.1" });
  server.server.on("connection", (socket) => serverSockets.push(socket));
  return server;
}

/** A raw connection, so the test decides exactly which bytes are sent and when. */
function rawClient(url: string) {
  const { port } = new URL(url);
  const socket = connect(Number(port), "127.0.0.1");
  let received = "";
  let closed = false;
  socket.on("data", (chunk) => {
    received += chunk.toString("latin1");
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    closed = true;
  });
  return {
    socket,
    received: () => received,
    closed: () => closed,
    async until(predicate: () => boolean, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`timed out; received so far: ${received.slice(0, 300)}`);
        await sleep(10);
      }
    },
  };
}

describe("local HTTP server body limits", () => {
  it("refuses a declared 10 MB body with 413 before reading any of it", async () => {
    const { url } = await start();
    const client = rawClient(url);

    // Headers only: a server that waited for the body would never answer.
    client.socket.write(
      `POST /tasks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${TEN_MB}\r\n\r\n`,
    );
    await client.until(() => client.received().includes("payload_too_large"), 10_000);

    expect(client.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(serverSockets).toHaveLength(1);
    expect(serverSockets[0]?.bytesRead).toBeLessThan(1024);
    client.socket.destroy();
  });

  it("stops a slow, never-finishing 10 MB upload at the limit and closes the connection", async () => {
    const { url } = await start();
    const client = rawClient(url);
    client.socket.write(
      "POST /tasks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let sent = 0;
    let readWhenAnswered: number | undefined;
    const chunk = Buffer.alloc(16 * 1024, "a");
    // Trickle the body out and never send the final chunk: the upload does not finish on its own.
    while (sent < TEN_MB && !client.closed()) {
      if (readWhenAnswered === undefined && client.received().includes("payload_too_large")) {
        readWhenAnswered = serverSockets[0]?.bytesRead;
      }
      client.socket.write(`${chunk.length.toString(16)}\r\n`);
      client.socket.write(chunk);
      client.socket.write("\r\n");
      sent += chunk.length;
      await sleep(20);
    }

    expect(client.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(readWhenAnswered).toBeDefined();
    // What the server took off the socket by the time it answered: the limit plus socket/stream buffers.
    expect(readWhenAnswered).toBeLessThanOrEqual(LIMIT + 256 * 1024);
    // It did not keep reading until the client gave up: the connection was closed on the client.
    expect(client.closed()).toBe(true);
    expect(sent).toBeLessThan(TEN_MB);
  }, 60_000);

  it("serves a body within the limit", async () => {
    const { url } = await start();

    const response = await fetch(`${url}/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ taskType: "echo", input: "a".repeat(LIMIT / 2) }),
    });

    expect(response.status).toBe(202);
  });
});
