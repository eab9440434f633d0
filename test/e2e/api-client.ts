import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/** A small HTTP client for the e2e suites: real requests, JSON in and out. */
export function apiClient(baseUrl: string) {
  const request = async <T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { "content-type": "application/json", ...headers },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      // leave the raw text: the assertion will show it
    }
    return { status: response.status, headers: response.headers, body: parsed as T };
  };

  const api = {
    request,
    get: <T = any>(path: string) => request<T>("GET", path),
    post: <T = any>(path: string, body?: unknown, headers?: Record<string, string>) =>
      request<T>("POST", path, body, headers),
    /** Submits one task and returns its id (asserting the 202). */
    async submit(task: Record<string, unknown>, headers?: Record<string, string>): Promise<string> {
      const response = await request("POST", "/tasks", task, headers);
      expect(response.status, JSON.stringify(response.body)).toBe(202);
      return response.body.tasks[0].taskId as string;
    },
    /** Polls a task until its status is one of `statuses`. */
    async waitForStatus(taskId: string, statuses: readonly string[], timeoutMs = 15_000): Promise<any> {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await request("GET", `/tasks/${taskId}`)).body;
        if (statuses.includes(last?.status)) return last;
        await sleep(25);
      }
      throw new Error(
        `task ${taskId} did not reach ${statuses.join("|")} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    },
    /**
     * Polls `GET /stats` until `accept` holds. Statistics follow the task table's change stream,
     * which lags the writes (about a second on the emulated runtime).
     */
    async waitForStats(accept: (stats: any) => boolean, timeoutMs = 15_000): Promise<any> {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await request("GET", "/stats")).body;
        if (accept(last)) return last;
        await sleep(100);
      }
      throw new Error(
        `statistics did not reach the expected state within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    },
    /**
     * The statistics once every change made so far is counted: every submitted task is in exactly
     * one status bucket, and nothing has moved for `quietMs` (longer than the stream's batching
     * window, so no batch is still on its way).
     */
    async settledStats(quietMs = 2_500, timeoutMs = 30_000): Promise<any> {
      const deadline = Date.now() + timeoutMs;
      let lastText = "";
      let since = Date.now();
      while (Date.now() < deadline) {
        const stats = (await request("GET", "/stats")).body;
        const text = JSON.stringify(stats);
        if (text !== lastText) {
          [lastText, since] = [text, Date.now()];
        } else if (Date.now() - since >= quietMs && countedOnce(stats)) {
          return stats;
        }
        await sleep(100);
      }
      throw new Error(`statistics did not settle within ${timeoutMs} ms; last: ${lastText}`);
    },
  };
  return api;
}

/** Every submitted task is counted in exactly one status bucket. */
export function countedOnce(stats: any): boolean {
  const counted =
    stats.tasksCompleted +
    stats.tasksFailed +
    stats.tasksCanceled +
    stats.tasksRejected +
    stats.tasksPending +
    stats.tasksInProgress;
  return counted === stats.totalTasksSubmitted;
}
