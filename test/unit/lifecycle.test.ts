import { describe, expect, it } from "vitest";
import { IllegalTransitionError } from "#shared/domain/errors";
import { DetailType } from "#shared/domain/events";
import { assertTransition, canTransition, isTerminal, TASK_TRANSITIONS } from "#shared/domain/lifecycle";
import { TASK_STATUSES, type TaskStatus } from "#shared/domain/task";
import { lifecycleEvent } from "#shared/domain/transitions";
import { buildTask } from "#test/support/tasks";

const LEGAL: ReadonlyArray<readonly [TaskStatus, TaskStatus]> = [
  ["submitted", "working"],
  ["submitted", "canceled"],
  ["submitted", "rejected"],
  ["submitted", "failed"],
  ["working", "working"],
  ["working", "submitted"],
  ["working", "completed"],
  ["working", "failed"],
  ["working", "canceled"],
  ["working", "input-required"],
  ["input-required", "working"],
  ["input-required", "canceled"],
  ["input-required", "failed"],
];
const legalKeys = new Set(LEGAL.map(([from, to]) => `${from}->${to}`));
const ILLEGAL = TASK_STATUSES.flatMap((from) =>
  TASK_STATUSES.filter((to) => !legalKeys.has(`${from}->${to}`)).map((to) => [from, to] as const),
);

describe("task lifecycle", () => {
  it.each(LEGAL)("allows %s -> %s", (from, to) => {
    expect(canTransition(from, to)).toBe(true);
    expect(() => assertTransition(from, to)).not.toThrow();
  });

  it.each(ILLEGAL)("refuses %s -> %s", (from, to) => {
    expect(canTransition(from, to)).toBe(false);
    expect(() => assertTransition(from, to)).toThrow(IllegalTransitionError);
  });

  it("covers every pair of states exactly once between the legal and illegal lists", () => {
    expect(LEGAL.length + ILLEGAL.length).toBe(TASK_STATUSES.length ** 2);
    const tableSize = Object.values(TASK_TRANSITIONS).reduce((n, targets) => n + targets.length, 0);
    expect(tableSize).toBe(LEGAL.length);
  });

  it.each(["completed", "failed", "canceled", "rejected"] as const)("treats %s as terminal", (status) => {
    expect(isTerminal(status)).toBe(true);
  });

  it.each(["submitted", "working", "input-required"] as const)("treats %s as not terminal", (status) => {
    expect(isTerminal(status)).toBe(false);
  });

  it("names the bad transition in the error message", () => {
    expect(() => assertTransition("completed", "working")).toThrow(
      "illegal task transition completed -> working",
    );
  });
});

describe("lifecycle events", () => {
  it.each(TASK_STATUSES)("names a %s task's event after its own status, never Task Retrying", (status) => {
    const event = lifecycleEvent(buildTask({ status }));

    expect(event["detail-type"]).not.toBe(DetailType.TaskRetrying);
    expect(Object.values(DetailType)).toContain(event["detail-type"]);
  });

  it("says Task Retrying only when the writer says so", () => {
    expect(lifecycleEvent(buildTask({ status: "submitted" }))["detail-type"]).toBe("Task Submitted");
    expect(lifecycleEvent(buildTask({ status: "submitted" }), DetailType.TaskRetrying)["detail-type"]).toBe(
      "Task Retrying",
    );
  });
});
