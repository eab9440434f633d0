import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformConfig } from "#shared/agents/workers";
import type { PlatformConfig } from "#shared/config/platform";
import { apiClient, countedOnce } from "./api-client.ts";
import { describeDeadLetters, describeHostileInput } from "./hostile-input.suite.ts";

/** A capability the e2e configuration declares and no worker serves: its tasks wait in the queue. */
export const HELD_CAPABILITY = "held";

/** The demo configuration plus the held capability. */
export const e2eConfig: PlatformConfig = {
  ...platformConfig,
  capabilities: [
    ...platformConfig.capabilities,
    // Served by no worker here (`external`), so its tasks stay submitted until canceled.
    { name: HELD_CAPABILITY, workerTimeoutSeconds: 30, maxConcurrency: 2, external: true },
  ],
};

export interface RunningSystem {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * The walking skeleton's end-to-end contract: the HTTP API over real HTTP, with real workers behind
 * it. Each runtime (embedded, emulated AWS) runs this same suite unchanged.
 */
export function describeTaskApi(
  name: string,
  start: () => Promise<RunningSystem>,
  options: {
    /**
     * Whether the runtime's queue adapter has the dead-letter operations (`GET /dlq`); the Service Bus
     * adapter does not yet, and its runtime must then not serve the routes.
     * @default true
     */
    readonly deadLetters?: boolean;
  } = {},
): void {
  describe(`task API end to end (${name})`, () => {
    let system: RunningSystem;
    let api: ReturnType<typeof apiClient>;

    beforeAll(async () => {
      system = await start();
      api = apiClient(system.url);
    }, 120_000);

    afterAll(async () => {
      await system?.stop();
    }, 60_000);

    describe("hostile input", () => describeHostileInput(() => api));
    if (options.deadLetters === false) {
      it("does not serve dead-letter routes its queue adapter cannot answer", async () => {
        expect((await api.get("/dlq")).status).toBe(404);
      });
    } else {
      describe("dead-letter queues", () => describeDeadLetters(() => api));
    }

    it("answers health", async () => {
      const response = await api.get("/health");
      expect(response.status).toBe(200);
    });

    it("completes a submitted task with the worker's output", async () => {
      const taskId = await api.submit({
        taskType: "analyze_text",
        input: { text: "Agents talk. Workers work!" },
      });
      const task = await api.waitForStatus(taskId, ["completed", "failed"]);
      expect(task).toMatchObject({
        taskId,
        status: "completed",
        taskType: "analyze_text",
        requiredCapability: "text-analysis",
        attempts: 1,
        result: { success: true, output: { words: 4, characters: 26, sentences: 2 } },
      });
      expect(task.leaseToken).toBeUndefined();
      expect(Date.parse(task.completedAt)).toBeGreaterThanOrEqual(Date.parse(task.createdAt));
    });

    it("accepts a batch and completes every task in it", async () => {
      const response = await api.post("/tasks", {
        tasks: [
          { taskType: "summarize", input: { text: "One. Two. Three.", maxSentences: 2 } },
          { taskType: "echo", input: { value: "b" } },
          { taskType: "analyze_text", input: { text: "a b c" } },
        ],
      });
      expect(response.status).toBe(202);
      expect(response.body.tasks).toHaveLength(3);
      const [summary, echo, analysis] = await Promise.all(
        response.body.tasks.map((t: { taskId: string }) =>
          api.waitForStatus(t.taskId, ["completed", "failed"]),
        ),
      );
      expect(summary.result.output).toEqual({ summary: "One. Two." });
      expect(echo.result.output).toEqual({ value: "b", attempt: 1 });
      expect(analysis.result.output).toEqual({ words: 3, characters: 5, sentences: 1 });
    });

    it("lists tasks page by page with no duplicates and nothing missing", async () => {
      const taskType = "echo";
      const marker = randomUUID();
      const response = await api.post("/tasks", {
        tasks: Array.from({ length: 23 }, (_, i) => ({
          taskType,
          input: { value: i },
          metadata: { marker },
        })),
      });
      const submitted = new Set<string>(response.body.tasks.map((t: { taskId: string }) => t.taskId));
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await api.get(
          `/tasks?taskType=${taskType}&limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        );
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(7);
        seen.push(
          ...page.body.items.filter((t: any) => t.metadata.marker === marker).map((t: any) => t.taskId),
        );
        cursor = page.body.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      expect(seen).toHaveLength(new Set(seen).size);
      expect(new Set(seen)).toEqual(submitted);
    });

    it("filters the list by status", async () => {
      const taskId = await api.submit({ taskType: "echo", input: { value: 1 } });
      await api.waitForStatus(taskId, ["completed"]);
      const page = await api.get("/tasks?status=completed&limit=100");
      expect(page.status).toBe(200);
      expect(page.body.items.every((t: any) => t.status === "completed")).toBe(true);
    });

    it("cancels a submitted task at once", async () => {
      // "held" is configured but no worker serves it, so the task stays submitted until canceled.
      const taskId = await api.submit({
        taskType: "echo",
        requiredCapability: HELD_CAPABILITY,
        input: { value: 1 },
      });
      expect((await api.get(`/tasks/${taskId}`)).body.status).toBe("submitted");
      const canceled = await api.post(`/tasks/${taskId}/cancel`);
      expect(canceled.status).toBe(200);
      expect(canceled.body).toMatchObject({ taskId, status: "canceled", cancelRequested: true });
      expect((await api.get(`/tasks/${taskId}`)).body.status).toBe("canceled");
    });

    it("cancels a working task: its handler is aborted and the task ends canceled", async () => {
      const taskId = await api.submit({ taskType: "echo", input: { value: 1, delayMs: 20_000 } });
      await api.waitForStatus(taskId, ["working"]);
      const started = Date.now();
      const response = await api.post(`/tasks/${taskId}/cancel`);
      expect(response.status).toBe(200);
      expect(response.body.cancelRequested).toBe(true);
      const task = await api.waitForStatus(taskId, ["canceled", "completed", "failed"], 15_000);
      expect(task.status).toBe("canceled");
      expect(task.result).toBeUndefined();
      // The handler would have slept 20 s; it ended as soon as it was aborted.
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it("refuses to cancel a finished task with 409 already_terminal", async () => {
      const taskId = await api.submit({ taskType: "echo", input: { value: 1 } });
      await api.waitForStatus(taskId, ["completed"]);
      const response = await api.post(`/tasks/${taskId}/cancel`);
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe("already_terminal");
    });

    it("retries a failing task and then completes it", async () => {
      const taskId = await api.submit({
        taskType: "echo",
        input: { value: "x", failAttempts: 1 },
        maxAttempts: 3,
      });
      const task = await api.waitForStatus(taskId, ["completed", "failed"], 20_000);
      expect(task).toMatchObject({
        status: "completed",
        attempts: 2,
        result: { output: { value: "x", attempt: 2 } },
      });
    });

    it("fails a task whose retries are exhausted", async () => {
      const taskId = await api.submit({
        taskType: "echo",
        input: { value: "x", failAttempts: 5 },
        maxAttempts: 2,
      });
      const task = await api.waitForStatus(taskId, ["completed", "failed"], 20_000);
      expect(task).toMatchObject({
        status: "failed",
        attempts: 2,
        error: { code: "handler_error" },
        result: { success: false },
      });
    });

    it("fails a task that outlives its timeout with error code timeout", async () => {
      const taskId = await api.submit({
        taskType: "echo",
        input: { value: 1, delayMs: 10_000 },
        timeoutSeconds: 1,
        maxAttempts: 1,
      });
      const task = await api.waitForStatus(taskId, ["completed", "failed"], 15_000);
      expect(task).toMatchObject({ status: "failed", error: { code: "timeout" } });
    });

    it("rejects a task no capability can serve with no_route, as a 202", async () => {
      const response = await api.post("/tasks", {
        taskType: "zz-unrouted-task-type",
        input: { text: "hola" },
      });
      expect(response.status).toBe(202);
      expect(response.body.tasks[0].status).toBe("rejected");
      const task = (await api.get(`/tasks/${response.body.tasks[0].taskId}`)).body;
      expect(task).toMatchObject({ status: "rejected", error: { code: "no_route" } });
    });

    it("answers 400 with details for an invalid task", async () => {
      const response = await api.post("/tasks", { taskType: "", input: {}, priority: "high", extra: 1 });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe("validation_error");
      const paths = response.body.error.details.map((d: { path: string }) => d.path);
      expect(paths).toEqual(expect.arrayContaining(["taskType", "priority"]));
    });

    it("answers 400 for a body that is not JSON", async () => {
      const response = await api.post("/tasks", "{not json");
      expect(response.status).toBe(400);
      expect(response.body.error.code).toMatch(/invalid_json|validation_error/);
    });

    it("answers 404 with the error envelope for an unknown route and an unknown task", async () => {
      const route = await api.get("/nope");
      expect(route.status).toBe(404);
      expect(route.body.error.code).toBe("not_found");
      const task = await api.get(`/tasks/${randomUUID()}`);
      expect(task.status).toBe(404);
      expect(task.body.error.code).toBe("not_found");
    });

    it("answers 413 for an input over 256 KiB and writes nothing", async () => {
      const before = await api.settledStats();
      const response = await api.post("/tasks", {
        taskType: "echo",
        input: { value: "x".repeat(256 * 1024) },
      });
      expect(response.status).toBe(413);
      expect(response.body.error.code).toBe("payload_too_large");
      expect((await api.settledStats()).totalTasksSubmitted).toBe(before.totalTasksSubmitted);
    });

    it("returns the same task for a resubmission with the same Idempotency-Key, and 409 for a different body", async () => {
      const key = randomUUID();
      const first = await api.post(
        "/tasks",
        { taskType: "echo", input: { value: 1 } },
        { "idempotency-key": key },
      );
      const again = await api.post(
        "/tasks",
        { taskType: "echo", input: { value: 1 } },
        { "idempotency-key": key },
      );
      const conflict = await api.post(
        "/tasks",
        { taskType: "echo", input: { value: 2 } },
        { "idempotency-key": key },
      );
      expect(first.status).toBe(202);
      expect(again.status).toBe(202);
      expect(again.body.tasks[0].taskId).toBe(first.body.tasks[0].taskId);
      expect(conflict.status).toBe(409);
      expect(conflict.body.error.code).toBe("idempotency_conflict");
    });

    it("reports statistics consistent with what ran", async () => {
      // Statistics follow the table's change stream: wait until what ran is counted, then compare.
      const before = await api.settledStats();
      const ok = await api.submit({ taskType: "echo", input: { value: 1 } });
      const bad = await api.submit({
        taskType: "echo",
        input: { value: 1, failAttempts: 9 },
        maxAttempts: 1,
      });
      await api.waitForStatus(ok, ["completed"]);
      await api.waitForStatus(bad, ["failed"]);
      const after = await api.settledStats();
      expect(after.totalTasksSubmitted - before.totalTasksSubmitted).toBe(2);
      expect(after.tasksCompleted - before.tasksCompleted).toBeGreaterThanOrEqual(1);
      expect(after.tasksFailed - before.tasksFailed).toBeGreaterThanOrEqual(1);
      expect(after.tasksByType.echo - (before.tasksByType.echo ?? 0)).toBe(2);
      expect(after.averageExecutionTimeMs).toBeGreaterThanOrEqual(0);
      expect(countedOnce(after)).toBe(true);
    });
  });
}
