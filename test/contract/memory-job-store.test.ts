import { MemoryJobStore } from "#shared/adapters/memory/job-store";
import { outcomeBucket } from "#shared/domain/job";
import { describeJobStoreContract } from "./job-store.contract.ts";

describeJobStoreContract("MemoryJobStore", {
  create: () => new MemoryJobStore(),
  inspect: (store) => ({
    outcomes: async (jobId) =>
      (store.inspect(jobId)?.outcomes ?? []).map(({ taskId, status, taskVersion }) => ({
        taskId,
        status,
        taskVersion,
      })),
    // Counted from the kept outcomes rather than read from the record: the two must agree.
    counts: async (jobId, step) => {
      const stored = store.inspect(jobId);
      if (!stored) return undefined;
      const counts = { completed: 0, failed: 0, canceled: 0 };
      for (const o of stored.outcomes.filter((o) => o.step === step)) counts[outcomeBucket(o.status)]++;
      return counts;
    },
  }),
});
