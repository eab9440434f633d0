import { randomUUID } from "node:crypto";
import type { Task } from "#shared/domain/task";

/** A minimal submitted task record for store tests, with a fresh id. */
export function buildTask(overrides: Partial<Task> = {}): Task {
  const now = "2030-01-01T00:00:00.000Z";
  return {
    taskId: `task-${randomUUID()}`,
    taskType: "echo",
    status: "submitted",
    input: { text: "hi" },
    requiredCapability: "diagnostics",
    priority: 0,
    attempts: 0,
    maxAttempts: 3,
    cancelRequested: false,
    version: 1,
    createdAt: now,
    updatedAt: now,
    metadata: {},
    ...overrides,
  };
}
