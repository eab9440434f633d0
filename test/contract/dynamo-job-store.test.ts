import { randomUUID } from "node:crypto";
import { describe, expect, it, onTestFinished } from "vitest";
import { DynamoJobStore, JobKeys } from "#shared/adapters/aws/dynamo-job-store";
import { DynamoTaskStore } from "#shared/adapters/aws/dynamo-task-store";
import { attachRequestCounter, RequestCounter } from "#shared/adapters/aws/request-accounting";
import type { BusEvent } from "#shared/domain/events";
import type { JobRecord } from "#shared/domain/job";
import {
  createTestTable,
  localDynamoClient,
  readItem,
  readPartition,
  startTestTableStream,
} from "#test/support/aws";
import { createJobFixture, echoTask } from "#test/support/job-fixture";
import { describeJobStoreContract } from "./job-store.contract.ts";

const client = localDynamoClient();

describeJobStoreContract("DynamoJobStore", {
  create: async () => new DynamoJobStore({ client, tableName: await createTestTable(client), shards: 4 }),
  inspect: (store) => ({
    outcomes: async (jobId) =>
      (await readPartition(client, store.tableName, JobKeys.job(jobId).pk))
        .filter((item) => item.entity === "job-outcome")
        .map((item) => ({
          taskId: String(item.taskId),
          status: item.status as "completed",
          taskVersion: Number(item.taskVersion),
        })),
    counts: async (jobId, step) => {
      const item = await readItem(client, store.tableName, JobKeys.job(jobId));
      if (!item) return undefined;
      const count = (bucket: string) => Number(item[`count:${step}:${bucket}`] ?? 0);
      return { completed: count("completed"), failed: count("failed"), canceled: count("canceled") };
    },
  }),
});

function job(): JobRecord {
  const now = new Date().toISOString();
  return {
    jobId: `job-${randomUUID()}`,
    kind: "tasks",
    status: "working",
    version: 1,
    createdAt: now,
    updatedAt: now,
    currentStep: 0,
    stepCount: 1,
    steps: [
      {
        status: "working",
        total: 2,
        aggregation: { policy: "all", reducer: "collect" },
        failurePolicy: { mode: "fail-fast" },
        startedAt: now,
        tasksSubmitted: false,
        counts: { completed: 0, failed: 0, canceled: 0 },
      },
    ],
    eventPublished: false,
  };
}

describe("DynamoJobStore on DynamoDB", () => {
  it("records an outcome in one transaction and a duplicate writes nothing", async () => {
    const tableName = await createTestTable(client);
    const counted = localDynamoClient();
    const counter = new RequestCounter();
    attachRequestCounter(counted, counter);
    const store = new DynamoJobStore({ client: counted, tableName });
    const created = job();
    await store.create({ job: created, plan: [], counters: { "jobs:submitted": 1 } });
    const outcome = {
      taskId: "t1",
      step: 0,
      index: 0,
      status: "completed" as const,
      taskVersion: 3,
      output: { ok: true },
      recordedAt: new Date().toISOString(),
    };
    counter.reset();

    await store.recordTaskOutcome(created.jobId, outcome);
    const first = counter.snapshot().byOperation;
    counter.reset();
    const itemBefore = await readItem(client, tableName, JobKeys.job(created.jobId));
    const duplicate = await store.recordTaskOutcome(created.jobId, outcome);

    expect(first).toEqual({ "DynamoDB.TransactWriteItems": 1, "DynamoDB.GetItem": 1 });
    expect(duplicate.recorded).toBe(false);
    expect(await readItem(client, tableName, JobKeys.job(created.jobId))).toEqual(itemBefore);
    expect(itemBefore).toMatchObject({ "count:0:completed": 1 });
  });

  it("keeps job statistics in shards and the job's items in one partition under JOB#", async () => {
    const tableName = await createTestTable(client);
    const store = new DynamoJobStore({ client, tableName, shards: 4 });
    const jobs = Array.from({ length: 16 }, job);

    await Promise.all(jobs.map((j) => store.create({ job: j, plan: [], counters: { "jobs:submitted": 1 } })));
    await store.attachTasks({
      jobId: jobs[0]?.jobId ?? "",
      step: 0,
      taskIds: ["a", "b"],
      updatedAt: new Date().toISOString(),
    });

    const shardItems = (
      await Promise.all([0, 1, 2, 3].map((shard) => readItem(client, tableName, JobKeys.counters(shard))))
    ).filter((item) => item !== undefined);
    expect(shardItems.length).toBeGreaterThan(1);
    expect(await store.readCounters()).toEqual({ "jobs:submitted": 16 });
    const partition = await readPartition(client, tableName, `JOB#${jobs[0]?.jobId}`);
    expect(partition.map((item) => item.sk).sort()).toEqual(["JOB", "TASKS#000"]);
  });

  it("F12: a job run on DynamoDB is unchanged by duplicated and reordered events, statistics included", async () => {
    const tableName = await createTestTable(client);
    const f = createJobFixture({
      store: new DynamoTaskStore({ client, tableName, shards: 4 }),
      jobs: new DynamoJobStore({ client, tableName, shards: 4 }),
    });
    // Events and statistics come from the table's stream, as on AWS.
    const poller = await startTestTableStream(client, tableName, f.changeProcessor);
    f.useStream(() => poller.caughtUp());
    onTestFinished(() => poller.stop());
    const { jobId } = await f.service.submit({
      tasks: [echoTask("a"), echoTask("b", true), echoTask("c")],
      aggregation: { policy: "all", reducer: "collect" },
      failurePolicy: { mode: "tolerate" },
    });
    await f.runAll("reverse");
    const snapshot = async () => ({
      partition: (await readPartition(client, tableName, `JOB#${jobId}`)).sort((a, b) =>
        String(a.sk) < String(b.sk) ? -1 : 1,
      ),
      view: await f.service.get(jobId),
      jobStats: await f.service.statistics(),
      taskStats: await f.supervisor.statistics(),
    });
    const before = await snapshot();
    const events = f.terminalEvents(jobId);

    const reports = [];
    for (const event of [...events].reverse().concat(events, events)) {
      reports.push(await f.aggregator.onTaskEvent(event as BusEvent));
    }
    await f.idle();

    expect(before.view).toMatchObject({
      status: "completed",
      completed: 2,
      failed: 1,
      result: { output: ["a", "c"], failedTasks: [{ index: 1, status: "failed" }] },
    });
    expect(before.jobStats.jobs).toMatchObject({ submitted: 1, completed: 1, running: 0 });
    expect(reports.map((r) => r.kind)).toEqual(Array(9).fill("duplicate"));
    expect(await snapshot()).toEqual(before);
  });

  it("reconciles a job whose task events were all lost: outcomes read from the tasks, job completed, no longer due", async () => {
    const tableName = await createTestTable(client);
    const f = createJobFixture({
      store: new DynamoTaskStore({ client, tableName, shards: 4 }),
      jobs: new DynamoJobStore({ client, tableName, shards: 4 }),
      subscribe: false,
    });
    // Events and statistics come from the table's stream, as on AWS.
    const poller = await startTestTableStream(client, tableName, f.changeProcessor);
    f.useStream(() => poller.caughtUp());
    onTestFinished(() => poller.stop());
    const { jobId, taskIds } = await f.service.submit({
      tasks: [echoTask("a"), echoTask("b"), echoTask("c")],
      aggregation: { policy: "all", reducer: "collect" },
    });
    const [first, ...rest] = await f.receiveAll();
    await f.run(first ? [first] : []);

    f.clock.advance(f.config.jobReconcileSeconds * 1000);
    const checkedAt = f.clock.now().getTime();
    const partly = await f.aggregator.advanceDueJobs(f.clock.now());
    const rescheduled = await f.jobs.get(jobId);
    await f.run(rest);
    f.clock.advance(f.config.jobReconcileSeconds * 1000);
    const done = await f.aggregator.advanceDueJobs(f.clock.now());
    await f.idle();

    expect(partly).toMatchObject({ due: 1, advanced: 0, reconciled: 1 });
    expect(rescheduled).toMatchObject({
      status: "working",
      version: 2,
      steps: [{ counts: { completed: 1 } }],
    });
    // The next check is one whole interval after this one.
    expect(Date.parse(rescheduled?.dueAt ?? "") - checkedAt).toBeGreaterThanOrEqual(
      f.config.jobReconcileSeconds * 1000,
    );
    expect(done).toMatchObject({ due: 1, advanced: 1, reconciled: 2 });
    expect(await f.service.get(jobId)).toMatchObject({
      status: "completed",
      result: { output: ["a", "b", "c"], outputTaskIds: taskIds },
    });
    expect(await f.aggregator.advanceDueJobs(new Date(f.clock.now().getTime() + 86_400_000))).toMatchObject({
      due: 0,
    });
  });
});
