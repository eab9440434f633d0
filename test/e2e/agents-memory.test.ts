import { startLocalRuntime } from "#local/runtime";
import { demoWorkers, diagnosticsWorker } from "#shared/agents/demo";
import { platformConfig } from "#shared/agents/workers";
import { describeAgentsApi } from "./agents.suite.ts";

const AGENT_STALENESS_SECONDS = 1;
const SWEEP_INTERVAL_MS = 250;

describeAgentsApi("embedded adapters", async () => {
  const runtime = await startLocalRuntime({
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
