import { startLocalRuntime } from "#local/runtime";
import { summarizationWorker, textAnalysisWorker } from "#shared/agents/demo";
import type { BusEvent } from "#shared/domain/events";
import { eventBusArns, startEventBridgeStandIn } from "#test/support/eventbridge-stand-in";
import { CHAOS_EVENT_BUS, chaosConfig } from "./config.ts";

/**
 * The chaos run's runtime process: the emulated runtime on DATA_DIR (DynamoDB Local on disk, so a
 * kill -9 and a restart keep every task) with the in-process Lambda-style workers for text analysis
 * and summarisation, and a PutEvents receiver that hands the worker processes' events to the
 * runtime's in-process bus, as EventBridge would to the aggregator. Prints one line
 * `READY {json}` with what the orchestrator and the worker processes need.
 */
const dataDir = process.env.DATA_DIR;
if (dataDir === undefined) throw new Error("DATA_DIR is required");
const runtime = await startLocalRuntime({
  mode: "emulated",
  port: 0,
  logLevel: "error",
  dataDir,
  sweepIntervalMs: 1_000,
  config: chaosConfig,
  workers: [textAnalysisWorker, summarizationWorker],
});
const emulated = runtime.emulated;
if (emulated === undefined) throw new Error("the emulated runtime did not report its emulators");
const events = await startEventBridgeStandIn({
  busArns: eventBusArns([CHAOS_EVENT_BUS]),
  subscriptionBus: CHAOS_EVENT_BUS,
});
events.subscribe({ source: ["agentry"] }, (event: BusEvent) => runtime.bus.publish([event]));
process.stdout.write(
  `READY ${JSON.stringify({
    url: runtime.url,
    dynamoEndpoint: emulated.dynamoEndpoint,
    sqsEndpoint: emulated.sqsEndpoint,
    eventsEndpoint: events.url,
    tableName: emulated.resources.tableName,
    queueUrls: emulated.resources.queueUrls,
    dlqUrls: emulated.resources.dlqUrls,
  })}\n`,
);
process.on("SIGTERM", () => {
  void events
    .close()
    .then(() => runtime.stop())
    .then(() => process.exit(0));
});
