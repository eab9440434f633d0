import { MemoryTaskQueue } from "#shared/adapters/memory/task-queue";
import { describeTaskQueueContract } from "./task-queue.contract.ts";

describeTaskQueueContract("MemoryTaskQueue", {
  create: ({ maxReceiveCount }) => new MemoryTaskQueue({ maxReceiveCount }),
  inspect: (queue, name) => queue.inspectQueue(name),
});
