import { startLocalRuntime } from "#local/runtime";
import { describeTaskApi, e2eConfig } from "./task-api.suite.ts";

describeTaskApi("embedded adapters", () =>
  startLocalRuntime({ port: 0, logLevel: "silent", config: e2eConfig }),
);
