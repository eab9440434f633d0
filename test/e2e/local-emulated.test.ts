import { startLocalRuntime } from "#local/runtime";
import { describeTaskApi, e2eConfig } from "./task-api.suite.ts";

// The same suite as local-memory.test.ts, unchanged, on `npm start -- --emulated`: the AWS adapters
// against DynamoDB Local and the SQS emulator, workers as SQS-batch Lambda handlers.
describeTaskApi("emulated AWS: DynamoDB Local + SQS emulator", () =>
  startLocalRuntime({ mode: "emulated", port: 0, logLevel: "silent", config: e2eConfig }),
);
