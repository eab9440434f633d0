import { describe, expect, it } from "vitest";
import { AgentryError } from "#shared/domain/errors";
import { DEFAULT_MAX_BODY_BYTES } from "#shared/http/app";
import { type TaskSupervisor, taskRoutes } from "#shared/http/task-routes";
import { lambdaApi } from "#test/support/api-app";
import { createCoreFixture } from "#test/support/core-fixture";

/** The API app behind the Lambda adapter, fed recorded API Gateway HTTP API (v2) events. */
function setup(supervisor: TaskSupervisor = createCoreFixture().supervisor) {
  return lambdaApi(taskRoutes({ supervisor }));
}

const task = { taskType: "analyze_text", input: { text: "Agents talk." } };

describe("the API app on Lambda (hono/aws-lambda, payload v2)", () => {
  it("submits a task and reads it back, on the default stage and on a named one", async () => {
    const { call } = setup();

    const submitted = await call({ method: "POST", path: "/tasks", body: task });
    const taskId = submitted.body.tasks[0].taskId;
    const read = await call({ method: "GET", path: `/tasks/${taskId}` });
    const onStage = await call({ method: "GET", path: `/tasks/${taskId}`, stage: "prod" });
    const trailingSlash = await call({ method: "GET", path: `/tasks/${taskId}/` });

    expect(submitted.status).toBe(202);
    expect(read).toMatchObject({ status: 200, body: { taskId, status: "submitted" } });
    expect(read.headers["content-type"]).toMatch(/^application\/json/);
    expect(onStage.body).toEqual(read.body);
    expect(trailingSlash.body).toEqual(read.body);
  });

  it("answers 400 invalid_json for a body that is not JSON, and for none", async () => {
    const { call } = setup();

    const broken = await call({ method: "POST", path: "/tasks", body: "{not json" });
    const empty = await call({ method: "POST", path: "/tasks", body: "" });

    expect(broken).toMatchObject({ status: 400, body: { error: { code: "invalid_json" } } });
    expect(empty).toMatchObject({ status: 400, body: { error: { code: "invalid_json" } } });
  });

  it("validates body, query and headers at the edge, with details naming each field", async () => {
    const { call } = setup();

    const body = await call({ method: "POST", path: "/tasks", body: { taskType: "", input: {}, extra: 1 } });
    const query = await call({ method: "GET", path: "/tasks?limit=0&status=nope" });
    const header = await call({
      method: "POST",
      path: "/tasks",
      body: task,
      headers: { "Idempotency-Key": "k".repeat(129) },
    });
    const differing = await call({
      method: "POST",
      path: "/tasks",
      body: { ...task, idempotencyKey: "a" },
      headers: { "Idempotency-Key": "b" },
    });

    expect(body.status).toBe(400);
    expect(body.body.error.code).toBe("validation_error");
    expect([...new Set(body.body.error.details.map((d: any) => d.path))].sort()).toEqual([
      "extra",
      "taskType",
    ]);
    expect(query.body.error.details.map((d: any) => d.path).sort()).toEqual(["limit", "status"]);
    expect(header).toMatchObject({ status: 400, body: { error: { code: "validation_error" } } });
    expect(differing).toMatchObject({ status: 400, body: { error: { code: "validation_error" } } });
  });

  it("answers 404 for an id no task could have, 404 for an unknown path and 405 with Allow for a known one", async () => {
    const { call } = setup();

    const longId = await call({ method: "GET", path: `/tasks/${"x".repeat(200)}` });
    const unknown = await call({ method: "GET", path: "/nothing/here" });
    const wrongMethod = await call({ method: "DELETE", path: "/tasks" });

    expect(longId).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(wrongMethod).toMatchObject({ status: 405, body: { error: { code: "method_not_allowed" } } });
    expect(wrongMethod.headers.allow).toBe("GET, POST");
  });

  it("refuses a body over the limit with 413 on its Content-Length, and an input over 256 KiB", async () => {
    const { call } = setup();

    const huge = await call({
      method: "POST",
      path: "/tasks",
      body: { ...task, input: "a".repeat(DEFAULT_MAX_BODY_BYTES) },
    });
    const bigInput = await call({
      method: "POST",
      path: "/tasks",
      body: { tasks: [task, { ...task, input: "a".repeat(300 * 1024) }] },
    });

    expect(huge).toMatchObject({ status: 413, body: { error: { code: "payload_too_large" } } });
    expect(bigInput).toMatchObject({ status: 413, body: { error: { code: "payload_too_large" } } });
    expect(bigInput.body.error.message).toContain("tasks.1.input");
  });

  it("hides an unexpected error behind a 500 with the request id, and logs the Error itself", async () => {
    const failure = new Error("store exploded", { cause: new Error("socket hang up") });
    const { call, logger } = setup({
      ...createCoreFixture().supervisor,
      statistics: async () => {
        throw failure;
      },
    } as unknown as TaskSupervisor);

    const reply = await call({ method: "GET", path: "/stats" });

    expect(reply.status).toBe(500);
    expect(reply.body.error).toEqual({
      code: "internal_error",
      message: "internal error",
      requestId: expect.any(String),
    });
    expect(reply.text).not.toContain("exploded");
    const logged = logger.entries.find((e) => e.level === "error");
    expect(logged?.attributes.error).toBe(failure);
    expect(logged?.attributes.requestId).toBe(reply.body.error.requestId);
  });

  it("keeps a dependency failure a 503 and a known error's own status", async () => {
    const unavailable = new AgentryError("throttled", { code: "dependency_error", statusCode: 503 });
    const { call } = setup({
      ...createCoreFixture().supervisor,
      statistics: async () => {
        throw unavailable;
      },
    } as unknown as TaskSupervisor);

    const reply = await call({ method: "GET", path: "/stats" });

    expect(reply).toMatchObject({ status: 503, body: { error: { code: "service_unavailable" } } });
  });

  it("serves the OpenAPI document and health", async () => {
    const { call } = setup();

    const document = await call({ method: "GET", path: "/openapi.json" });
    const health = await call({ method: "GET", path: "/health" });

    expect(document.status).toBe(200);
    expect(document.body.openapi).toBe("3.1.0");
    expect(health).toEqual({ status: 200, body: { status: "ok" } });
  });
});
