import { describe, expect, it } from "vitest";
import { MAX_PAYLOAD_BYTES } from "#shared/domain/task";
import { jobRoutes } from "#shared/http/job-routes";
import { taskRoutes } from "#shared/http/task-routes";
import { lambdaApi } from "#test/support/api-app";
import { createJobFixture, echoTask } from "#test/support/job-fixture";

function setup() {
  const f = createJobFixture();
  const { call } = lambdaApi([
    ...taskRoutes({ supervisor: f.supervisor }),
    ...jobRoutes({ jobs: f.service }),
  ]);
  return { f, call };
}

const collect = { policy: "all", reducer: "collect" } as const;

describe("job routes", () => {
  it("accepts a job with 202, its id and its task ids, and serves it", async () => {
    const { f, call } = setup();

    const submitted = await call({
      method: "POST",
      path: "/jobs",
      body: { tasks: [echoTask(1), echoTask(2)], aggregation: collect },
    });
    await f.runAll();
    const read = await call({ method: "GET", path: `/jobs/${submitted.body.jobId}` });

    expect(submitted.status).toBe(202);
    expect(Object.keys(submitted.body).sort()).toEqual(["jobId", "taskIds"]);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      status: "completed",
      taskIds: submitted.body.taskIds,
      result: { output: [1, 2] },
    });
    expect(read.body).not.toHaveProperty("steps");
  });

  it("reports schema errors against the shape the client meant: a pipeline when the body has steps", async () => {
    const { call } = setup();

    const pipeline = await call({
      method: "POST",
      path: "/jobs",
      body: { steps: [{ tasks: [echoTask(1)] }] },
    });

    expect(pipeline.status).toBe(400);
    expect(pipeline.body.error).toMatchObject({
      code: "validation_error",
      message: "invalid pipeline job",
      details: [{ path: "steps.0.aggregation" }],
    });
  });

  it("answers 413 for a task input over 256 KiB, in a job or in a pipeline step", async () => {
    const { f, call } = setup();
    const big = { taskType: "echo", input: { value: "x".repeat(MAX_PAYLOAD_BYTES) } };

    const job = await call({ method: "POST", path: "/jobs", body: { tasks: [big], aggregation: collect } });
    const pipeline = await call({
      method: "POST",
      path: "/jobs",
      body: {
        steps: [
          { tasks: [echoTask(1)], aggregation: collect },
          { tasks: [big], aggregation: collect },
        ],
      },
    });

    expect([job.status, pipeline.status]).toEqual([413, 413]);
    expect(pipeline.body.error.message).toMatch(/^steps\.1\.tasks\.0\.input/);
    expect((await f.service.statistics()).jobs.submitted).toBe(0);
  });

  it("answers 404 for an unknown job and for an id no job could have", async () => {
    const { call } = setup();

    const unknown = await call({ method: "GET", path: "/jobs/nope" });
    const absurd = await call({ method: "POST", path: `/jobs/${"x".repeat(300)}/cancel` });

    expect([unknown.status, absurd.status]).toEqual([404, 404]);
  });

  it("serves the job statistics next to, not inside, the task statistics", async () => {
    const { call, f } = setup();
    await call({ method: "POST", path: "/jobs", body: { tasks: [echoTask(1)], aggregation: collect } });
    await f.idle();

    const jobs = await call({ method: "GET", path: "/stats/jobs" });
    const tasks = await call({ method: "GET", path: "/stats" });

    expect(jobs.body).toEqual({ jobs: { submitted: 1, completed: 0, failed: 0, canceled: 0, running: 1 } });
    expect(tasks.body).not.toHaveProperty("jobs");
    expect(tasks.body.totalTasksSubmitted).toBe(1);
  });

  it("documents the job routes, and every $ref of the document resolves", async () => {
    const { call } = setup();

    const reply = await call({ method: "GET", path: "/openapi.json" });

    expect(reply.status).toBe(200);
    expect(reply.body.paths["/jobs"].post.requestBody.content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/SubmitJobRequest",
    });
    expect(Object.keys(reply.body.paths)).toEqual(
      expect.arrayContaining(["/jobs", "/jobs/{jobId}", "/jobs/{jobId}/cancel", "/stats/jobs"]),
    );
    const refs = [...reply.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (m) => m[1] ?? "",
    );
    for (const name of new Set(refs)) expect(reply.body.components.schemas, name).toHaveProperty([name]);
    expect(reply.text).not.toContain("__shared");
  });
});
