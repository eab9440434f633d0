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
  };
  return api;
}
