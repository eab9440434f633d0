import { MemoryTaskStore } from "#shared/adapters/memory/task-store";
import { describeTaskStoreContract } from "./task-store.contract.ts";

describeTaskStoreContract("MemoryTaskStore", {
  create: ({ maxScannedPerList }) =>
    new MemoryTaskStore(maxScannedPerList !== undefined ? { maxScannedPerList } : {}),
  inspect: (store) => ({ task: (taskId) => store.inspect(taskId) }),
});
