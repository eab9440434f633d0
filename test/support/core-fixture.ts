import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { MemoryTaskQueue } from "#shared/adapters/memory/task-queue";
import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { platformConfig } from "#shared/agents/workers";
import type { PlatformConfig } from "#shared/config/platform";
import { Dispatcher, type DispatcherDeps, type TaskHandler } from "#shared/core/dispatcher";
import { Supervisor } from "#shared/core/supervisor";
import { Sweeper } from "#shared/core/sweeper";
import { TaskStream } from "#shared/core/task-stream";
import type { TaskInput } from "#shared/domain/task";
import type { Clock } from "#shared/ports/clock";
import type { Logger } from "#shared/ports/logger";
import type { ReceivedTaskMessage } from "#shared/ports/task-queue";

/** A clock tests move by hand; it starts at the real time so real timers and stored times agree. */
export class ManualClock implements Clock {
  private offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The core wired to the embedded adapters, with a manual clock and no randomness. */
export function createCoreFixture(overrides: { config?: Partial<PlatformConfig> } = {}) {
  const config: PlatformConfig = { ...platformConfig, ...overrides.config };
  const clock = new ManualClock();
  const store = new MemoryTaskStore();
  const queue = new MemoryTaskQueue({ maxReceiveCount: config.maxReceiveCount, clock });
  const bus = new MemoryEventBus({ recordPublished: true });
  // Events and statistics follow from the store's change feed, as from the table's stream on AWS.
  const stream = new TaskStream({ store, publisher: bus, publish: "all" });
  store.onChanges((changes) => stream.process(changes));
  const supervisor = new Supervisor({ store, queue, config, clock });
  const sweeper = new Sweeper({ store, queue, config, clock });
  /** Waits until every change was delivered and every event handled. */
  const settled = async () => {
    do {
      await store.idle();
      await bus.idle();
    } while (store.busy);
  };

  const dispatcher = (handlers: Record<string, TaskHandler>, deps: Partial<DispatcherDeps> = {}) =>
    new Dispatcher(
      {
        store,
        config,
        clock,
        agentId: "agent-1",
        logger: silentLogger,
        random: () => 0.5,
        cancelCheckIntervalMs: 20,
        ...deps,
      },
      handlers,
    );

  const submitOne = async (input: Partial<TaskInput> = {}) => {
    const [accepted] = await supervisor.submit([{ taskType: "echo", input: { value: 1 }, ...input }]);
    if (!accepted) throw new Error("nothing accepted");
    return accepted.taskId;
  };

  /** Receives the one message waiting on a queue. */
  const receiveOne = async (queueName = "diagnostics"): Promise<ReceivedTaskMessage> => {
    const [message] = await queue.receive(queueName, {
      maxMessages: 1,
      waitSeconds: 0,
      visibilitySeconds: 30,
    });
    if (!message) throw new Error(`no message on ${queueName}`);
    return message;
  };

  return {
    config,
    clock,
    store,
    queue,
    bus,
    stream,
    settled,
    supervisor,
    sweeper,
    dispatcher,
    submitOne,
    receiveOne,
  };
}
