import { startLocalRuntime } from "#local/runtime";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { TERMINAL_TASK_DETAIL_TYPES } from "#shared/core/jobs/aggregator";
import { describeJobsApi, jobsE2eConfig, jobsE2eWorkers, sumReducer } from "./jobs.suite.ts";

describeJobsApi("embedded adapters", async () => {
  const runtime = await startLocalRuntime({
    port: 0,
    logLevel: "silent",
    config: jobsE2eConfig,
    workers: jobsE2eWorkers,
    reducers: [sumReducer],
    // A quick timer, so deadlines are met within a few hundred milliseconds.
    sweepIntervalMs: 100,
    cancelCheckIntervalMs: 50,
  });
  return {
    url: runtime.url,
    stop: () => runtime.stop(),
    async replayTaskEvents(jobId) {
      if (!(runtime.bus instanceof MemoryEventBus))
        throw new Error("the local runtime's bus is not the embedded one");
      const events = runtime.bus
        .inspectPublished()
        .filter((e) => e.detail.jobId === jobId && TERMINAL_TASK_DETAIL_TYPES.includes(e["detail-type"]));
      // Twice, the second time in reverse: duplicated and reordered.
      await runtime.bus.publish([...events, ...[...events].reverse()]);
      await runtime.bus.idle();
      return events.length;
    },
  };
});
