import { describeJobsApi, startJobsRuntime } from "./jobs.suite.ts";

// The same suite and configuration as jobs-memory.test.ts, on `npm start -- --emulated`: jobs and tasks
// in DynamoDB Local, tasks through the SQS emulator to the workers' SQS-batch Lambda handlers. The scale
// job is smaller: each task is a dozen emulator round trips, and 500 of them would take most of the
// test budget to prove what 100 prove.
describeJobsApi("emulated AWS: DynamoDB Local + SQS emulator", () => startJobsRuntime("emulated"), {
  bigJobSize: 100,
});
