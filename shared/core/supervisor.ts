import { createHash, randomUUID } from "node:crypto";
import { findCapability, type PlatformConfig } from "#shared/config/platform";
import {
  AlreadyTerminalError,
  ConcurrentUpdateError,
  IdempotencyConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "#shared/domain/errors";
import { findJsonProblem } from "#shared/domain/json";
import { isTerminal } from "#shared/domain/lifecycle";
import { type SupervisorStatistics, statisticsFromCounters } from "#shared/domain/statistics";
import {
  jsonByteLength,
  MAX_BATCH_SIZE,
  MAX_PAYLOAD_BYTES,
  type SubmittedTask,
  type Task,
  type TaskInput,
  type TaskStatus,
} from "#shared/domain/task";
import { cancelWrite, requestCancelWrite, retentionExpiry } from "#shared/domain/transitions";
import { type Clock, systemClock } from "#shared/ports/clock";
import type { Logger } from "#shared/ports/logger";
import type { TaskQueue } from "#shared/ports/task-queue";
import type { ListTasksQuery, TaskPage, TaskStore } from "#shared/ports/task-store";
import type { AgentRouting } from "./agents/agent-router.ts";
import { routeTask } from "./routing.ts";

export interface SupervisorDeps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  readonly config: PlatformConfig;
  readonly clock?: Clock;
  readonly newId?: () => string;
  readonly logger?: Pick<Logger, "warn">;
  /** Routing by agent (`preferredAgentId` → the agent's inbox). @default - capability queues only */
  readonly agentRouting?: AgentRouting;
}

export interface SubmitOptions {
  /** The `Idempotency-Key` header: applies to a single-task submission only. */
  readonly idempotencyKey?: string;
  /** Set by jobs: the job the tasks belong to. */
  readonly jobId?: string;
}

const MAX_LIST_LIMIT = 100;

/**
 * The supervisor's use cases: accept tasks, route them, answer status/list/cancel/statistics.
 * Bad input is refused before anything is written; an accepted task is persisted before it is
 * enqueued, and a task whose enqueue failed is enqueued again by the sweeper.
 *
 * @example
 * const supervisor = new Supervisor({ store, queue, config });
 * const [accepted] = await supervisor.submit([{ taskType: "echo", input: { value: 1 } }]);
 */
export class Supervisor {
  private readonly deps: SupervisorDeps;
  private readonly clock: Clock;
  private readonly newId: () => string;

  constructor(deps: SupervisorDeps) {
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.newId = deps.newId ?? randomUUID;
  }

  async submit(inputs: readonly TaskInput[], options: SubmitOptions = {}): Promise<SubmittedTask[]> {
    this.checkSubmission(inputs, options);
    const now = this.clock.now().toISOString();
    const drafts = inputs.map((input) =>
      this.draftTask(
        options.idempotencyKey !== undefined ? { ...input, idempotencyKey: options.idempotencyKey } : input,
        now,
        options.jobId,
      ),
    );

    await this.refuseConflictingKeys(drafts);
    const settled = await Promise.allSettled(drafts.map((task) => this.deps.store.create({ task })));
    const outcomes = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));

    // Whatever this request created is enqueued even if a sibling failed or conflicted: an accepted
    // task is never left waiting for the sweeper. (Its `Task Submitted` follows from the stream.) (A retry of the same request with the
    // same idempotency keys returns those tasks.)
    const created = outcomes.filter((o) => o.created).map((o) => o.task);
    const submitted = created.filter((t) => t.status === "submitted");
    // Agent routing: some tasks go to one agent's inbox; the task record keeps its capability queue,
    // so a retry or a sweep of a task whose agent died goes back to the capability's workers.
    const inboxes =
      (await this.deps.agentRouting?.inboxesFor(submitted).catch(() => undefined)) ??
      new Map<string, string>();
    await this.enqueue(submitted, inboxes);

    const failure = settled.find((r) => r.status === "rejected");
    if (failure) throw failure.reason;
    const conflicts = outcomes.flatMap((outcome, index) => {
      const draft = drafts[index];
      return !outcome.created && draft && outcome.task.requestHash !== draft.requestHash ? [draft] : [];
    });
    if (conflicts.length > 0)
      throw new IdempotencyConflictError(conflicts.map((t) => t.idempotencyKey).join(", "));
    return outcomes.map((o) => ({ taskId: o.task.taskId, status: o.task.status }));
  }

  async get(taskId: string): Promise<Task> {
    const task = await this.deps.store.get(taskId);
    if (!task) throw new NotFoundError(`task ${taskId} not found`);
    return task;
  }

  async list(query: Partial<ListTasksQuery>): Promise<TaskPage> {
    const limit = query.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`, [
        { path: "limit", message: `got ${limit}` },
      ]);
    }
    return this.deps.store.list({ ...query, limit });
  }

  /**
   * A submitted task is canceled at once. A working task is marked `cancelRequested`: its worker's
   * AbortSignal fires and the worker records `canceled` (forced by the sweeper at the lease deadline).
   */
  async cancel(taskId: string): Promise<Task> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const task = await this.get(taskId);
      if (isTerminal(task.status)) throw new AlreadyTerminalError(taskId, task.status);
      const now = this.clock.now().toISOString();
      const write =
        task.status === "working"
          ? requestCancelWrite(task, now)
          : cancelWrite(task, now, this.deps.config.finishedTaskRetentionDays);
      if (task.status === "working" && task.cancelRequested) return task;
      const outcome = await this.deps.store.transition({ taskId, ...write });
      if (outcome.ok) return outcome.task;
    }
    // Five lost races in a row means the task is changing fast; the caller may simply retry.
    throw new ConcurrentUpdateError(`task ${taskId} changed while it was being canceled; try again`);
  }

  async statistics(): Promise<SupervisorStatistics> {
    return statisticsFromCounters(await this.deps.store.readCounters());
  }

  /**
   * A batch with idempotency keys is checked before anything is written, so a reused key with a
   * different body refuses the whole request and writes nothing. (A single task needs no check: its
   * create is atomic. A key taken by a concurrent request between this check and the writes is still
   * caught by the create, after the batch's other tasks were written.)
   */
  private async refuseConflictingKeys(drafts: readonly Task[]): Promise<void> {
    const keyed = drafts.filter((d) => d.idempotencyKey !== undefined);
    if (drafts.length < 2 || keyed.length === 0) return;
    const existing = await Promise.all(
      keyed.map((d) => this.deps.store.findByIdempotencyKey(d.idempotencyKey ?? "")),
    );
    const conflicts = keyed.filter(
      (d, i) => existing[i] !== undefined && existing[i]?.requestHash !== d.requestHash,
    );
    if (conflicts.length > 0)
      throw new IdempotencyConflictError(conflicts.map((d) => d.idempotencyKey).join(", "));
  }

  private checkSubmission(inputs: readonly TaskInput[], options: SubmitOptions): void {
    if (inputs.length === 0)
      throw new ValidationError("at least one task is required", [{ path: "tasks", message: "empty" }]);
    if (inputs.length > MAX_BATCH_SIZE && options.jobId === undefined) {
      throw new ValidationError(`at most ${MAX_BATCH_SIZE} tasks per request`, [
        { path: "tasks", message: `got ${inputs.length}` },
      ]);
    }
    if (options.idempotencyKey !== undefined && inputs.length > 1) {
      throw new ValidationError(
        "the Idempotency-Key header applies to a single task; set idempotencyKey per task",
        [{ path: "Idempotency-Key", message: "not allowed with a batch" }],
      );
    }
    const keys = inputs.flatMap((i) => (i.idempotencyKey === undefined ? [] : [i.idempotencyKey]));
    if (new Set(keys).size !== keys.length) {
      throw new ValidationError("idempotency keys must be unique within a batch", [
        { path: "tasks", message: "duplicate idempotencyKey" },
      ]);
    }
    inputs.forEach((input, index) => {
      // A worker cannot run longer than its Lambda does: such a task could only ever time out.
      const capability = findCapability(
        this.deps.config,
        routeTask(this.deps.config, input).capability ?? "",
      );
      if (
        capability &&
        input.timeoutSeconds !== undefined &&
        input.timeoutSeconds > capability.workerTimeoutSeconds
      ) {
        throw new ValidationError(
          `task ${index}: timeoutSeconds exceeds the ${capability.name} workers' timeout`,
          [
            {
              path: inputs.length > 1 ? `tasks.${index}.timeoutSeconds` : "timeoutSeconds",
              message: `at most ${capability.workerTimeoutSeconds} for capability ${capability.name}, got ${input.timeoutSeconds}`,
            },
          ],
        );
      }
      const bytes = jsonByteLength(input.input);
      if (bytes > MAX_PAYLOAD_BYTES) {
        throw new PayloadTooLargeError(
          `task ${index} input is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`,
        );
      }
      // The edge checks this too; callers in code (pipelines, the SDK) reach the store only through here.
      const problem = findJsonProblem(input.input, {
        path: inputs.length > 1 ? ["tasks", index, "input"] : ["input"],
      });
      if (problem !== undefined) {
        throw new ValidationError(`task ${index}: input cannot be stored`, [
          { path: problem.path, message: problem.message },
        ]);
      }
    });
  }

  private draftTask(input: TaskInput, now: string, jobId: string | undefined): Task {
    const route = routeTask(this.deps.config, input);
    const status: TaskStatus = route.capability === undefined ? "rejected" : "submitted";
    return {
      taskId: this.newId(),
      taskType: input.taskType,
      status,
      input: input.input,
      requiredCapability: route.capability ?? input.requiredCapability ?? "",
      ...(input.preferredAgentId !== undefined ? { preferredAgentId: input.preferredAgentId } : {}),
      priority: input.priority ?? 0,
      attempts: 0,
      maxAttempts: input.maxAttempts ?? this.deps.config.retry.defaultMaxAttempts,
      ...(input.timeoutSeconds !== undefined ? { timeoutSeconds: input.timeoutSeconds } : {}),
      cancelRequested: false,
      version: 1,
      createdAt: now,
      updatedAt: now,
      metadata: input.metadata ?? {},
      ...(input.idempotencyKey !== undefined ? { idempotencyKey: input.idempotencyKey } : {}),
      ...(jobId !== undefined ? { jobId } : {}),
      requestHash: requestHash(input),
      ...(route.capability === undefined
        ? {
            completedAt: now,
            expiresAt: this.expiresAt(),
            error: {
              code: "no_route",
              message: input.requiredCapability
                ? `no capability "${input.requiredCapability}" is configured`
                : `no capability is configured for task type "${input.taskType}"`,
            },
          }
        : { queue: route.queue }),
    };
  }

  private async enqueue(
    all: readonly Task[],
    inboxes: ReadonlyMap<string, string> = new Map(),
  ): Promise<void> {
    // A task whose agent inbox cannot take it (an inbox this deployment has no queue for) goes to its
    // capability queue instead.
    const undelivered = await this.sendToInboxes(
      all.filter((t) => inboxes.has(t.taskId)),
      inboxes,
    );
    const tasks = [...all.filter((t) => !inboxes.has(t.taskId)), ...undelivered];
    if (tasks.length === 0) return;
    try {
      const failures = await this.deps.queue.send(
        tasks.map((t) => ({
          queue: t.queue ?? t.requiredCapability,
          body: { taskId: t.taskId, attempt: 1 },
        })),
      );
      if (failures.length > 0) {
        this.deps.logger?.warn("some tasks could not be enqueued; the sweeper will enqueue them", {
          taskIds: failures.map((f) => tasks[f.index]?.taskId),
        });
      }
    } catch (error) {
      // The tasks are persisted as `submitted`; the sweeper enqueues tasks stuck there.
      this.deps.logger?.warn("enqueue failed; the sweeper will enqueue the tasks", {
        error,
      });
    }
  }

  /** Sends tasks to their agents' inboxes; returns the tasks that could not be sent there. */
  private async sendToInboxes(tasks: readonly Task[], inboxes: ReadonlyMap<string, string>): Promise<Task[]> {
    if (tasks.length === 0) return [];
    try {
      const failures = await this.deps.queue.send(
        tasks.map((t) => ({ queue: inboxes.get(t.taskId) ?? "", body: { taskId: t.taskId, attempt: 1 } })),
      );
      return failures.flatMap((f) => tasks[f.index] ?? []);
    } catch {
      return [...tasks];
    }
  }

  private expiresAt(): number {
    return retentionExpiry(this.clock.now().toISOString(), this.deps.config.finishedTaskRetentionDays);
  }
}

/** A stable hash of what a submission asks for, to tell a retry from a conflicting reuse of a key. */
export function requestHash(input: TaskInput): string {
  const { idempotencyKey: _key, ...rest } = input;
  return createHash("sha256").update(stableStringify(rest)).digest("base64url");
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
