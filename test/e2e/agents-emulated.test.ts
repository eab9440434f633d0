import { startLocalRuntime } from "#local/runtime";
import { demoWorkers, diagnosticsWorker } from "#shared/agents/demo";
import { platformConfig } from "#shared/agents/workers";
import type { AgentService } from "#shared/core/agents/agent-service";
import { describeAgentsApi } from "./agents.suite.ts";

// The same suite and configuration as agents-memory.test.ts, on `npm start -- --emulated`: the registry
// is DynamoAgentRegistry on DynamoDB Local, tasks go through the SQS emulator, and the workers run as
// the SQS-batch Lambda handlers they are deployed as (one agent per function, `lambda:<type>`).
// Three seconds, not one: on a loaded CI machine a DynamoDB Local round trip can take a good part of a
// second, and a test's own sequence of requests must not outlast the threshold it is not testing.
const AGENT_STALENESS_SECONDS = 3;
const SWEEP_INTERVAL_MS = 250;

/**
 * Runs the registry's paths a few times before the suite. A fresh DynamoDB Local JVM answers its first
 * requests in seconds, not milliseconds; with a short staleness threshold, an agent registered then is
 * already stale when its write lands, and the liveness sweep rightly marks it unavailable.
 */
async function warmUp(agents: AgentService): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const agentId = `warm-up-${round}`;
    await agents.register({
      agentId,
      agentType: "warm-up",
      capabilities: { supportedTools: ["warm-up"], supportedIntents: ["warm-up"], maxConcurrentTasks: 1 },
    });
    await agents.heartbeat(agentId);
    await agents.list({ capability: "warm-up", status: "available" });
    await agents.list({ agentType: "warm-up" });
    await agents.unregister(agentId);
  }
}

describeAgentsApi(
  "emulated AWS: DynamoDB Local + SQS emulator, Lambda workers",
  async () => {
    const runtime = await startLocalRuntime({
      mode: "emulated",
      port: 0,
      logLevel: "silent",
      config: { ...platformConfig, agentStalenessSeconds: AGENT_STALENESS_SECONDS },
      sweepIntervalMs: SWEEP_INTERVAL_MS,
      // Two diagnostics worker functions: on Lambda they are one agent, `lambda:diagnostics`.
      workers: [...demoWorkers, diagnosticsWorker],
    });
    try {
      await warmUp(runtime.agents);
    } catch (error) {
      await runtime.stop();
      throw error;
    }
    return {
      url: runtime.url,
      messaging: runtime.messaging,
      agentStalenessSeconds: AGENT_STALENESS_SECONDS,
      sweepIntervalMs: SWEEP_INTERVAL_MS,
      duplicatedAgentType: diagnosticsWorker.agentType,
      stop: () => runtime.stop(),
    };
  },
  { workerAgents: "lambda" },
);
