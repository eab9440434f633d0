import { randomUUID } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "#shared/domain/errors";
import type { BusEvent } from "#shared/domain/events";
import type { Task } from "#shared/domain/task";
import type { Clock } from "#shared/ports/clock";
import {
  type CreateTaskRequest,
  type OutboxEntry,
  outboxEntryId,
  type TaskStore,
  type TransitionRequest,
} from "#shared/ports/task-store";

/** Reads what a store persisted, around the adapter. */
export interface TaskStoreInspector {
  /** The task record exactly as stored (internals included), or undefined. */
  task(taskId: string): Promise<Task | undefined> | Task | undefined;
  /** Every outbox entry not yet cleared. */
  outbox(): Promise<readonly OutboxEntry[]> | readonly OutboxEntry[];
}

export interface TaskStoreContractSubject<S extends TaskStore> {
  /** A fresh, empty store that reads time from `clock` (and reads at most `maxScannedPerList` items per list). */
  create(options: { clock: Clock; maxScannedPerList?: number }): Promise<S> | S;
  inspect(store: S): TaskStoreInspector;
}

const BASE = Date.parse("2030-01-01T00:00:00.000Z");
const at = (seconds: number) => new Date(BASE + seconds * 1000).toISOString();

class TestClock implements Clock {
  private current = BASE;
  now(): Date {
    return new Date(this.current);
  }
  set(seconds: number): void {
    this.current = BASE + seconds * 1000;
  }
}

function newTask(overrides: Partial<Task> = {}): Task {
  const createdAt = overrides.createdAt ?? at(0);
  return {
    taskId: `task-${randomUUID()}`,
    taskType: "echo",
    status: "submitted",
    input: {
      text: "hello",
      nested: {
        list: [1, "two", null, { deep: true }],
        empty: {},
        emptyList: [],
        zero: 0,
        off: false,
        blank: "",
      },
      ratio: 0.25,
    },
    requiredCapability: "diagnostics",
    priority: 0,
    attempts: 0,
    maxAttempts: 3,
    timeoutSeconds: 30,
    cancelRequested: false,
    version: 1,
    createdAt,
    updatedAt: createdAt,
    metadata: { origin: "contract" },
    requestHash: "sha256:abc",
    queue: "diagnostics",
    ...overrides,
  };
}

function lifecycleEvent(task: Task, detailType: string, version = task.version): BusEvent {
  return {
    id: `${task.taskId}:${version}`,
    source: "agentry",
    "detail-type": detailType,
    time: at(1),
    resources: [`task/${task.taskId}`],
    detail: {
      taskId: task.taskId,
      taskType: task.taskType,
      status: task.status,
      version,
      nested: { a: [1, 2] },
    },
  };
}

function createRequest(task: Task, extra: Partial<CreateTaskRequest> = {}): CreateTaskRequest {
  return { task, counters: {}, events: [], ...extra };
}

const claim = (task: Task, overrides: Partial<TransitionRequest> = {}): TransitionRequest => ({
  taskId: task.taskId,
  from: ["submitted"],
  to: "working",
  expectedVersion: task.version,
  patch: {
    attempts: task.attempts + 1,
    leaseToken: "lease-1",
    leaseExpiresAt: at(60),
    startedAt: at(2),
    updatedAt: at(2),
    workerAgentId: "agent-1",
  },
  counters: { "status:submitted": -1, "status:working": 1 },
  ...overrides,
});

/**
 * The TaskStore contract: every adapter runs it. Each test gets a fresh, empty store.
 *
 * @example
 * describeTaskStoreContract("MemoryTaskStore", {
 *   create: ({ clock }) => new MemoryTaskStore({ clock }),
 *   inspect: (store) => ({ task: (id) => store.inspect(id), outbox: () => store.inspectOutbox() }),
 * });
 */
export function describeTaskStoreContract<S extends TaskStore>(
  name: string,
  subject: TaskStoreContractSubject<S>,
): void {
  describe(`${name} (TaskStore contract)`, () => {
    let clock: TestClock;
    let store: S;
    let inspect: TaskStoreInspector;

    beforeEach(async () => {
      clock = new TestClock();
      store = await subject.create({ clock });
      inspect = subject.inspect(store);
    });

    /** Stored task, counters and outbox, to prove a refused write changed nothing. */
    async function snapshot(taskId: string) {
      return {
        task: await inspect.task(taskId),
        counters: await store.readCounters(),
        outbox: [...(await inspect.outbox())].sort((a, b) => (a.id < b.id ? -1 : 1)),
      };
    }

    async function created(
      overrides: Partial<Task> = {},
      extra: Partial<CreateTaskRequest> = {},
    ): Promise<Task> {
      const task = newTask(overrides);
      await store.create(createRequest(task, extra));
      return task;
    }

    describe("create and get", () => {
      it("stores a new task with every field and returns it unchanged", async () => {
        const task = newTask({ preferredAgentId: "agent-9", jobId: "job-1", idempotencyKey: "key-1" });

        const outcome = await store.create(createRequest(task));

        expect(outcome).toEqual({ created: true, task });
        expect(await store.get(task.taskId)).toEqual(task);
        expect(await inspect.task(task.taskId)).toEqual(task);
      });

      it("returns undefined for a task that does not exist", async () => {
        expect(await store.get("no-such-task")).toBeUndefined();
      });

      it("refuses a second task with the same id and keeps the first", async () => {
        const task = await created();

        await expect(store.create(createRequest({ ...task, taskType: "other" }))).rejects.toThrow();

        expect(await inspect.task(task.taskId)).toEqual(task);
      });

      it("applies the counter deltas and stores the events with the write", async () => {
        clock.set(5);
        const task = newTask();
        const event = lifecycleEvent(task, "Task Submitted");

        await store.create(
          createRequest(task, { counters: { submitted: 1, "type:echo": 1 }, events: [event] }),
        );

        expect(await store.readCounters()).toEqual({ submitted: 1, "type:echo": 1 });
        expect(await inspect.outbox()).toEqual([
          { id: outboxEntryId(task.taskId, task.version), createdAt: at(5), events: [event] },
        ]);
      });

      it("returns the existing task for a known idempotency key and writes nothing", async () => {
        const first = await created(
          { idempotencyKey: "same-key" },
          { counters: { submitted: 1 }, events: [lifecycleEvent(newTask(), "Task Submitted")] },
        );
        const before = await snapshot(first.taskId);
        const second = newTask({ idempotencyKey: "same-key", input: { other: true } });

        const outcome = await store.create(
          createRequest(second, {
            counters: { submitted: 1 },
            events: [lifecycleEvent(second, "Task Submitted")],
          }),
        );

        expect(outcome).toEqual({ created: false, task: first });
        expect(await inspect.task(second.taskId)).toBeUndefined();
        expect(await snapshot(first.taskId)).toEqual(before);
      });

      it("finds the task an idempotency key created, and nothing for an unknown key", async () => {
        const task = newTask({ idempotencyKey: `key-${randomUUID()}` });
        await store.create({ task, counters: {}, events: [] });

        expect(await store.findByIdempotencyKey(task.idempotencyKey ?? "")).toEqual(
          await store.get(task.taskId),
        );
        expect(await store.findByIdempotencyKey(`key-${randomUUID()}`)).toBeUndefined();
      });

      it("creates exactly one task when creates with one idempotency key race", async () => {
        const tasks = Array.from({ length: 5 }, () => newTask({ idempotencyKey: "raced-key" }));

        const outcomes = await Promise.all(
          tasks.map((task) => store.create(createRequest(task, { counters: { submitted: 1 } }))),
        );

        expect(outcomes.filter((o) => o.created)).toHaveLength(1);
        const winner = outcomes.find((o) => o.created)?.task.taskId;
        expect(new Set(outcomes.map((o) => o.task.taskId))).toEqual(new Set([winner]));
        expect(await store.readCounters()).toEqual({ submitted: 1 });
      });
    });

    describe("transition", () => {
      it("applies the patch, sets the status and increments the version by one", async () => {
        const task = await created();

        const outcome = await store.transition(claim(task));

        const expected: Task = {
          ...task,
          status: "working",
          version: task.version + 1,
          attempts: 1,
          leaseToken: "lease-1",
          leaseExpiresAt: at(60),
          startedAt: at(2),
          updatedAt: at(2),
          workerAgentId: "agent-1",
        };
        expect(outcome).toEqual({ ok: true, task: expected });
        expect(await inspect.task(task.taskId)).toEqual(expected);
      });

      it("deletes the fields named in remove", async () => {
        const task = await created();
        const claimed = await store.transition(claim(task));
        if (!claimed.ok) throw new Error("claim failed");

        const outcome = await store.transition({
          taskId: task.taskId,
          from: ["working"],
          to: "submitted",
          expectedVersion: claimed.task.version,
          patch: { updatedAt: at(3) },
          remove: ["leaseToken", "leaseExpiresAt"],
        });

        const stored = await inspect.task(task.taskId);
        expect(outcome.ok).toBe(true);
        expect(stored).not.toHaveProperty("leaseToken");
        expect(stored).not.toHaveProperty("leaseExpiresAt");
        expect(stored).toMatchObject({ status: "submitted", version: 3, attempts: 1, input: task.input });
      });

      it("changes fields without changing the status when `to` is omitted", async () => {
        const task = await created();

        const outcome = await store.transition({
          taskId: task.taskId,
          from: ["submitted"],
          patch: { cancelRequested: true, updatedAt: at(4) },
        });

        expect(outcome).toEqual({
          ok: true,
          task: { ...task, cancelRequested: true, updatedAt: at(4), version: task.version + 1 },
        });
        expect(await inspect.task(task.taskId)).toEqual(outcome.ok ? outcome.task : undefined);
      });

      it("stores a nested result and the expiry time of a finished task", async () => {
        const task = await created();
        const claimed = await store.transition(claim(task));
        if (!claimed.ok) throw new Error("claim failed");
        const result = {
          success: true,
          output: { summary: "done", scores: [0.5, 1], none: null },
          executionTimeMs: 12,
        };

        const outcome = await store.transition({
          taskId: task.taskId,
          from: ["working"],
          to: "completed",
          leaseToken: "lease-1",
          expectedVersion: claimed.task.version,
          patch: { result, completedAt: at(9), updatedAt: at(9), expiresAt: 1_900_000_000 },
          remove: ["leaseToken", "leaseExpiresAt"],
          counters: { "status:working": -1, "status:completed": 1, execMsTotal: 12, execCount: 1 },
        });

        expect(outcome.ok).toBe(true);
        expect(await inspect.task(task.taskId)).toMatchObject({
          status: "completed",
          result,
          completedAt: at(9),
          expiresAt: 1_900_000_000,
        });
      });

      /** Each guard, on a plain field update and on a write that also carries counters and events. */
      const guardCases: {
        name: string;
        claimFirst: boolean;
        request: (task: Task) => TransitionRequest;
      }[] = [
        {
          name: "the status is not one of `from`",
          claimFirst: false,
          request: (task) => ({
            taskId: task.taskId,
            from: ["working"],
            to: "completed",
            patch: { updatedAt: at(9) },
          }),
        },
        {
          name: "the version is not the expected one",
          claimFirst: false,
          request: (task) => ({
            taskId: task.taskId,
            from: ["submitted"],
            to: "working",
            expectedVersion: task.version + 1,
            patch: { updatedAt: at(9) },
          }),
        },
        {
          name: "the write carries another worker's lease token",
          claimFirst: true,
          request: (task) => ({
            taskId: task.taskId,
            from: ["working"],
            to: "completed",
            leaseToken: "someone-elses-lease",
            patch: { completedAt: at(9), updatedAt: at(9) },
          }),
        },
        {
          name: "the lease to take over has not expired",
          claimFirst: true,
          request: (task) => ({
            taskId: task.taskId,
            from: ["working"],
            to: "working",
            leaseExpiredBefore: at(60),
            patch: { leaseToken: "lease-2", leaseExpiresAt: at(120), updatedAt: at(30) },
          }),
        },
        {
          name: "the task to take over holds no lease",
          claimFirst: false,
          request: (task) => ({
            taskId: task.taskId,
            from: ["submitted"],
            to: "working",
            leaseExpiredBefore: at(1000),
            patch: { leaseToken: "lease-2", updatedAt: at(30) },
          }),
        },
      ];
      const variants: { name: string; extra: (task: Task) => Partial<TransitionRequest> }[] = [
        { name: "a field update", extra: () => ({}) },
        {
          name: "a write with counters and events",
          extra: (task) => ({
            counters: { "status:working": -1, "status:completed": 1 },
            events: [lifecycleEvent(task, "Task Completed", 3)],
          }),
        },
      ];
      for (const guard of guardCases) {
        for (const variant of variants) {
          it(`refuses ${variant.name} when ${guard.name}, returns the stored task and writes nothing`, async () => {
            const task = await created();
            let current = task;
            if (guard.claimFirst) {
              const claimed = await store.transition(claim(task));
              if (!claimed.ok) throw new Error("claim failed");
              current = claimed.task;
            }
            const before = await snapshot(task.taskId);

            const outcome = await store.transition({ ...guard.request(current), ...variant.extra(current) });

            expect(outcome).toEqual({ ok: false, current });
            expect(await snapshot(task.taskId)).toEqual(before);
          });
        }
      }

      it("takes over a task once its lease has expired", async () => {
        const task = await created();
        const claimed = await store.transition(claim(task));
        if (!claimed.ok) throw new Error("claim failed");

        const outcome = await store.transition({
          taskId: task.taskId,
          from: ["working"],
          to: "working",
          leaseExpiredBefore: at(61),
          patch: { leaseToken: "lease-2", leaseExpiresAt: at(120), attempts: 2, updatedAt: at(61) },
        });

        expect(outcome.ok).toBe(true);
        expect(await inspect.task(task.taskId)).toMatchObject({
          leaseToken: "lease-2",
          attempts: 2,
          version: 3,
        });
      });

      it("decides on the stored task when the caller's snapshot is stale", async () => {
        const task = await created({}, { counters: { "status:submitted": 1 } });
        const claimed = await store.transition(claim(task));
        if (!claimed.ok) throw new Error("claim failed");
        // Somebody else changes the task after the worker took its snapshot (a cancel request).
        const bumped = await store.transition({
          taskId: task.taskId,
          from: ["working"],
          patch: { cancelRequested: true, updatedAt: at(2) },
        });
        if (!bumped.ok) throw new Error("cancel request failed");
        const event = lifecycleEvent(task, "Task Completed", 4);

        const outcome = await store.transition({
          taskId: task.taskId,
          from: ["working"],
          to: "completed",
          leaseToken: claimed.task.leaseToken,
          snapshot: claimed.task,
          patch: { result: { success: true, output: 1, executionTimeMs: 5 }, updatedAt: at(3) },
          counters: { "status:working": -1, "status:completed": 1 },
          events: [event],
        });

        expect(outcome.ok).toBe(true);
        expect(await inspect.task(task.taskId)).toMatchObject({
          status: "completed",
          cancelRequested: true,
          version: 4,
        });
        expect((await inspect.outbox()).map((e) => e.id)).toEqual([outboxEntryId(task.taskId, 4)]);
      });

      it("refuses a write whose guard fails on the stored task, whatever the snapshot says", async () => {
        const task = await created();
        const claimed = await store.transition(claim(task));
        if (!claimed.ok) throw new Error("claim failed");
        const before = await inspect.task(task.taskId);

        const outcome = await store.transition({
          taskId: task.taskId,
          from: ["working"],
          to: "completed",
          leaseToken: "somebody-else",
          snapshot: { ...claimed.task, leaseToken: "somebody-else" },
          patch: { updatedAt: at(3) },
          counters: { "status:working": -1, "status:completed": 1 },
        });

        expect(outcome.ok).toBe(false);
        expect(await inspect.task(task.taskId)).toEqual(before);
      });

      it("returns no current task when the task does not exist", async () => {
        const outcome = await store.transition(claim(newTask()));

        expect(outcome).toEqual({ ok: false, current: undefined });
        expect(await store.readCounters()).toEqual({});
        expect(await inspect.outbox()).toEqual([]);
      });

      it("applies counters and stores the outbox entry with the write", async () => {
        clock.set(7);
        const task = await created({}, { counters: { submitted: 1, "status:submitted": 1 } });
        const event = lifecycleEvent(task, "Task Started", 2);

        const outcome = await store.transition(claim(task, { events: [event] }));

        expect(outcome.ok).toBe(true);
        expect(await store.readCounters()).toEqual({
          submitted: 1,
          "status:submitted": 0,
          "status:working": 1,
        });
        expect(await inspect.outbox()).toEqual([
          { id: outboxEntryId(task.taskId, 2), createdAt: at(7), events: [event] },
        ]);
      });

      for (const variant of ["a field update", "a write with counters and events"] as const) {
        it(`lets exactly one of several racing writers win with ${variant}; the others see the winner`, async () => {
          const task = await created({}, { counters: { "status:submitted": 1 } });
          const atomic = variant === "a write with counters and events";

          const outcomes = await Promise.all(
            Array.from({ length: 5 }, (_, i) =>
              store.transition({
                taskId: task.taskId,
                from: ["submitted"],
                to: "working",
                expectedVersion: task.version,
                patch: { leaseToken: `lease-${i}`, leaseExpiresAt: at(60), updatedAt: at(2) },
                ...(atomic
                  ? {
                      counters: { "status:submitted": -1, "status:working": 1 },
                      events: [lifecycleEvent(task, "Task Started", 2)],
                    }
                  : {}),
              }),
            ),
          );

          const winners = outcomes.filter((o) => o.ok);
          expect(winners).toHaveLength(1);
          const stored = await inspect.task(task.taskId);
          expect(winners[0]).toEqual({ ok: true, task: stored });
          for (const loser of outcomes.filter((o) => !o.ok))
            expect(loser).toEqual({ ok: false, current: stored });
          expect(stored?.version).toBe(2);
          expect(await store.readCounters()).toEqual(
            atomic ? { "status:submitted": 0, "status:working": 1 } : { "status:submitted": 1 },
          );
          expect(await inspect.outbox()).toHaveLength(atomic ? 1 : 0);
        });
      }

      it("lets exactly one racing writer win on status alone, without an expected version", async () => {
        const task = await created();

        const outcomes = await Promise.all(
          Array.from({ length: 5 }, (_, i) =>
            store.transition({
              taskId: task.taskId,
              from: ["submitted"],
              to: "canceled",
              patch: { updatedAt: at(3), completedAt: at(3), workerAgentId: `canceler-${i}` },
              counters: { "status:canceled": 1 },
            }),
          ),
        );

        expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
        expect(await store.readCounters()).toEqual({ "status:canceled": 1 });
        expect((await inspect.task(task.taskId))?.version).toBe(2);
      });
    });

    describe("statistics counters", () => {
      it("start empty", async () => {
        expect(await store.readCounters()).toEqual({});
      });

      it("sum the deltas of every write across many tasks", async () => {
        const tasks = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            created(
              { taskType: i % 2 === 0 ? "echo" : "summarize" },
              {
                counters: {
                  submitted: 1,
                  "status:submitted": 1,
                  [`type:${i % 2 === 0 ? "echo" : "summarize"}`]: 1,
                },
              },
            ),
          ),
        );
        await Promise.all(tasks.slice(0, 6).map((task) => store.transition(claim(task))));

        expect(await store.readCounters()).toEqual({
          submitted: 20,
          "status:submitted": 14,
          "status:working": 6,
          "type:echo": 10,
          "type:summarize": 10,
        });
      });
    });

    describe("outbox", () => {
      async function withEventAt(seconds: number): Promise<Task> {
        clock.set(seconds);
        const task = newTask();
        await store.create(createRequest(task, { events: [lifecycleEvent(task, "Task Submitted")] }));
        return task;
      }

      it("lists the entries created before a time, oldest first, up to the limit", async () => {
        const tasks = [];
        for (const seconds of [30, 10, 40, 20]) tasks.push(await withEventAt(seconds));
        const [t30, t10, , t20] = tasks as [Task, Task, Task, Task];

        const pending = await store.pendingEvents(at(35), 10);
        const limited = await store.pendingEvents(at(35), 2);

        expect(pending.map((e) => e.id)).toEqual([t10, t20, t30].map((t) => outboxEntryId(t.taskId, 1)));
        expect(pending[0]).toEqual({
          id: outboxEntryId(t10.taskId, 1),
          createdAt: at(10),
          events: [lifecycleEvent(t10, "Task Submitted")],
        });
        expect(limited.map((e) => e.id)).toEqual([t10, t20].map((t) => outboxEntryId(t.taskId, 1)));
        expect(await store.pendingEvents(at(10), 10)).toEqual([]);
      });

      it("clears entries by id and ignores unknown ids", async () => {
        const first = await withEventAt(1);
        const second = await withEventAt(2);

        await store.clearEvents([outboxEntryId(first.taskId, 1), "unknown-task#3", "not-an-id"]);

        expect((await inspect.outbox()).map((e) => e.id)).toEqual([outboxEntryId(second.taskId, 1)]);
        expect((await store.pendingEvents(at(100), 10)).map((e) => e.id)).toEqual([
          outboxEntryId(second.taskId, 1),
        ]);
      });

      it("clears more entries than one batch request holds", async () => {
        const tasks = await Promise.all(Array.from({ length: 30 }, (_, i) => withEventAt(i)));

        await store.clearEvents(tasks.map((t) => outboxEntryId(t.taskId, 1)));

        expect(await inspect.outbox()).toEqual([]);
      });
    });

    describe("list", () => {
      /** 25 tasks, one second apart (two share a creation time), mixed types, statuses and update times. */
      async function seed(): Promise<Task[]> {
        const tasks: Task[] = [];
        for (let i = 0; i < 25; i++) {
          const task = newTask({
            taskId: `list-${String(i).padStart(2, "0")}-${randomUUID().slice(0, 8)}`,
            createdAt: at(i === 11 ? 10 : i),
            updatedAt: at(100 + i),
            taskType: i % 3 === 0 ? "summarize" : "echo",
          });
          await store.create(createRequest(task));
          tasks.push(task);
        }
        const working = tasks.filter((_, i) => i % 4 === 0);
        for (const task of working) {
          const outcome = await store.transition(claim(task, { patch: { updatedAt: at(200) } }));
          if (outcome.ok) tasks[tasks.indexOf(task)] = outcome.task;
        }
        return tasks;
      }

      const newestFirst = (tasks: readonly Task[]) =>
        [...tasks].sort((a, b) => {
          const ka = `${a.createdAt}#${a.taskId}`;
          const kb = `${b.createdAt}#${b.taskId}`;
          return ka < kb ? 1 : ka > kb ? -1 : 0;
        });

      async function allPages(
        query: { status?: Task["status"]; taskType?: string; updatedBefore?: string },
        limit: number,
      ) {
        const pages: Task[][] = [];
        let cursor: string | undefined;
        do {
          const page = await store.list({ ...query, limit, ...(cursor === undefined ? {} : { cursor }) });
          pages.push([...page.items]);
          cursor = page.nextCursor;
          if (pages.length > 50) throw new Error("list never ends");
        } while (cursor !== undefined);
        return pages;
      }

      it("pages newest first through every task exactly once", async () => {
        const tasks = await seed();

        const pages = await allPages({}, 7);

        expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 4]);
        expect(pages.flat()).toEqual(newestFirst(tasks));
      });

      it("has no next cursor when the last page is exactly full", async () => {
        for (let i = 0; i < 14; i++) await created({ createdAt: at(i) });

        const pages = await allPages({}, 7);

        expect(pages.map((p) => p.length)).toEqual([7, 7]);
      });

      it("filters by status across pages", async () => {
        const tasks = await seed();

        const pages = await allPages({ status: "submitted" }, 7);

        expect(pages.flat()).toEqual(newestFirst(tasks.filter((t) => t.status === "submitted")));
        expect(pages.flat().length).toBeGreaterThan(7);
      });

      it("filters by task type across pages", async () => {
        const tasks = await seed();

        const pages = await allPages({ taskType: "summarize" }, 3);

        expect(pages.flat()).toEqual(newestFirst(tasks.filter((t) => t.taskType === "summarize")));
      });

      it("filters by last update time", async () => {
        const tasks = await seed();

        const pages = await allPages({ updatedBefore: at(110) }, 4);

        expect(pages.flat()).toEqual(newestFirst(tasks.filter((t) => t.updatedAt < at(110))));
      });

      it("combines status, task type and update time filters", async () => {
        const tasks = await seed();

        const pages = await allPages({ status: "submitted", taskType: "echo", updatedBefore: at(120) }, 2);

        expect(pages.flat()).toEqual(
          newestFirst(
            tasks.filter((t) => t.status === "submitted" && t.taskType === "echo" && t.updatedAt < at(120)),
          ),
        );
      });

      it("returns an empty page without a cursor when nothing matches", async () => {
        await seed();

        const page = await store.list({ taskType: "no-such-type", limit: 5 });

        expect(page).toEqual({ items: [] });
      });

      it("bounds the items one filtered call reads, and its nextCursor continues to every match", async () => {
        const bounded = await subject.create({ clock, maxScannedPerList: 5 });
        const rare: Task[] = [];
        for (let i = 0; i < 60; i++) {
          const task = newTask({ createdAt: at(i), taskType: i < 2 ? "rare" : "common" });
          await bounded.create(createRequest(task));
          if (i < 2) rare.push(task);
        }

        const first = await bounded.list({ taskType: "rare", limit: 1 });
        const pages = [[...first.items]];
        let cursor = first.nextCursor;
        while (cursor !== undefined) {
          const page = await bounded.list({ taskType: "rare", limit: 1, cursor });
          pages.push([...page.items]);
          cursor = page.nextCursor;
          if (pages.length > 100) throw new Error("list never ends");
        }

        // The rare tasks are the oldest: a call that read its budget stops early, empty, with a cursor.
        expect(first.items).toEqual([]);
        expect(first.nextCursor).toBeDefined();
        expect(pages.flat().map((t) => t.taskId)).toEqual(newestFirst(rare).map((t) => t.taskId));
      });

      it("refuses a tampered cursor with a ValidationError before reading anything", async () => {
        await seed();
        const encode = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
        const tampered = [
          "not-a-cursor",
          encode({ before: "" }),
          encode({ before: "x".repeat(2_000) }),
          encode({ before: `${at(1)}#${"a".repeat(1_500)}` }),
          encode({ before: 42 }),
          Buffer.from(`${at(1)}#`, "utf8").toString("base64url"),
        ];

        for (const cursor of tampered) {
          await expect(store.list({ limit: 5, cursor })).rejects.toBeInstanceOf(ValidationError);
        }
      });
    });
  });
}
