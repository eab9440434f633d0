import { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { MemoryTaskQueue } from "#shared/adapters/memory/task-queue";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { platformConfig } from "#shared/agents/workers";
import { EventRelay } from "#shared/core/event-relay";
import { Supervisor } from "#shared/core/supervisor";
import { MAX_PAYLOAD_BYTES, type Task } from "#shared/domain/task";
import { createSupervisorApiHandler } from "#shared/http/handler";
import type { OpenApiDocument } from "#shared/http/openapi";
import { type ApiRoute, createApiRouter, DEFAULT_MAX_BODY_BYTES } from "#shared/http/router";
import type { TaskStore } from "#shared/ports/task-store";
import { type HttpApiRequest, httpApiEvent } from "#test/support/http-api-events";

interface LoggedError {
  readonly message: string;
  readonly attributes: Record<string, unknown>;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly text: string;
  readonly body: any;
}

function toReply(result: APIGatewayProxyStructuredResultV2): Reply {
  const text = result.body ?? "";
  return { status: result.statusCode ?? 0, headers: result.headers ?? {}, text, body: JSON.parse(text) };
}

function setup(
  options: { store?: TaskStore; maxBodyBytes?: number; extraRoutes?: readonly ApiRoute[] } = {},
) {
  const store = options.store ?? new MemoryTaskStore();
  const queue = new MemoryTaskQueue({ maxReceiveCount: platformConfig.maxReceiveCount });
  const bus = new MemoryEventBus({ recordPublished: true });
  const relay = new EventRelay({ store, publisher: bus });
  const supervisor = new Supervisor({ store, queue, relay, config: platformConfig });
  const errors: LoggedError[] = [];
  const router = createApiRouter({
    supervisor,
    logger: { error: (message, attributes) => errors.push({ message, attributes }) },
    ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
    ...(options.extraRoutes !== undefined ? { extraRoutes: options.extraRoutes } : {}),
  });
  const call = async (request: HttpApiRequest): Promise<Reply> =>
    toReply(await router(httpApiEvent(request)));
  const submit = async (body: unknown, headers?: Record<string, string>) =>
    call({ method: "POST", path: "/tasks", body, ...(headers !== undefined ? { headers } : {}) });
  return { store, queue, supervisor, router, call, submit, errors };
}

const echoTask = { taskType: "echo", input: { text: "hello" } };

describe("POST /tasks", () => {
  it("accepts a single task with 202 and its id and status", async () => {
    const { submit, store } = setup();

    const reply = await submit(echoTask);

    expect(reply.status).toBe(202);
    expect(reply.body.tasks).toHaveLength(1);
    expect(reply.body.tasks[0]).toEqual({ taskId: expect.any(String), status: "submitted" });
    expect(await store.get(reply.body.tasks[0].taskId)).toMatchObject({
      taskType: "echo",
      status: "submitted",
    });
  });

  it("accepts a batch under tasks and answers in the same order", async () => {
    const { submit } = setup();

    const reply = await submit({ tasks: [echoTask, { taskType: "summarize", input: "text" }] });

    expect(reply.status).toBe(202);
    expect(reply.body.tasks.map((t: { status: string }) => t.status)).toEqual(["submitted", "submitted"]);
    expect(new Set(reply.body.tasks.map((t: { taskId: string }) => t.taskId)).size).toBe(2);
  });

  it("decodes a base64-encoded body", async () => {
    const { call } = setup();

    const reply = await call({ method: "POST", path: "/tasks", body: echoTask, base64: true });

    expect(reply.status).toBe(202);
  });

  it("reports zod issues as validation_error details with dotted paths", async () => {
    const { submit } = setup();

    const reply = await submit({ tasks: [echoTask, { taskType: "not a valid type!", input: 1 }] });

    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("validation_error");
    expect(reply.body.error.details).toEqual([{ path: "tasks.1.taskType", message: expect.any(String) }]);
  });

  it("reports a missing required field at its path", async () => {
    const { submit } = setup();

    const reply = await submit({ input: 1 });

    expect(reply.status).toBe(400);
    expect(reply.body.error.details).toContainEqual({ path: "taskType", message: expect.any(String) });
  });

  it("refuses a body with tasks and any other field", async () => {
    const { submit } = setup();

    const reply = await submit({ tasks: [echoTask], taskType: "echo" });

    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("validation_error");
    expect(reply.body.error.details).toContainEqual({ path: "taskType", message: "unknown field" });
  });

  it("refuses an empty batch", async () => {
    const { submit } = setup();

    const reply = await submit({ tasks: [] });

    expect(reply.status).toBe(400);
    expect(reply.body.error.details[0].path).toBe("tasks");
  });

  it("refuses a batch of more than 100 tasks", async () => {
    const { submit } = setup();

    const reply = await submit({ tasks: Array.from({ length: 101 }, () => echoTask) });

    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("validation_error");
  });

  it("answers invalid_json for a body that is not JSON", async () => {
    const { call } = setup();

    const reply = await call({ method: "POST", path: "/tasks", body: "{ not json" });

    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("invalid_json");
  });

  it("answers invalid_json for a missing body", async () => {
    const { call } = setup();

    const reply = await call({ method: "POST", path: "/tasks" });

    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("invalid_json");
  });

  it("answers 413 for a body over the limit before parsing it", async () => {
    const { call } = setup();
    // Not JSON at all: a 413 proves the size was checked before the parse.
    const body = "x".repeat(DEFAULT_MAX_BODY_BYTES + 1);

    const reply = await call({ method: "POST", path: "/tasks", body });

    expect(reply.status).toBe(413);
    expect(reply.body.error.code).toBe("payload_too_large");
  });

  it("measures a base64 body by its decoded size", async () => {
    const { call } = setup({ maxBodyBytes: 1000 });
    const body = JSON.stringify({ taskType: "echo", input: "y".repeat(900) }); // ~1230 base64 characters

    const reply = await call({ method: "POST", path: "/tasks", body, base64: true });

    expect(reply.status).toBe(202);
  });

  it("answers 413 for a task input over 256 KiB even when other fields are invalid", async () => {
    const { submit } = setup();

    const reply = await submit({ taskType: "not valid!", input: "z".repeat(MAX_PAYLOAD_BYTES + 1) });

    expect(reply.status).toBe(413);
    expect(reply.body.error.code).toBe("payload_too_large");
  });

  it("answers 413 for one oversized input in a batch", async () => {
    const { submit } = setup();

    const reply = await submit({
      tasks: [echoTask, { taskType: "echo", input: "z".repeat(MAX_PAYLOAD_BYTES) }],
    });

    expect(reply.status).toBe(413);
    expect(reply.body.error.message).toContain("tasks.1.input");
  });

  it("replays a submission with the same Idempotency-Key and body", async () => {
    const { submit } = setup();

    const first = await submit(echoTask, { "Idempotency-Key": "order-42" });
    const second = await submit(echoTask, { "Idempotency-Key": "order-42" });

    expect(second.status).toBe(202);
    expect(second.body.tasks[0].taskId).toBe(first.body.tasks[0].taskId);
  });

  it("answers 409 idempotency_conflict when a key is reused with another body", async () => {
    const { submit } = setup();
    await submit(echoTask, { "Idempotency-Key": "order-43" });

    const reply = await submit(
      { ...echoTask, input: { text: "different" } },
      { "Idempotency-Key": "order-43" },
    );

    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe("idempotency_conflict");
  });

  it("reads the Idempotency-Key header whatever the case of its name", async () => {
    const { router } = setup();
    const event = httpApiEvent({ method: "POST", path: "/tasks", body: echoTask });
    event.headers["IDEMPOTENCY-KEY"] = "upper-case";
    const first = toReply(await router(event));

    const replay = toReply(await router({ ...event, headers: { ...event.headers } }));
    const conflict = toReply(
      await router({
        ...event,
        body: JSON.stringify({ ...echoTask, input: 2 }),
        headers: { ...event.headers },
      }),
    );

    expect(first.status).toBe(202);
    expect(replay.body.tasks[0].taskId).toBe(first.body.tasks[0].taskId);
    expect(conflict.status).toBe(409);
  });

  it("refuses the Idempotency-Key header on a batch", async () => {
    const { submit } = setup();

    const reply = await submit({ tasks: [echoTask, echoTask] }, { "Idempotency-Key": "batch" });

    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("validation_error");
  });

  it("refuses an Idempotency-Key header that differs from the body's idempotencyKey", async () => {
    const { submit } = setup();

    const reply = await submit(
      { ...echoTask, idempotencyKey: "body-key" },
      { "Idempotency-Key": "header-key" },
    );

    expect(reply.status).toBe(400);
    expect(reply.body.error.details).toEqual([{ path: "Idempotency-Key", message: expect.any(String) }]);
  });

  it("refuses an Idempotency-Key header longer than 128 characters", async () => {
    const { submit } = setup();

    const reply = await submit(echoTask, { "Idempotency-Key": "k".repeat(129) });

    expect(reply.status).toBe(400);
    expect(reply.body.error.details[0].path).toBe("Idempotency-Key");
  });
});

describe("GET /tasks/{taskId}", () => {
  it("returns the public task without lease, hash or queue internals", async () => {
    const { submit, call, store } = setup();
    const taskId = (await submit(echoTask)).body.tasks[0].taskId;
    const now = new Date().toISOString();
    await store.transition({
      taskId,
      from: ["submitted"],
      to: "working",
      expectedVersion: 1,
      patch: { attempts: 1, leaseToken: "secret-lease", leaseExpiresAt: now, updatedAt: now },
    });

    const reply = await call({ method: "GET", path: `/tasks/${taskId}` });

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      taskId,
      taskType: "echo",
      status: "working",
      input: { text: "hello" },
    });
    for (const internal of ["leaseToken", "leaseExpiresAt", "requestHash", "queue", "expiresAt"]) {
      expect(reply.body).not.toHaveProperty(internal);
    }
    expect(reply.text).not.toContain("secret-lease");
  });

  it("never shows attributes a store adds beyond the public schema", async () => {
    class KeyedStore extends MemoryTaskStore {
      override async get(taskId: string): Promise<Task | undefined> {
        const task = await super.get(taskId);
        return task && ({ ...task, pk: `TASK#${taskId}`, shard: 7 } as Task);
      }
    }
    const { submit, call } = setup({ store: new KeyedStore() });
    const taskId = (await submit(echoTask)).body.tasks[0].taskId;

    const reply = await call({ method: "GET", path: `/tasks/${taskId}` });

    expect(reply.body).not.toHaveProperty("pk");
    expect(reply.body).not.toHaveProperty("shard");
  });

  it("answers 404 not_found for an unknown task", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/tasks/does-not-exist" });

    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe("not_found");
  });

  it("answers 404 for an id no task could have, without asking the store", async () => {
    class UnreachableStore extends MemoryTaskStore {
      override async get(): Promise<Task | undefined> {
        throw new Error("the store was asked");
      }
    }
    const { call } = setup({ store: new UnreachableStore() });

    const reply = await call({ method: "GET", path: `/tasks/${"a".repeat(129)}` });

    expect(reply.status).toBe(404);
  });
});

describe("GET /tasks", () => {
  it("lists tasks newest first with public fields only", async () => {
    const { submit, call } = setup();
    await submit(echoTask);

    const reply = await call({ method: "GET", path: "/tasks" });

    expect(reply.status).toBe(200);
    expect(reply.body.items).toHaveLength(1);
    expect(reply.body.items[0]).not.toHaveProperty("requestHash");
    expect(reply.body).not.toHaveProperty("nextCursor");
  });

  it("filters by status and task type", async () => {
    const { submit, call } = setup();
    await submit({
      tasks: [echoTask, { taskType: "summarize", input: "a" }, { taskType: "unroutable", input: 0 }],
    });

    const rejected = await call({ method: "GET", path: "/tasks?status=rejected" });
    const summaries = await call({ method: "GET", path: "/tasks?taskType=summarize" });

    expect(rejected.body.items.map((t: Task) => t.taskType)).toEqual(["unroutable"]);
    expect(summaries.body.items.map((t: Task) => t.taskType)).toEqual(["summarize"]);
  });

  it("pages with limit and nextCursor", async () => {
    const { submit, call } = setup();
    await submit({ tasks: [echoTask, echoTask, echoTask] });

    const first = await call({ method: "GET", path: "/tasks?limit=2" });
    const second = await call({ method: "GET", path: `/tasks?limit=2&cursor=${first.body.nextCursor}` });

    expect(first.body.items).toHaveLength(2);
    expect(second.body.items).toHaveLength(1);
    expect(second.body).not.toHaveProperty("nextCursor");
    const ids = [...first.body.items, ...second.body.items].map((t: Task) => t.taskId);
    expect(new Set(ids).size).toBe(3);
  });

  it("answers 400 with details for an unknown status", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/tasks?status=finished" });

    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("validation_error");
    expect(reply.body.error.details[0].path).toBe("status");
  });

  it.each(["0", "101", "abc", "2.5"])("answers 400 for limit=%s", async (limit) => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: `/tasks?limit=${limit}` });

    expect(reply.status).toBe(400);
    expect(reply.body.error.details[0].path).toBe("limit");
  });

  it("answers 400 for a malformed cursor", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/tasks?cursor=not%20a%20cursor!" });

    expect(reply.status).toBe(400);
    expect(reply.body.error.details[0].path).toBe("cursor");
  });

  it("answers 400 for a repeated status, which API Gateway joins with a comma", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/tasks?status=submitted&status=failed" });

    expect(reply.status).toBe(400);
  });
});

describe("POST /tasks/{taskId}/cancel", () => {
  it("cancels a submitted task and returns it", async () => {
    const { submit, call } = setup();
    const taskId = (await submit(echoTask)).body.tasks[0].taskId;

    const reply = await call({ method: "POST", path: `/tasks/${taskId}/cancel` });

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ taskId, status: "canceled", cancelRequested: true });
  });

  it("answers 409 already_terminal for a finished task", async () => {
    const { submit, call } = setup();
    const taskId = (await submit({ taskType: "unroutable", input: 0 })).body.tasks[0].taskId;

    const reply = await call({ method: "POST", path: `/tasks/${taskId}/cancel` });

    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe("already_terminal");
  });

  it("answers 404 for an unknown task", async () => {
    const { call } = setup();

    const reply = await call({ method: "POST", path: "/tasks/nope/cancel" });

    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe("not_found");
  });
});

describe("GET /stats, /health and /openapi.json", () => {
  it("returns the supervisor statistics", async () => {
    const { submit, call } = setup();
    await submit({ tasks: [echoTask, { taskType: "unroutable", input: 0 }] });

    const reply = await call({ method: "GET", path: "/stats" });

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ totalTasksSubmitted: 2, tasksPending: 1, tasksRejected: 1 });
  });

  it("answers health with status ok", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/health" });

    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ status: "ok" });
  });

  it("documents every route, extra routes included, in an OpenAPI 3.1 document", async () => {
    const extra: ApiRoute = {
      method: "GET",
      path: "/agents",
      operation: {
        operationId: "listAgents",
        summary: "List agents",
        responses: { "200": { description: "Agents" } },
      },
      handle: async () => ({ statusCode: 200, body: { items: [] } }),
    };
    const { call, router } = setup({ extraRoutes: [extra] });

    const reply = await call({ method: "GET", path: "/openapi.json" });
    const document = reply.body as OpenApiDocument;

    expect(reply.status).toBe(200);
    expect(document.openapi).toBe("3.1.0");
    const expected = [
      ["post", "/tasks"],
      ["get", "/tasks"],
      ["get", "/tasks/{taskId}"],
      ["post", "/tasks/{taskId}/cancel"],
      ["get", "/stats"],
      ["get", "/health"],
      ["get", "/openapi.json"],
      ["get", "/agents"],
    ];
    expect(router.routes.map((r) => [r.method.toLowerCase(), r.path]).sort()).toEqual([...expected].sort());
    for (const [method, path] of expected) {
      expect(document.paths[path ?? ""]?.[method ?? ""], `${method} ${path}`).toBeDefined();
    }
  });

  it("resolves every $ref of the OpenAPI document to a component", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/openapi.json" });

    const refs = [...reply.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (m) => m[1] ?? "",
    );
    expect(refs.length).toBeGreaterThan(0);
    for (const name of new Set(refs)) expect(reply.body.components.schemas, name).toHaveProperty([name]);
    expect(reply.text).not.toContain("__shared");
  });

  it("documents the path parameter of /tasks/{taskId}", async () => {
    const { call } = setup();

    const document = (await call({ method: "GET", path: "/openapi.json" })).body;

    expect(document.paths["/tasks/{taskId}"].get.parameters).toContainEqual(
      expect.objectContaining({ name: "taskId", in: "path", required: true }),
    );
  });
});

describe("routing", () => {
  it("answers 404 not_found for an unknown path", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/nowhere" });

    expect(reply.status).toBe(404);
    expect(reply.body.error).toEqual({ code: "not_found", message: expect.any(String) });
  });

  it("answers 405 method_not_allowed with an Allow header for a known path", async () => {
    const { call } = setup();

    const reply = await call({ method: "DELETE", path: "/tasks" });

    expect(reply.status).toBe(405);
    expect(reply.body.error.code).toBe("method_not_allowed");
    expect(reply.headers.allow).toBe("GET, POST");
  });

  it("routes a path with a trailing slash like the path without it", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/health/" });

    expect(reply.status).toBe(200);
  });

  it("strips a named stage from the path", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/health", stage: "prod" });

    expect(reply.status).toBe(200);
  });

  it("decodes path parameters", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/tasks/a%20b" });

    expect(reply.status).toBe(404);
    expect(reply.body.error.message).toContain("a b");
  });

  it("answers 404 for a malformed escape in a path parameter", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/tasks/%E0%A4%A" });

    expect(reply.status).toBe(404);
  });

  it("serves extra routes and refuses a second route for the same method and path", async () => {
    const route: ApiRoute = {
      method: "GET",
      path: "/pool",
      operation: { operationId: "getPool", summary: "Pool", responses: { "200": { description: "Pool" } } },
      handle: async () => ({ statusCode: 200, body: { workers: 0 } }),
    };
    const { call } = setup({ extraRoutes: [route] });

    expect((await call({ method: "GET", path: "/pool" })).body).toEqual({ workers: 0 });
    expect(() => setup({ extraRoutes: [route, route] })).toThrow("duplicate route GET /pool");
  });

  it("answers every response as application/json", async () => {
    const { call, submit } = setup();
    const replies = [
      await submit(echoTask),
      await call({ method: "GET", path: "/nowhere" }),
      await call({ method: "PUT", path: "/stats" }),
      await call({ method: "GET", path: "/openapi.json" }),
    ];

    for (const reply of replies) expect(reply.headers["content-type"]).toBe("application/json");
  });
});

describe("unexpected errors", () => {
  class BrokenStore extends MemoryTaskStore {
    override async get(): Promise<Task | undefined> {
      throw new Error("connect ECONNREFUSED 10.0.3.7:8000 password=hunter2");
    }
  }

  it("answers a generic 500 with the request id and no internals, and log the real error", async () => {
    const { router, errors } = setup({ store: new BrokenStore() });
    const event = httpApiEvent({ method: "GET", path: "/tasks/some-task" });

    const reply = toReply(await router(event));

    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({
      error: { code: "internal_error", message: "internal error", requestId: event.requestContext.requestId },
    });
    expect(reply.text).not.toContain("hunter2");
    expect(reply.text).not.toContain("ECONNREFUSED");
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.attributes.error)).toContain("ECONNREFUSED");
  });

  it("still answers when the logger itself throws", async () => {
    const store = new BrokenStore();
    const relay = new EventRelay({ store, publisher: new MemoryEventBus({ recordPublished: true }) });
    const supervisor = new Supervisor({
      store,
      queue: new MemoryTaskQueue(),
      relay,
      config: platformConfig,
    });
    const router = createApiRouter({
      supervisor,
      logger: {
        error: () => {
          throw new Error("log sink down");
        },
      },
    });

    const reply = toReply(await router(httpApiEvent({ method: "GET", path: "/tasks/x" })));

    expect(reply.status).toBe(500);
  });

  it("answers 500 rather than throw for an event that is not an HTTP API event", async () => {
    const { router } = setup();

    const result = await router({} as never);

    expect(result.statusCode).toBe(500);
  });
});

describe("createSupervisorApiHandler", () => {
  function supervisorOnMemory(): Supervisor {
    const store = new MemoryTaskStore();
    const relay = new EventRelay({ store, publisher: new MemoryEventBus({ recordPublished: true }) });
    return new Supervisor({ store, queue: new MemoryTaskQueue(), relay, config: platformConfig });
  }

  it("serves the API with a plain logger and no Lambda context, as the local runtime calls it", async () => {
    const handler = createSupervisorApiHandler({
      supervisor: supervisorOnMemory(),
      logger: { error: () => {} },
    });

    const reply = toReply(await handler(httpApiEvent({ method: "POST", path: "/tasks", body: echoTask })));

    expect(reply.status).toBe(202);
  });

  it("runs the router inside the Powertools logger middleware", async () => {
    const logger = new Logger({ serviceName: "supervisor-api", logLevel: "SILENT" });
    const handler = createSupervisorApiHandler({ supervisor: supervisorOnMemory(), logger });

    const reply = toReply(await handler(httpApiEvent({ method: "GET", path: "/health" })));

    expect(reply.body).toEqual({ status: "ok" });
  });
});
