import { afterEach, describe, expect, it } from "vitest";
import { startDashboardProxy } from "#cli/dashboard-proxy";
import { AgentryClient } from "#shared/client/client";
import { AgentryApiError } from "#shared/client/errors";
import { createSigV4Signer, executeApiRegion } from "#shared/client/sigv4";
import { type SigV4StandIn, startSigV4StandIn, verify } from "#test/support/sigv4-stand-in";

/** The AWS Signature Version 4 test suite's credentials, scope and time. */
const SUITE = {
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
  region: "us-east-1",
  service: "service",
  date: new Date("2015-08-30T12:36:00Z"),
};
const SUITE_SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

describe("SigV4 signing against the AWS test suite", () => {
  const sign = createSigV4Signer({
    region: SUITE.region,
    service: SUITE.service,
    credentials: SUITE.credentials,
  });

  it("get-vanilla", async () => {
    const headers = await sign(
      { method: "GET", url: "https://example.amazonaws.com/", headers: {} },
      { signingDate: SUITE.date },
    );

    expect(headers["x-amz-date"]).toBe("20150830T123600Z");
    expect(headers.authorization).toBe(
      `AWS4-HMAC-SHA256 Credential=${SUITE_SCOPE}, SignedHeaders=host;x-amz-date, ` +
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
  });

  it("get-vanilla-query-order-key-case: the query is sorted before signing", async () => {
    const headers = await sign(
      { method: "GET", url: "https://example.amazonaws.com/?Param2=value2&Param1=value1", headers: {} },
      { signingDate: SUITE.date },
    );

    expect(headers.authorization).toMatch(
      /Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500$/,
    );
  });

  it("the stand-in's own verifier accepts the suite's get-vanilla request and refuses it altered", () => {
    const request = {
      method: "GET",
      url: "/",
      headers: {
        host: "example.amazonaws.com",
        "x-amz-date": "20150830T123600Z",
        authorization:
          `AWS4-HMAC-SHA256 Credential=${SUITE_SCOPE}, SignedHeaders=host;x-amz-date, ` +
          "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      },
    };
    const options = { ...SUITE.credentials, region: SUITE.region, service: SUITE.service };

    expect(verify(request, "", options, SUITE.date)).toBeUndefined();
    expect(verify({ ...request, url: "/other" }, "", options, SUITE.date)).toBe("signature does not match");
    expect(verify(request, "", options, new Date("2015-08-30T12:46:00Z"))).toBe("signature expired");
  });

  it("reads the region of an execute-api URL and of no other", () => {
    expect(executeApiRegion("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod")).toBe("eu-west-1");
    expect(executeApiRegion("https://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/")).toBe(
      "cn-north-1",
    );
    expect(executeApiRegion("http://127.0.0.1:3000")).toBeUndefined();
    expect(executeApiRegion("https://execute-api.eu-west-1.amazonaws.com.evil.example/")).toBeUndefined();
  });
});

describe("SigV4 against a local stand-in that verifies signatures", () => {
  const credentials = {
    accessKeyId: "AKIASTANDIN000000001",
    secretAccessKey: "stand-in/secret+key=0123456789abcdefghij",
    sessionToken: "session-token-of-the-stand-in",
  };
  let standIn: SigV4StandIn | undefined;
  const closers: (() => Promise<void>)[] = [];

  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await standIn?.close();
    standIn = undefined;
  });

  const task = (taskId: string) => ({
    taskId,
    taskType: "analyze_text",
    status: "completed",
    input: { text: "Agents talk." },
    requiredCapability: "text-analysis",
    priority: 0,
    attempts: 1,
    maxAttempts: 3,
    cancelRequested: false,
    version: 3,
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:00.010Z",
    metadata: {},
  });

  it("accepts the client's signed reads and writes: query, encoded path, body, session token", async () => {
    standIn = await startSigV4StandIn({
      ...credentials,
      region: "eu-west-1",
      respond: ({ method, path }) =>
        method === "POST"
          ? { status: 202, body: { tasks: [{ taskId: "t-1", status: "submitted" }] } }
          : path === "/tasks"
            ? { status: 200, body: { items: [] } }
            : { status: 200, body: task(decodeURIComponent(path.slice("/tasks/".length))) },
    });
    const client = new AgentryClient({
      baseUrl: standIn.url,
      auth: { type: "sigv4", region: "eu-west-1", credentials },
    });

    await client.listTasks({ status: "completed", limit: 5, taskType: "analyze text+more" });
    expect((await client.getTask("id with space/and slash")).taskId).toBe("id with space/and slash");
    await client.submitTask({ taskType: "analyze_text", input: { text: "Agents talk. ünïcode ✓" } });

    expect(standIn.requests).toEqual([
      expect.objectContaining({ method: "GET", verified: true }),
      expect.objectContaining({
        method: "GET",
        path: "/tasks/id%20with%20space%2Fand%20slash",
        verified: true,
      }),
      expect.objectContaining({ method: "POST", path: "/tasks", verified: true }),
    ]);
  });

  it("is refused with the wrong secret, and the 403 is a typed error", async () => {
    standIn = await startSigV4StandIn({ ...credentials, region: "eu-west-1" });
    const client = new AgentryClient({
      baseUrl: standIn.url,
      auth: { type: "sigv4", region: "eu-west-1", credentials: { ...credentials, secretAccessKey: "wrong" } },
    });

    const error = await client.health().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AgentryApiError);
    expect(error).toMatchObject({ status: 403, code: "http_403", message: "signature does not match" });
    expect(standIn.requests).toHaveLength(1); // a 403 is not retried
  });

  it("agentry dashboard's proxy signs what it forwards; the browser side sends no credentials", async () => {
    standIn = await startSigV4StandIn({
      ...credentials,
      region: "eu-west-1",
      respond: () => ({ status: 200, body: { status: "ok" } }),
    });
    const proxy = await startDashboardProxy({
      target: standIn.url,
      auth: { type: "sigv4", region: "eu-west-1", credentials },
      port: 0,
    });
    closers.push(() => proxy.close());

    const page = await fetch(`${proxy.url}/`);
    const api = await fetch(`${proxy.url}/health?probe=1`);
    const write = await fetch(`${proxy.url}/tasks`, { method: "POST", body: "{}" });

    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>Agentry");
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ status: "ok" });
    expect(write.status).toBe(405);
    expect(standIn.requests).toEqual([{ method: "GET", path: "/health?probe=1", verified: true }]);
  });

  it("the proxy refuses a request for another host name (DNS rebinding)", async () => {
    standIn = await startSigV4StandIn({ ...credentials, region: "eu-west-1" });
    const proxy = await startDashboardProxy({
      target: standIn.url,
      auth: { type: "sigv4", region: "eu-west-1", credentials },
      port: 0,
    });
    closers.push(() => proxy.close());
    const { port } = new URL(proxy.url);

    const response = await new Promise<number>((resolve, reject) => {
      import("node:http").then(({ request }) => {
        request(
          { host: "127.0.0.1", port, path: "/health", headers: { host: `attacker.example:${port}` } },
          (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          },
        )
          .once("error", reject)
          .end();
      }, reject);
    });

    expect(response).toBe(421);
    expect(standIn.requests).toEqual([]);
  });
});
