import { describe, expect, it } from "vitest";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { TaskStream } from "#shared/core/task-stream";
import { statisticsFromCounters } from "#shared/domain/statistics";
import type { TaskChange } from "#shared/ports/task-store";
import { createCoreFixture } from "#test/support/core-fixture";

const echo = (input: unknown) => input;

/** Runs tasks to their end on a fixture and returns every change its store committed, in order. */
async function committedChanges(): Promise<{ changes: TaskChange[]; listed: Record<string, number> }> {
  const f = createCoreFixture();
  const changes: TaskChange[] = [];
  f.store.onChanges(async (batch) => {
    changes.push(...batch);
    return {};
  });
  for (let i = 0; i < 4; i++) await f.submitOne({ input: { value: i } });
  await f.supervisor.submit([{ taskType: "unroutable", input: 0 }]);
  for (let i = 0; i < 3; i++) await f.dispatcher({ echo }).process(await f.receiveOne());
  await f.store.idle();
  const listed: Record<string, number> = {};
  for (const task of (await f.store.list({ limit: 100 })).items)
    listed[task.status] = (listed[task.status] ?? 0) + 1;
  return { changes, listed };
}

describe("TaskStream", () => {
  it("keeps statistics equal to the listing's counts under duplicated and redelivered changes", async () => {
    const { changes, listed } = await committedChanges();
    const counters = new MemoryTaskStore();
    const stream = new TaskStream({ store: counters });
    const half = Math.floor(changes.length / 2);

    await stream.process(changes.slice(0, half));
    await stream.process([...changes.slice(0, half + 2), changes[1] as TaskChange]); // redelivered + duplicate
    await stream.process(changes.slice(half)); // overlaps the last delivery
    await stream.process(changes); // everything again

    const stats = statisticsFromCounters(await counters.readCounters());
    expect(stats).toMatchObject({
      totalTasksSubmitted: 5,
      tasksCompleted: listed.completed ?? 0,
      tasksRejected: listed.rejected ?? 0,
      tasksPending: listed.submitted ?? 0,
      tasksInProgress: listed.working ?? 0,
    });
    expect(stats.tasksCompleted).toBe(3);
  });

  it("hands only job tasks' events to the aggregator, and reports the first change it failed", async () => {
    const { changes } = await committedChanges();
    const jobChange: TaskChange = {
      id: "job-task#2",
      before: {
        ...(changes.at(-1)?.after as NonNullable<TaskChange["after"]>),
        taskId: "job-task",
        status: "working",
        version: 1,
        jobId: "job-1",
      },
      after: {
        ...(changes.at(-1)?.after as NonNullable<TaskChange["after"]>),
        taskId: "job-task",
        status: "completed",
        version: 2,
        jobId: "job-1",
      },
    };
    const seen: string[] = [];
    let fail = true;
    const stream = new TaskStream({
      store: new MemoryTaskStore(),
      jobs: {
        onTaskEvent: async (event) => {
          seen.push(String(event.detail.taskId));
          if (fail) throw new Error("job store down");
        },
      },
    });

    const first = await stream.process([...changes, jobChange]);
    fail = false;
    const second = await stream.process([jobChange]);

    expect(first.failedAt).toBe(changes.length);
    expect(second.failedAt).toBeUndefined();
    expect(seen).toEqual(["job-task", "job-task"]);
  });
});
