import * as z from "zod";
import { StorableJsonSchema } from "./json.ts";

export const AGENT_STATUSES = ["available", "busy", "unavailable", "error", "unknown"] as const;
export const AgentStatusSchema = z.enum(AGENT_STATUSES);
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

export const AgentCapabilitiesSchema = z.object({
  supportedTools: z.array(z.string().min(1).max(128)).max(100).default([]),
  supportedIntents: z.array(z.string().min(1).max(128)).max(100).default([]),
  maxConcurrentTasks: z.int().min(1).max(10_000).default(1),
  metadata: z.record(z.string().min(1).max(128), StorableJsonSchema).default({}),
});
export type AgentCapabilities = z.infer<typeof AgentCapabilitiesSchema>;

export const AgentInfoSchema = z.object({
  agentId: z.string(),
  agentType: z.string(),
  status: AgentStatusSchema,
  capabilities: AgentCapabilitiesSchema,
  lastHeartbeat: z.string(),
  endpoint: z.string().optional(),
  currentTaskCount: z.int(),
  registeredAt: z.string(),
});
export type AgentInfo = z.infer<typeof AgentInfoSchema>;

/** A capability matches an agent when it is one of its supported tools or intents. */
export function agentHasCapability(agent: Pick<AgentInfo, "capabilities">, capability: string): boolean {
  return (
    agent.capabilities.supportedTools.includes(capability) ||
    agent.capabilities.supportedIntents.includes(capability)
  );
}
