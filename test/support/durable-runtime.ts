import { startLocalRuntime } from "#local/runtime";
import { e2eConfig } from "#test/e2e/task-api.suite";

/**
 * A child process for the durable restart test (test/e2e/durable-restart.test.ts): the emulated runtime
 * on DATA_DIR with short sweeper thresholds, so tasks whose queue messages died with the emulator are
 * found again within seconds. Prints `READY <url>` once it serves.
 */
const dataDir = process.env.DATA_DIR;
if (dataDir === undefined) throw new Error("DATA_DIR is required");
const runtime = await startLocalRuntime({
  mode: "emulated",
  port: 0,
  logLevel: "silent",
  dataDir,
  sweepIntervalMs: 250,
  config: {
    ...e2eConfig,
    retry: { ...e2eConfig.retry, baseDelaySeconds: 1, maxDelaySeconds: 2 },
    leaseGraceSeconds: 1,
    stuckSubmittedSeconds: 4,
  },
});
process.stdout.write(`READY ${runtime.url}\n`);
process.on("SIGTERM", () => {
  void runtime.stop().then(() => process.exit(0));
});
