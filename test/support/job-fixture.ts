import type { TaskChangeProcessor } from "#shared/adapters/aws/task-stream-records";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { MemoryJobStore } from "#shared/adapters/memory/job-store";
import { MemoryTaskQueue } from "#shared/adapters/memory/task-queue";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { platformConfig } from "#shared/agents/workers";
import { Dispatcher } from "#shared/core/dispatcher";
import { Aggregator } from "#shared/core/jobs/aggregator";
import { JobService } from "#shared/core/jobs/job-service";
import type { JobDeps } from "#shared/core/jobs/job-steps";
import { createReducerRegistry, type ReducerDefinition } from "#shared/core/jobs/reducers";
import { Supervisor } from "#shared/core/supervisor";
import { TaskStream } from "#shared/core/task-stream";
import { NonRetryableError } from "#shared/domain/errors";
import { type BusEvent, EVENT_SOURCE, TERMINAL_TASK_DETAIL_TYPES } from "#shared/domain/events";
import type { JsonValue } from "#shared/domain/job";
import type { TaskInput } from "#shared/domain/task";
import type { EventPattern } from "#shared/ports/event-bus";
import type { JobStore } from "#shared/ports/job-store";
import type { ReceivedTaskMessage } from "#shared/ports/task-queue";
import type { TaskChange, TaskStore } from "#shared/ports/task-store";
import { settleMessage } from "#shared/worker/settle";
import { ManualClock, silentLogger } from "./core-fixture.ts";

/**
 * `echo` input of the job tests: `{ value, fail? }`. The output is `value` itself, so what a reducer
 * returns is easy to read; `fail: true` fails the task at once (no retry).
 */
export interface EchoInput {
  readonly value: unknown;
  readonly fail?: boolean;
}

export const echoTask = (value: JsonValue, fail = false): TaskInput => ({
  taskType: "echo",
  input: fail ? { value, fail } : { value },
});

/**
 * Jobs on the core with a manual clock: a JobService and an Aggregator over the given stores (memory
 * by default), the aggregator subscribed to the embedded bus as in the local runtime, and a
 * dispatcher the test drives message by message.
 */
/**
 * Terminal lifecycle events of tasks that belong to a job, as the fixture's bus subscription feeds
 * them to the aggregator. (The platform feeds it from the task stream instead, job tasks only;
 * `onTaskEvent` ignores any other event either way.)
 */
const JOB_TASK_EVENT_PATTERN: EventPattern = {
  source: [EVENT_SOURCE],
  "detail-type": [...TERMINAL_TASK_DETAIL_TYPES],
  detail: { jobId: [{ exists: true }] },
};

export function createJobFixture(
  options: {
    store?: TaskStore;
    jobs?: JobStore;
    reducers?: readonly ReducerDefinition[];
    /** Subscribe the aggregator to the bus. @default true */
    subscribe?: boolean;
    /** Replaces dependencies of the job service and aggregator (to inject faults). */
    decorate?: (deps: JobDeps) => JobDeps;
  } = {},
) {
  const config = platformConfig;
  const clock = new ManualClock();
  const store = options.store ?? new MemoryTaskStore();
  const jobs = options.jobs ?? new MemoryJobStore();
  const queue = new MemoryTaskQueue({ maxReceiveCount: config.maxReceiveCount, clock });
  // A subscriber that throws is a bug in these tests: keep its error and raise it after the delivery.
  const deliveryErrors: unknown[] = [];
  const bus = new MemoryEventBus({
    onError: (error) => deliveryErrors.push(error),
    maxDeliveryAttempts: 1,
    recordPublished: true,
  });
  // Lifecycle events and statistics follow from the store's change feed (the table's stream on AWS):
  // the memory store's own, or a poller over DynamoDB Local's stream the test connects (`useStream`).
  const taskStream = new TaskStream({ store, publisher: bus, publish: "all" });
  let delivered = 0;
  const processChanges = (changes: readonly TaskChange[]) => {
    delivered++;
    return taskStream.process(changes);
  };
  const memory = store instanceof MemoryTaskStore ? store : undefined;
  memory?.onChanges(processChanges);
  let streamCaughtUp: (() => Promise<void>) | undefined;
  const idle = async () => {
    for (;;) {
      const before = delivered;
      await memory?.idle();
      await streamCaughtUp?.();
      await bus.idle();
      if (delivered === before && !memory?.busy) break;
    }
    const [error] = deliveryErrors.splice(0);
    if (error !== undefined) throw error;
  };
  /** What a change stream the test connects feeds (a poller over DynamoDB Local's stream). */
  const changeProcessor: TaskChangeProcessor = { process: processChanges };
  /** `idle` also waits for the connected stream to be read to its end. */
  const useStream = (caughtUp: () => Promise<void>) => {
    streamCaughtUp = caughtUp;
  };
  const supervisor = new Supervisor({ store, queue, config, clock });
  const plain: JobDeps = {
    jobs,
    tasks: store,
    supervisor,
    publisher: bus,
    reducers: createReducerRegistry(options.reducers ?? []),
    clock,
  };
  const deps = options.decorate ? options.decorate(plain) : plain;
  const service = new JobService(deps);
  const aggregator = new Aggregator(deps);
  if (options.subscribe ?? true) {
    bus.subscribe(JOB_TASK_EVENT_PATTERN, async (event) => {
      await aggregator.onTaskEvent(event);
    });
  }

  const dispatcher = new Dispatcher(
    { store, config, clock, agentId: "agent-1", logger: silentLogger, random: () => 0.5 },
    {
      echo: (input) => {
        const { value, fail } = input as EchoInput;
        if (fail) throw new NonRetryableError("failing on purpose");
        return value;
      },
    },
  );

  /** Messages waiting on the diagnostics queue, in the order they were sent. */
  const receiveAll = async (): Promise<ReceivedTaskMessage[]> => {
    const received: ReceivedTaskMessage[] = [];
    for (;;) {
      const batch = await queue.receive("diagnostics", {
        maxMessages: 10,
        waitSeconds: 0,
        visibilitySeconds: 60,
      });
      if (batch.length === 0) return received;
      received.push(...batch);
    }
  };

  /** Runs the given messages one after the other, then waits until every event was delivered. */
  const run = async (messages: readonly ReceivedTaskMessage[]): Promise<void> => {
    for (const message of messages) {
      await settleMessage(queue, message, await dispatcher.process(message));
      await idle();
    }
    await idle();
  };

  /** Runs every queued task (and any a pipeline step queues meanwhile), in `order`. */
  const runAll = async (order: "sent" | "reverse" = "sent"): Promise<void> => {
    for (let messages = await receiveAll(); messages.length > 0; messages = await receiveAll()) {
      await run(order === "reverse" ? [...messages].reverse() : messages);
    }
  };

  /** Every terminal lifecycle event of a job's tasks published so far. */
  const terminalEvents = (jobId: string): BusEvent[] =>
    bus
      .inspectPublished()
      .filter((e) => e.detail.jobId === jobId && TERMINAL_TASK_DETAIL_TYPES.includes(e["detail-type"]));

  return {
    config,
    clock,
    store,
    jobs,
    queue,
    bus,
    supervisor,
    service,
    aggregator,
    idle,
    changeProcessor,
    useStream,
    receiveAll,
    run,
    runAll,
    terminalEvents,
  };
}
