import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import type { apiClient } from "./api-client.ts";

type Api = ReturnType<typeof apiClient>;

/** A value nested `depth` levels deep: `{"a":{"a":…1…}}`. */
export function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** A body nested `depth` levels deep, as text (JSON.stringify would overflow the stack building it). */
function deepBody(depth: number): string {
  return `{"taskType":"echo","input":${"[".repeat(depth)}${"]".repeat(depth)}}`;
}

function expectError(response: { status: number; body: any }, status: number, code: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.body?.error?.code).toBe(code);
  expect(typeof response.body?.error?.message).toBe("string");
}

/**
 * What a careless or hostile client found (issue 11), as end-to-end cases that every runtime runs: the
 * same bodies get the same 4xx with the error envelope on the embedded and the emulated AWS runtime,
 * and nothing accepted is left stuck. Called inside a runtime's suite, with its API client.
 */
export function describeHostileInput(api: () => Api): void {
  it("refuses JSON the strictest store cannot hold with a 400 naming the field, on every runtime alike", async () => {
    const cases: [unknown, string][] = [
      [{ taskType: "echo", input: { value: nested(30) } }, "input.value"],
      [{ taskType: "echo", input: { value: 1 }, metadata: { "": "x" } }, "metadata"],
      [{ taskType: "echo", input: { "": 1 } }, "input."],
    ];
    for (const [body, path] of cases) {
      const response = await api().post("/tasks", body);
      expectError(response, 400, "validation_error");
      expect(JSON.stringify(response.body.error.details)).toContain(path);
    }
    // Numbers DynamoDB cannot store exactly: sent as raw text, so JSON.stringify cannot round them first.
    for (const number of ["9007199254740993", "1e126", "1e-131", "-1e200"]) {
      const response = await api().post("/tasks", `{"taskType":"echo","input":{"value":${number}}}`);
      expectError(response, 400, "validation_error");
      expect(response.body.error.details).toEqual([expect.objectContaining({ path: "input.value" })]);
    }
  });

  it("answers 400, never 500, for a body nested thousands of levels deep on every route", async () => {
    const deep = deepBody(5_000);
    const routes: [string, string][] = [
      ["POST", "/tasks"],
      ["POST", "/jobs"],
      ["POST", "/agents"],
      ["POST", "/messages"],
      ["PUT", "/agents/someone/status"],
    ];
    for (const [method, path] of routes) {
      const response = await api().request(method, path, deep);
      expectError(response, 400, "validation_error");
    }
  });

  it("answers 400 for a tampered list cursor, on /tasks and /agents", async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
    for (const cursor of [encode({ before: "" }), encode({ before: "z".repeat(1_500) }), "AAAA"]) {
      expectError(await api().get(`/tasks?cursor=${cursor}`), 400, "validation_error");
      expectError(await api().get(`/tasks?status=failed&cursor=${cursor}`), 400, "validation_error");
    }
    expectError(await api().get(`/agents?cursor=${encode("not an id!")}`), 400, "validation_error");
  });

  it("pages /agents with limit and a cursor that continues", async () => {
    const type = `pager-${randomUUID().slice(0, 8)}`;
    for (let i = 0; i < 3; i++) {
      const response = await api().post("/agents", {
        agentId: `${type}-${i}`,
        agentType: type,
        capabilities: {},
      });
      expect(response.status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await api().get(
        `/agents?type=${type}&limit=2${cursor === undefined ? "" : `&cursor=${cursor}`}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((a: { agentId: string }) => a.agentId));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor !== undefined && pages < 10);
    expect(seen).toEqual([`${type}-0`, `${type}-1`, `${type}-2`]);
    expect(pages).toBeGreaterThan(1);
  });

  it("refuses a non-ASCII or repeated Idempotency-Key header with 400, and keeps a UTF-8 key from the body intact", async () => {
    // fetch refuses to send non-Latin-1 header text; these bytes are what a client sends for "ключ" as UTF-8.
    const garbled = Buffer.from("ключ", "utf8").toString("latin1");
    const body = { taskType: "echo", input: { value: 1 } };
    expectError(await api().post("/tasks", body, { "Idempotency-Key": garbled }), 400, "validation_error");
    expectError(await api().post("/tasks", body, { "Idempotency-Key": "a, b" }), 400, "validation_error");

    const key = `ключ-${randomUUID()}`;
    const first = await api().post("/tasks", { ...body, idempotencyKey: key });
    const again = await api().post("/tasks", { ...body, idempotencyKey: key });
    expect(first.status).toBe(202);
    expect(again.body.tasks[0].taskId).toBe(first.body.tasks[0].taskId);
    const task = await api().get(`/tasks/${first.body.tasks[0].taskId}`);
    expect(task.body.idempotencyKey).toBe(key);
  });

  it("fails a task whose output cannot be stored once, with output_not_storable, instead of leaving it working", async () => {
    // echo returns its input's value: 200 KiB in and 200 KiB out do not fit one task record together.
    const taskId = await api().submit({ taskType: "echo", input: { value: "x".repeat(200 * 1024) } });

    const task = await api().waitForStatus(taskId, ["completed", "failed"], 30_000);

    expect(task).toMatchObject({ status: "failed", attempts: 1, error: { code: "output_not_storable" } });
  });
}

/**
 * Dead-letter queues as a feature (issue 11), end to end on every runtime: a task whose attempts ran
 * out is listed in its capability's DLQ with its last error, and a redrive runs it again under the same
 * id with a fresh attempt budget.
 */
export function describeDeadLetters(api: () => Api): void {
  it("lists a dead-lettered task with its last error, and a redrive completes it under the same id", async () => {
    // Attempt 1 fails and is the last one: the task fails and its message goes to the DLQ.
    const taskId = await api().submit({
      taskType: "echo",
      input: { value: "dlq", failAttempts: 1 },
      maxAttempts: 1,
    });
    await api().waitForStatus(taskId, ["failed"], 30_000);

    let listed: any;
    for (let i = 0; i < 100 && listed === undefined; i++) {
      const response = await api().get("/dlq?capability=diagnostics");
      expect(response.status).toBe(200);
      listed = response.body.queues
        .flatMap((q: any) => q.items.map((item: any) => ({ ...item, queue: q })))
        .find((item: any) => item.taskId === taskId);
      if (listed === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(listed).toMatchObject({ taskId, status: "failed", lastError: { code: "handler_error" } });
    expect(listed.queue.depth).toBeGreaterThanOrEqual(1);

    const redrive = await api().post("/dlq/redrive", { capability: "diagnostics", taskIds: [taskId] });
    expect(redrive.status, JSON.stringify(redrive.body)).toBe(200);
    expect(redrive.body.redriven).toEqual([taskId]);

    const task = await api().waitForStatus(taskId, ["completed"], 30_000);
    expect(task).toMatchObject({
      taskId,
      attempts: 2,
      maxAttempts: 2,
      result: { output: { value: "dlq", attempt: 2 } },
    });
    // Its message left the DLQ: a second redrive finds nothing of it.
    const again = await api().post("/dlq/redrive", { taskIds: [taskId] });
    expect(again.body).toEqual({ redriven: [], dropped: [] });
  });

  it("answers 400 for a redrive or listing that names no capability", async () => {
    expectError(
      await api().post("/dlq/redrive", { capability: "no-such-capability" }),
      400,
      "validation_error",
    );
    expectError(await api().get("/dlq?capability=no-such-capability"), 400, "validation_error");
    expectError(await api().post("/dlq/redrive", { surprise: 1 }), 400, "validation_error");
  });
}
