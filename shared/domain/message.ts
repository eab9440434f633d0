import * as z from "zod";
import { StorableJsonSchema } from "./json.ts";

export const AgentMessageSchema = z.object({
  messageId: z.string(),
  fromAgentId: z.string(),
  toAgentId: z.string(),
  messageType: z.string(),
  payload: StorableJsonSchema,
  headers: z.record(z.string(), z.string()),
  timestamp: z.string(),
  correlationId: z.string().optional(),
  ttlSeconds: z.int().positive().optional(),
});
export type AgentMessage = z.infer<typeof AgentMessageSchema>;

/** A message whose ttl has run out is never delivered. */
export function isMessageExpired(message: AgentMessage, now: Date): boolean {
  if (message.ttlSeconds === undefined) return false;
  return Date.parse(message.timestamp) + message.ttlSeconds * 1000 <= now.getTime();
}
