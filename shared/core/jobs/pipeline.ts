import {
  type FromPrevious,
  type JobResult,
  type JobStepPlan,
  type JsonValue,
  MAX_JOB_TASKS,
  MAX_STEP_INPUT_BYTES,
  TEMPLATE_REFERENCE_KEY,
} from "#shared/domain/job";
import { findJsonProblem } from "#shared/domain/json";
import { jsonByteLength, MAX_PAYLOAD_BYTES, type TaskInput } from "#shared/domain/task";
import { JobStepError } from "./errors.ts";

/** A task whose output the previous step reduced, as `forEach: "tasks"` sees it. */
export interface PreviousTask {
  readonly taskId: string;
  readonly index: number;
  readonly input: JsonValue;
  readonly output: JsonValue;
}

export interface PreviousStep {
  readonly result: JobResult;
  /** Only needed (and only read) for `forEach: "tasks"`. */
  readonly tasks?: readonly PreviousTask[];
}

/** Whether building the step from `plan` needs the previous step's tasks (their inputs are read). */
export function needsPreviousTasks(plan: JobStepPlan): boolean {
  return (
    !Array.isArray(plan.tasks) && "fromPrevious" in plan.tasks && plan.tasks.fromPrevious.forEach === "tasks"
  );
}

/**
 * The task inputs of a pipeline step: its literal tasks, or tasks built from the previous step's
 * result without a client round trip. Deterministic, so a step whose submission was interrupted is
 * rebuilt identically and resubmitted under the same idempotency keys.
 *
 * @throws JobStepError when the previous result does not fit the template (`template_unresolved`,
 * `invalid_previous_result`), yields no task (`empty_step`) or too many (`too_many_tasks`), or a built
 * input is over 256 KiB (`input_too_large`), the step's inputs together are over 8 MiB (`fan_out_too_large`), or a built input
 * breaks the JSON acceptance rule (`input_not_storable`).
 *
 * @example
 * buildStepInputs(
 *   { tasks: { fromPrevious: { taskType: "summarize", forEach: "result", input: { text: { $from: "item.summary" } } } }, aggregation, failurePolicy },
 *   { result: { output: [{ summary: "A." }, { summary: "B." }], outputTaskIds: ["t1", "t2"], failedTasks: [] } },
 * ); // two summarize tasks
 */
export function buildStepInputs(plan: JobStepPlan, previous: PreviousStep): TaskInput[] {
  if (Array.isArray(plan.tasks)) return plan.tasks.map((task) => structuredClone(task));
  const spec = (plan.tasks as { fromPrevious: FromPrevious }).fromPrevious;
  const result = previous.result.output;
  const scopes = fanOut(spec, previous);
  if (scopes.length === 0)
    throw new JobStepError("empty_step", "the previous result gave this step nothing to fan out over");
  if (scopes.length > MAX_JOB_TASKS)
    throw new JobStepError(
      "too_many_tasks",
      `the previous result gives ${scopes.length} tasks; the limit is ${MAX_JOB_TASKS}`,
    );
  const { quorum } = plan.aggregation;
  if (quorum !== undefined && quorum > scopes.length) {
    throw new JobStepError(
      "quorum_unreachable",
      `quorum ${quorum} is more than the ${scopes.length} tasks built`,
    );
  }
  const template: JsonValue = spec.input ?? {
    [TEMPLATE_REFERENCE_KEY]: spec.forEach === undefined ? "result" : "item",
  };
  // The step's total is counted as inputs are built, so an amplifying template stops after the budget
  // is spent rather than after a thousand copies of a large result were made.
  let stepBytes = 0;
  return scopes.map((scope, index) => {
    const input = resolveTemplate(template, { result, ...scope });
    const bytes = jsonByteLength(input);
    if (bytes > MAX_PAYLOAD_BYTES) {
      throw new JobStepError(
        "input_too_large",
        `task ${index}'s input is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES}`,
      );
    }
    stepBytes += bytes;
    if (stepBytes > MAX_STEP_INPUT_BYTES) {
      throw new JobStepError(
        "fan_out_too_large",
        `the step's ${scopes.length} task inputs exceed ${MAX_STEP_INPUT_BYTES} bytes in total (over ${stepBytes} bytes by task ${index})`,
      );
    }
    const problem = findJsonProblem(input);
    if (problem !== undefined) {
      throw new JobStepError(
        "input_not_storable",
        `task ${index}'s input cannot be stored: ${problem.path || "(the input)"}: ${problem.message}`,
      );
    }
    return {
      taskType: spec.taskType,
      input,
      ...(spec.requiredCapability !== undefined ? { requiredCapability: spec.requiredCapability } : {}),
      ...(spec.preferredAgentId !== undefined ? { preferredAgentId: spec.preferredAgentId } : {}),
      ...(spec.priority !== undefined ? { priority: spec.priority } : {}),
      ...(spec.timeoutSeconds !== undefined ? { timeoutSeconds: spec.timeoutSeconds } : {}),
      ...(spec.maxAttempts !== undefined ? { maxAttempts: spec.maxAttempts } : {}),
      ...(spec.metadata !== undefined ? { metadata: { ...spec.metadata } } : {}),
    };
  });
}

type Scope = { readonly item?: JsonValue; readonly index?: number };

function fanOut(spec: FromPrevious, previous: PreviousStep): Scope[] {
  switch (spec.forEach) {
    case undefined:
      return [{}];
    case "result": {
      const output = previous.result.output;
      if (!Array.isArray(output)) {
        throw new JobStepError(
          "invalid_previous_result",
          'forEach "result" needs the previous step to produce a list (e.g. reducer "collect" or "concat")',
        );
      }
      return output.map((item, index) => ({ item, index }));
    }
    case "tasks": {
      const tasks = previous.tasks ?? [];
      return tasks.map((task, index) => ({
        item: { taskId: task.taskId, index: task.index, input: task.input, output: task.output },
        index,
      }));
    }
  }
}

function resolveTemplate(template: JsonValue, scope: Scope & { readonly result: JsonValue }): JsonValue {
  if (Array.isArray(template)) return template.map((item) => resolveTemplate(item, scope));
  if (template === null || typeof template !== "object") return template;
  if (Object.hasOwn(template, TEMPLATE_REFERENCE_KEY)) {
    const path = String(template[TEMPLATE_REFERENCE_KEY]);
    const value = lookup(scope, path.split("."));
    if (value === undefined) {
      throw new JobStepError("template_unresolved", `"${path}" is not in the previous step's result`);
    }
    return structuredClone(value);
  }
  return Object.fromEntries(
    Object.entries(template).map(([key, value]) => [key, resolveTemplate(value, scope)]),
  );
}

function lookup(
  scope: Scope & { readonly result: JsonValue },
  segments: readonly string[],
): JsonValue | undefined {
  const [root, ...rest] = segments;
  let value: JsonValue | undefined =
    root === "result"
      ? scope.result
      : root === "item"
        ? scope.item
        : root === "index"
          ? scope.index
          : undefined;
  for (const segment of rest) {
    if (Array.isArray(value)) {
      value = /^\d+$/.test(segment) ? value[Number(segment)] : undefined;
    } else if (value !== null && typeof value === "object" && Object.hasOwn(value, segment)) {
      value = (value as Record<string, JsonValue>)[segment];
    } else {
      return undefined;
    }
  }
  return value;
}
