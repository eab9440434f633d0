import { randomUUID } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "#shared/domain/errors";
import type { Task } from "#shared/domain/task";
import type { Clock } from "#shared/ports/clock";
import type {
  CountedChange,
  CreateTaskRequest,
  TaskStore,
  TransitionRequest,
} from "#shared/ports/task-store";

/** Reads what a store persisted, around the adapter. */
export interface TaskStoreInspector {
  /** The task record exactly as stored (internals included), or undefined. */
  task(taskId: string): Promise<Task | undefined> | Task | undefined;
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

function createRequest(task: Task): CreateTaskRequest {
  return { task };
}

/** Counted changes of consecutive versions of one task, each adding `delta` to `n`. */
function countedChanges(taskId: string, versions: readonly number[], delta = 1): CountedChange[] {
  return versions.map((version) => ({ id: `${taskId}#${version}`, deltas: { n: delta } }));
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
  ...overrides,
});

/**
 * The TaskStore contract: every adapter runs it. Each test gets a fresh, empty store.
 *
 * @example
 * describeTaskStoreContract("MemoryTaskStore", {
 *   create: ({ clock }) => new MemoryTaskStore(),
 *   inspect: (store) => ({ task: (id) => store.inspect(id) }),
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

    /** Stored task and counters, to prove a refused write changed nothing. */
    async function snapshot(taskId: string) {
      return { task: await inspect.task(taskId), counters: await store.readCounters() };
    }

    async function created(overrides: Partial<Task> = {}): Promise<Task> {
      const task = newTask(overrides);
      await store.create(createRequest(task));
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

      it("writes the task and nothing else: no counters (they follow from the change stream)", async () => {
        const task = await created();

        expect(await store.readCounters()).toEqual({});
        expect(await inspect.task(task.taskId)).toEqual(task);
      });

      it("returns the existing task for a known idempotency key and writes nothing", async () => {
        const first = await created({ idempotencyKey: "same-key" });
        const before = await snapshot(first.taskId);
        const second = newTask({ idempotencyKey: "same-key", input: { other: true } });

        const outcome = await store.create(createRequest(second));

        expect(outcome).toEqual({ created: false, task: first });
        expect(await inspect.task(second.taskId)).toBeUndefined();
        expect(await snapshot(first.taskId)).toEqual(before);
      });

      it("finds the task an idempotency key created, and nothing for an unknown key", async () => {
        const task = newTask({ idempotencyKey: `key-${randomUUID()}` });
        await store.create({ task });

        expect(await store.findByIdempotencyKey(task.idempotencyKey ?? "")).toEqual(
          await store.get(task.taskId),
        );
        expect(await store.findByIdempotencyKey(`key-${randomUUID()}`)).toBeUndefined();
      });

      it("creates exactly one task when creates with one idempotency key race", async () => {
        const tasks = Array.from({ length: 5 }, () => newTask({ idempotencyKey: "raced-key" }));

        const outcomes = await Promise.all(tasks.map((task) => store.create(createRequest(task))));

        expect(outcomes.filter((o) => o.created)).toHaveLength(1);
        const winner = outcomes.find((o) => o.created)?.task.taskId;
        expect(new Set(outcomes.map((o) => o.task.taskId))).toEqual(new Set([winner]));
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
        });

        expect(outcome.ok).toBe(true);
        expect(await inspect.task(task.taskId)).toMatchObject({
          status: "completed",
          result,
          completedAt: at(9),
          expiresAt: 1_900_000_000,
        });
      });

      /** Each guard, on a field update and on a status change. */
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
        { name: "a write", extra: () => ({}) },
        { name: "a field update", extra: () => ({ to: undefined }) },
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

      it("ends a task: it leaves the listing of unfinished tasks, and stays in the full listing", async () => {
        const task = await created();
        const claimed = await store.transition(claim(task));
        if (!claimed.ok) throw new Error("claim failed");

        await store.transition({
          taskId: task.taskId,
          from: ["working"],
          to: "completed",
          leaseToken: "lease-1",
          patch: { completedAt: at(3), updatedAt: at(3) },
          remove: ["leaseToken", "leaseExpiresAt"],
        });

        expect((await store.list({ status: "working", limit: 10 })).items).toEqual([]);
        expect((await store.list({ status: "completed", limit: 10 })).items.map((t) => t.taskId)).toEqual([
          task.taskId,
        ]);
        expect((await store.list({ limit: 10 })).items.map((t) => t.status)).toEqual(["completed"]);
      });

      it("returns no current task when the task does not exist", async () => {
        const outcome = await store.transition(claim(newTask()));

        expect(outcome).toEqual({ ok: false, current: undefined });
        expect(await store.readCounters()).toEqual({});
      });

      for (const variant of ["a field update", "a status change"] as const) {
        it(`lets exactly one of several racing writers win with ${variant}; the others see the winner`, async () => {
          const task = await created();

          const outcomes = await Promise.all(
            Array.from({ length: 5 }, (_, i) =>
              store.transition({
                taskId: task.taskId,
                from: ["submitted"],
                ...(variant === "a status change" ? { to: "working" as const } : {}),
                expectedVersion: task.version,
                patch: { leaseToken: `lease-${i}`, leaseExpiresAt: at(60), updatedAt: at(2) },
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
            }),
          ),
        );

        expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
        expect((await inspect.task(task.taskId))?.version).toBe(2);
      });
    });

    describe("statistics counters", () => {
      it("start empty", async () => {
        expect(await store.readCounters()).toEqual({});
      });

      it("sum the deltas of every change applied, across calls", async () => {
        await store.applyCounters([
          { id: "a#1", deltas: { submitted: 1, "status:submitted": 1, "type:echo": 1 } },
          { id: "b#1", deltas: { submitted: 1, "status:submitted": 1, "type:summarize": 1 } },
        ]);
        await store.applyCounters([{ id: "a#2", deltas: { "status:submitted": -1, "status:working": 1 } }]);

        expect(await store.readCounters()).toEqual({
          submitted: 2,
          "status:submitted": 1,
          "status:working": 1,
          "type:echo": 1,
          "type:summarize": 1,
        });
      });

      it("count a delivery delivered again in full only once", async () => {
        const changes = countedChanges("t", [1, 2, 3]);

        await store.applyCounters(changes);
        await store.applyCounters(changes);

        expect(await store.readCounters()).toEqual({ n: 3 });
      });

      it("count only the new changes of a redelivery that starts at the same change and goes further", async () => {
        await store.applyCounters(countedChanges("t", [1, 2, 3]));

        await store.applyCounters(countedChanges("t", [1, 2, 3, 4, 5]));

        expect(await store.readCounters()).toEqual({ n: 5 });
      });

      it("count nothing twice when a shorter redelivery (a bisected batch) starts at the same change", async () => {
        await store.applyCounters(countedChanges("t", [1, 2, 3, 4]));

        await store.applyCounters(countedChanges("t", [1, 2]));

        expect(await store.readCounters()).toEqual({ n: 4 });
      });

      it("count only the new changes of a replay from the stream's start across many earlier deliveries", async () => {
        // A consumer restarted without its checkpoint (the emulated runtime on its data directory)
        // reads the stream again from TRIM_HORIZON: one delivery spans every earlier one.
        for (let version = 1; version <= 12; version++)
          await store.applyCounters(countedChanges("t", [version]));

        await store.applyCounters(countedChanges("t", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]));

        expect(await store.readCounters()).toEqual({ n: 13 });
      });

      it("count a delivery that starts after the last counted change (a partial failure retried)", async () => {
        await store.applyCounters(countedChanges("t", [1, 2]));

        await store.applyCounters(countedChanges("t", [3, 4]));
        await store.applyCounters(countedChanges("t", [3, 4, 5]));

        expect(await store.readCounters()).toEqual({ n: 5 });
      });

      it("keep negative and zero-sum deltas exact", async () => {
        await store.applyCounters([
          { id: "t#1", deltas: { "status:submitted": 1 } },
          { id: "t#2", deltas: { "status:submitted": -1, "status:working": 1 } },
        ]);

        // A counter whose deltas sum to zero may be kept as 0 or not at all.
        const counters = await store.readCounters();
        expect(counters["status:working"]).toBe(1);
        expect(counters["status:submitted"] ?? 0).toBe(0);
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
