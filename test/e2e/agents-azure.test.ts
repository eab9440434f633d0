import { startLocalRuntime } from "#local/runtime";
import { demoWorkers, diagnosticsWorker } from "#shared/agents/demo";
import { platformConfig } from "#shared/agents/workers";
import { describeAgentsApi } from "./agents.suite.ts";

// The same suite as agents-memory.test.ts on `npm start -- --azure`: the pollers take their tasks
// (their own inbox queues included) from Service Bus queues, and agent messages travel on the Service
// Bus topic through the node's subscription rules — the real SDK against the local peer.
// Three seconds, as for the emulated suite: on a loaded machine a test's own requests must not outlast
// the threshold it is not testing.
const AGENT_STALENESS_SECONDS = 3;
const SWEEP_INTERVAL_MS = 250;

describeAgentsApi("Azure Service Bus: local peer, poller workers", async () => {
  const runtime = await startLocalRuntime({
    mode: "azure",
    port: 0,
    logLevel: "silent",
    config: { ...platformConfig, agentStalenessSeconds: AGENT_STALENESS_SECONDS },
    sweepIntervalMs: SWEEP_INTERVAL_MS,
    // Two diagnostics agents, so routing by agent has a choice to make.
    workers: [...demoWorkers, diagnosticsWorker],
  });
  return {
    url: runtime.url,
    messaging: runtime.messaging,
    agentStalenessSeconds: AGENT_STALENESS_SECONDS,
    sweepIntervalMs: SWEEP_INTERVAL_MS,
    duplicatedAgentType: diagnosticsWorker.agentType,
    stop: () => runtime.stop(),
  };
});
