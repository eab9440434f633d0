import type { JobError, JobStepState } from "#shared/domain/job";

export type StepDecision =
  /** Not decided yet: wait for more outcomes (or the deadline). */
  | { readonly kind: "wait" }
  /**
   * The step is done. `take`: reduce only the first `take` successes to be recorded (quorum, first),
   * so a success that raced in after the quorum does not change the result.
   */
  | { readonly kind: "complete"; readonly take?: number }
  | { readonly kind: "fail"; readonly error: JobError };

/**
 * Decides a step from its counts: the fan-in policy says when it is done, the failure policy when
 * failures end it. "Failures" are tasks that did not succeed — failed, rejected or canceled. Pure, so
 * every aggregator that looks at the same counts decides the same.
 *
 * @example
 * decideStep(step, new Date()); // { kind: "complete", take: 2 } once 2 of a quorum-2 step succeeded
 */
export function decideStep(step: JobStepState, now: Date): StepDecision {
  const succeeded = step.counts.completed;
  const failures = step.counts.failed + step.counts.canceled;
  const remaining = Math.max(0, step.total - succeeded - failures);
  const { failurePolicy, aggregation } = step;

  if (failurePolicy.mode === "fail-fast" && failures > 0) {
    return fail("task_failed", `${failures} task(s) did not succeed and the failure policy is fail-fast`);
  }
  const tolerated = failurePolicy.maxFailures ?? Number.POSITIVE_INFINITY;
  if (failures > tolerated) {
    return fail(
      "too_many_failures",
      `${failures} task(s) did not succeed; at most ${tolerated} are tolerated`,
    );
  }

  switch (aggregation.policy) {
    case "all":
      if (remaining > 0) return { kind: "wait" };
      return succeeded > 0 ? { kind: "complete" } : fail("no_success", "no task succeeded");
    case "quorum":
    case "first": {
      const quorum = aggregation.policy === "first" ? 1 : (aggregation.quorum ?? step.total);
      if (succeeded >= quorum) return { kind: "complete", take: quorum };
      if (succeeded + remaining < quorum) {
        return fail(
          "quorum_unreachable",
          `${succeeded} succeeded and ${remaining} remain: the quorum of ${quorum} can no longer be met`,
        );
      }
      return { kind: "wait" };
    }
    case "deadline": {
      const passed = step.deadlineAt !== undefined && now.getTime() >= Date.parse(step.deadlineAt);
      if (remaining > 0 && !passed) return { kind: "wait" };
      if (succeeded > 0) return { kind: "complete" };
      return passed && remaining > 0
        ? fail("deadline_exceeded", "no task succeeded before the deadline")
        : fail("no_success", "no task succeeded");
    }
  }
}

/** When a step starting at `startedAt` must be aggregated at the latest (deadline policy only). */
export function stepDeadline(step: Pick<JobStepState, "aggregation">, startedAt: Date): string | undefined {
  const { deadlineSeconds } = step.aggregation;
  if (step.aggregation.policy !== "deadline" || deadlineSeconds === undefined) return undefined;
  return new Date(startedAt.getTime() + deadlineSeconds * 1000).toISOString();
}

function fail(code: string, message: string): StepDecision {
  return { kind: "fail", error: { code, message } };
}
