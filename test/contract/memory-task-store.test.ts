import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { describeTaskStoreContract } from "./task-store.contract.ts";

describeTaskStoreContract("MemoryTaskStore", {
  create: ({ clock, maxScannedPerList }) =>
    new MemoryTaskStore({ clock, ...(maxScannedPerList !== undefined ? { maxScannedPerList } : {}) }),
  inspect: (store) => ({ task: (taskId) => store.inspect(taskId), outbox: () => store.inspectOutbox() }),
});
