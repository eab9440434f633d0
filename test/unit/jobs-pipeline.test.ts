import { describe, expect, it } from "vitest";
import { JobStepError } from "#shared/core/jobs/errors";
import { buildStepInputs } from "#shared/core/jobs/pipeline";
import {
  type FromPrevious,
  type JobResult,
  type JobStepPlan,
  PipelineJobRequestSchema,
  TaskJobRequestSchema,
} from "#shared/domain/job";

const collect = { policy: "all", reducer: "collect" } as const;

function plan(fromPrevious: FromPrevious, aggregation: JobStepPlan["aggregation"] = collect): JobStepPlan {
  return { tasks: { fromPrevious }, aggregation, failurePolicy: { mode: "fail-fast" } };
}

function result(output: unknown): JobResult {
  return { output: output as JobResult["output"], outputTaskIds: [], failedTasks: [] };
}

function stepError(run: () => unknown): JobStepError {
  try {
    run();
  } catch (error) {
    if (error instanceof JobStepError) return error;
    throw error;
  }
  throw new Error("expected a JobStepError");
}

describe("buildStepInputs", () => {
  it("builds one task whose input is the previous result when there is no template", () => {
    const inputs = buildStepInputs(plan({ taskType: "echo" }), { result: result({ a: 1 }) });

    expect(inputs).toEqual([{ taskType: "echo", input: { a: 1 } }]);
  });

  it("fans out over the previous result, one task per element, with item and index", () => {
    const inputs = buildStepInputs(
      plan({
        taskType: "summarize",
        forEach: "result",
        input: { text: { $from: "item.summary" }, position: { $from: "index" }, all: { $from: "result.1" } },
        priority: 7,
        metadata: { source: "pipeline" },
      }),
      { result: result([{ summary: "A." }, { summary: "B." }]) },
    );

    expect(inputs).toEqual([
      {
        taskType: "summarize",
        input: { text: "A.", position: 0, all: { summary: "B." } },
        priority: 7,
        metadata: { source: "pipeline" },
      },
      {
        taskType: "summarize",
        input: { text: "B.", position: 1, all: { summary: "B." } },
        priority: 7,
        metadata: { source: "pipeline" },
      },
    ]);
  });

  it("fans out over the previous step's tasks, with each task's input and output", () => {
    const inputs = buildStepInputs(
      plan({
        taskType: "summarize",
        forEach: "tasks",
        input: { text: { $from: "item.input.text" }, maxSentences: { $from: "item.output.sentences" } },
      }),
      {
        result: result([]),
        tasks: [
          { taskId: "t1", index: 0, input: { text: "One. Two." }, output: { sentences: 2 } },
          { taskId: "t2", index: 1, input: { text: "Three." }, output: { sentences: 1 } },
        ],
      },
    );

    expect(inputs.map((i) => i.input)).toEqual([
      { text: "One. Two.", maxSentences: 2 },
      { text: "Three.", maxSentences: 1 },
    ]);
  });

  it("copies a literal step's tasks as they are", () => {
    const literal: JobStepPlan = {
      tasks: [{ taskType: "echo", input: { value: 1 } }],
      aggregation: collect,
      failurePolicy: { mode: "fail-fast" },
    };

    expect(buildStepInputs(literal, { result: result(null) })).toEqual([
      { taskType: "echo", input: { value: 1 } },
    ]);
  });

  it("fails with template_unresolved when a path is not in the previous result", () => {
    const error = stepError(() =>
      buildStepInputs(plan({ taskType: "echo", input: { $from: "result.missing" } }), {
        result: result({ a: 1 }),
      }),
    );

    expect(error.code).toBe("template_unresolved");
  });

  it("fails with invalid_previous_result when forEach result meets something that is not a list", () => {
    const error = stepError(() =>
      buildStepInputs(plan({ taskType: "echo", forEach: "result" }), { result: result({ a: 1 }) }),
    );

    expect(error.code).toBe("invalid_previous_result");
  });

  it("fails with empty_step when there is nothing to fan out over", () => {
    expect(
      stepError(() => buildStepInputs(plan({ taskType: "echo", forEach: "result" }), { result: result([]) }))
        .code,
    ).toBe("empty_step");
  });

  it("fails with quorum_unreachable when fewer tasks are built than the quorum", () => {
    const error = stepError(() =>
      buildStepInputs(
        plan({ taskType: "echo", forEach: "result" }, { policy: "quorum", quorum: 3, reducer: "collect" }),
        {
          result: result([1, 2]),
        },
      ),
    );

    expect(error.code).toBe("quorum_unreachable");
  });
});

describe("job request schemas", () => {
  const task = { taskType: "echo", input: { value: 1 } };

  it("accepts the analyse → summarise → aggregate pipeline", () => {
    const parsed = PipelineJobRequestSchema.safeParse({
      steps: [
        { tasks: [{ taskType: "analyze_text", input: { text: "A. B." } }], aggregation: collect },
        {
          tasks: {
            fromPrevious: {
              taskType: "summarize",
              forEach: "tasks",
              input: { text: { $from: "item.input.text" }, maxSentences: 1 },
            },
          },
          aggregation: collect,
        },
        {
          tasks: { fromPrevious: { taskType: "echo", input: { value: { summaries: { $from: "result" } } } } },
          aggregation: { policy: "first", reducer: "merge" },
        },
      ],
    });

    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  });

  it("refuses a first step built from a previous step", () => {
    const parsed = PipelineJobRequestSchema.safeParse({
      steps: [{ tasks: { fromPrevious: { taskType: "echo" } }, aggregation: collect }],
    });

    expect(parsed.error?.issues.map((i) => i.path.join("."))).toEqual(["steps.0.tasks"]);
  });

  it("refuses item and index in a template without forEach, and malformed references", () => {
    const parsed = PipelineJobRequestSchema.safeParse({
      steps: [
        { tasks: [task], aggregation: collect },
        {
          tasks: {
            fromPrevious: {
              taskType: "echo",
              input: { a: { $from: "item" }, b: { $from: "nope" }, c: { $from: "result", x: 1 } },
            },
          },
          aggregation: collect,
        },
      ],
    });

    expect(parsed.error?.issues.map((i) => i.path.join("."))).toEqual([
      "steps.1.tasks.fromPrevious.input.a.$from",
      "steps.1.tasks.fromPrevious.input.b.$from",
      "steps.1.tasks.fromPrevious.input.c.$from",
    ]);
  });

  it("requires quorum with the quorum policy and refuses one larger than the tasks", () => {
    expect(
      TaskJobRequestSchema.safeParse({ tasks: [task], aggregation: { policy: "quorum", reducer: "collect" } })
        .error?.issues[0]?.path,
    ).toEqual(["aggregation", "quorum"]);
    expect(
      TaskJobRequestSchema.safeParse({
        tasks: [task],
        aggregation: { policy: "quorum", quorum: 2, reducer: "collect" },
      }).error?.issues[0]?.message,
    ).toMatch(/more than the 1 tasks/);
  });

  it("requires deadlineSeconds with the deadline policy only", () => {
    expect(
      TaskJobRequestSchema.safeParse({
        tasks: [task],
        aggregation: { policy: "deadline", reducer: "collect" },
      }).success,
    ).toBe(false);
    expect(
      TaskJobRequestSchema.safeParse({
        tasks: [task],
        aggregation: { policy: "all", deadlineSeconds: 5, reducer: "collect" },
      }).success,
    ).toBe(false);
  });

  it("refuses maxFailures with fail-fast, idempotency keys and reserved metadata in job tasks", () => {
    const parsed = TaskJobRequestSchema.safeParse({
      tasks: [{ ...task, idempotencyKey: "k", metadata: { "agentry:jobIndex": "9" } }],
      aggregation: collect,
      failurePolicy: { mode: "fail-fast", maxFailures: 1 },
    });

    expect(parsed.error?.issues.map((i) => i.path.join("."))).toEqual([
      "tasks.0.idempotencyKey",
      "tasks.0.metadata.agentry:jobIndex",
      "failurePolicy.maxFailures",
    ]);
  });

  it("accepts 1000 tasks and refuses 1001", () => {
    const tasks = Array.from({ length: 1001 }, () => task);

    expect(TaskJobRequestSchema.safeParse({ tasks: tasks.slice(1), aggregation: collect }).success).toBe(
      true,
    );
    expect(TaskJobRequestSchema.safeParse({ tasks, aggregation: collect }).success).toBe(false);
  });
});
