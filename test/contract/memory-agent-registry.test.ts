import { MemoryAgentRegistry } from "#shared/adapters/memory/agent-registry";
import { describeAgentRegistryContract } from "./agent-registry.contract.ts";

describeAgentRegistryContract("MemoryAgentRegistry", {
  create: () => new MemoryAgentRegistry(),
  // The memory registry keeps nothing beyond what get returns.
  inspect: (registry, agentId) => registry.get(agentId),
});
