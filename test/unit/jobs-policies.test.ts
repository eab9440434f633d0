import { describe, expect, it } from "vitest";
import { decideStep, stepDeadline } from "#shared/core/jobs/policies";
import type { Aggregation, FailurePolicy, JobStepState } from "#shared/domain/job";

const NOW = new Date("2030-01-01T00:00:10.000Z");

function step(
  aggregation: Aggregation,
  counts: { completed?: number; failed?: number; canceled?: number },
  options: { total?: number; failurePolicy?: FailurePolicy; deadlineAt?: string } = {},
): JobStepState {
  return {
    status: "working",
    total: options.total ?? 4,
    aggregation,
    failurePolicy: options.failurePolicy ?? { mode: "tolerate" },
    startedAt: "2030-01-01T00:00:00.000Z",
    ...(options.deadlineAt !== undefined ? { deadlineAt: options.deadlineAt } : {}),
    tasksSubmitted: true,
    counts: { completed: 0, failed: 0, canceled: 0, ...counts },
  };
}

const all: Aggregation = { policy: "all", reducer: "collect" };
const quorum2: Aggregation = { policy: "quorum", quorum: 2, reducer: "collect" };
const first: Aggregation = { policy: "first", reducer: "collect" };
const deadline: Aggregation = { policy: "deadline", deadlineSeconds: 5, reducer: "collect" };
const failFast: FailurePolicy = { mode: "fail-fast" };

describe("policy all", () => {
  it("waits until every task has finished", () => {
    expect(decideStep(step(all, { completed: 3 }), NOW)).toEqual({ kind: "wait" });
  });

  it("completes when every task has succeeded", () => {
    expect(decideStep(step(all, { completed: 4 }), NOW)).toEqual({ kind: "complete" });
  });

  it("completes with tolerated failures once every task has finished", () => {
    expect(decideStep(step(all, { completed: 2, failed: 1, canceled: 1 }), NOW)).toEqual({
      kind: "complete",
    });
  });

  it("fails when every task finished and none succeeded", () => {
    expect(decideStep(step(all, { failed: 4 }), NOW)).toMatchObject({
      kind: "fail",
      error: { code: "no_success" },
    });
  });
});

describe("policy quorum and first", () => {
  it("completes as soon as the quorum succeeded, reducing exactly the quorum", () => {
    expect(decideStep(step(quorum2, { completed: 2 }), NOW)).toEqual({ kind: "complete", take: 2 });
  });

  it("waits while the quorum can still be met", () => {
    expect(decideStep(step(quorum2, { completed: 1, failed: 2 }), NOW)).toEqual({ kind: "wait" });
  });

  it("fails once the quorum is unreachable", () => {
    expect(decideStep(step(quorum2, { completed: 1, failed: 3 }), NOW)).toMatchObject({
      kind: "fail",
      error: { code: "quorum_unreachable" },
    });
  });

  it("first completes on the first success and takes one output", () => {
    expect(decideStep(step(first, { completed: 1, failed: 2 }), NOW)).toEqual({ kind: "complete", take: 1 });
  });

  it("first fails when every task failed", () => {
    expect(decideStep(step(first, { failed: 3, canceled: 1 }), NOW)).toMatchObject({
      kind: "fail",
      error: { code: "quorum_unreachable" },
    });
  });
});

describe("policy deadline", () => {
  const at = (seconds: number) =>
    new Date(Date.parse("2030-01-01T00:00:00.000Z") + seconds * 1000).toISOString();

  it("waits before the deadline while tasks remain", () => {
    expect(decideStep(step(deadline, { completed: 1 }, { deadlineAt: at(20) }), NOW)).toEqual({
      kind: "wait",
    });
  });

  it("completes with what finished once the deadline passed", () => {
    expect(decideStep(step(deadline, { completed: 1 }, { deadlineAt: at(10) }), NOW)).toEqual({
      kind: "complete",
    });
  });

  it("completes early when every task finished before the deadline", () => {
    expect(decideStep(step(deadline, { completed: 3, failed: 1 }, { deadlineAt: at(20) }), NOW)).toEqual({
      kind: "complete",
    });
  });

  it("fails at the deadline when nothing succeeded", () => {
    expect(decideStep(step(deadline, { failed: 1 }, { deadlineAt: at(5) }), NOW)).toMatchObject({
      kind: "fail",
      error: { code: "deadline_exceeded" },
    });
  });

  it("computes the deadline from the step's start", () => {
    expect(stepDeadline({ aggregation: deadline }, new Date(at(0)))).toBe(at(5));
    expect(stepDeadline({ aggregation: all }, new Date(at(0)))).toBeUndefined();
  });
});

describe("failure policies", () => {
  it("fail-fast fails on the first failure even while the policy could still be met", () => {
    expect(
      decideStep(step(quorum2, { completed: 1, failed: 1 }, { failurePolicy: failFast }), NOW),
    ).toMatchObject({
      kind: "fail",
      error: { code: "task_failed" },
    });
  });

  it("fail-fast counts a canceled task as a failure", () => {
    expect(
      decideStep(step(all, { completed: 3, canceled: 1 }, { failurePolicy: failFast }), NOW),
    ).toMatchObject({
      kind: "fail",
    });
  });

  it("tolerate fails only when failures exceed maxFailures", () => {
    const tolerate1: FailurePolicy = { mode: "tolerate", maxFailures: 1 };

    expect(decideStep(step(all, { completed: 3, failed: 1 }, { failurePolicy: tolerate1 }), NOW)).toEqual({
      kind: "complete",
    });
    expect(
      decideStep(step(all, { completed: 2, failed: 2 }, { failurePolicy: tolerate1 }), NOW),
    ).toMatchObject({
      kind: "fail",
      error: { code: "too_many_failures" },
    });
  });

  it("a failure decision wins over a met quorum when failures exceed the tolerance", () => {
    const tolerate0: FailurePolicy = { mode: "tolerate", maxFailures: 0 };

    expect(
      decideStep(step(first, { completed: 1, failed: 1 }, { failurePolicy: tolerate0 }), NOW),
    ).toMatchObject({
      kind: "fail",
    });
  });
});
