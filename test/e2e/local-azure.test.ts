import { startLocalRuntime } from "#local/runtime";
import { describeTaskApi, e2eConfig } from "./task-api.suite.ts";

// The same suite as local-memory.test.ts, unchanged, on `npm start -- --azure`: the task queue on
// Azure Service Bus (the real @azure/service-bus client against the local AMQP peer), workers as
// pollers reading the Service Bus queues.
describeTaskApi(
  "Azure Service Bus: local peer",
  () => startLocalRuntime({ mode: "azure", port: 0, logLevel: "silent", config: e2eConfig }),
  // The Service Bus adapter has no dead-letter listing yet (optional on the port: shared/ports/task-queue.ts).
  { deadLetters: false },
);
