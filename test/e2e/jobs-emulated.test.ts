import { startLocalRuntime } from "#local/runtime";
import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { TERMINAL_TASK_DETAIL_TYPES } from "#shared/core/jobs/aggregator";
import { describeJobsApi, jobsE2eConfig, jobsE2eWorkers, sumReducer } from "./jobs.suite.ts";

// The same suite and configuration as jobs-memory.test.ts, on `npm start -- --emulated`: jobs and tasks
// in DynamoDB Local, tasks through the SQS emulator to the workers' SQS-batch Lambda handlers. The scale
// job is smaller: each task is a dozen emulator round trips, and 500 of them would take most of the
// test budget to prove what 100 prove.

describeJobsApi(
  "emulated AWS: DynamoDB Local + SQS emulator",
  async () => {
    const runtime = await startLocalRuntime({
      mode: "emulated",
      port: 0,
      logLevel: "silent",
      config: jobsE2eConfig,
      workers: jobsE2eWorkers,
      reducers: [sumReducer],
      sweepIntervalMs: 100,
      cancelCheckIntervalMs: 50,
    });
    return {
      url: runtime.url,
      stop: () => runtime.stop(),
      async replayTaskEvents(jobId) {
        // EventBridge has no emulator: the emulated runtime keeps the in-process bus.
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
  },
  { bigJobSize: 100 },
);
