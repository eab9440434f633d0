import * as z from "zod";
import { AgentCapabilitiesSchema, AgentInfoSchema, AgentStatusSchema } from "#shared/domain/agent";
import { type ErrorDetail, ValidationError } from "#shared/domain/errors";
import { StorableJsonSchema } from "#shared/domain/json";
import { AgentMessageSchema } from "#shared/domain/message";
import { jsonByteLength } from "#shared/domain/task";

/**
 * The shapes the agent use cases accept and return. The services validate their own inputs with
 * these (the HTTP routes and the worker SDK both call them), and the HTTP layer documents the same
 * schemas in the OpenAPI document.
 */

const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const IDENTIFIER_MESSAGE = "must start with a letter or digit and use only A-Z a-z 0-9 . _ : -";

/** Agent ids, agent types and message types: the same alphabet as task types and capabilities. */
export const AgentIdentifierSchema = z.string().min(1).max(128).regex(IDENTIFIER_PATTERN, IDENTIFIER_MESSAGE);

/** Agent metadata is stored with the agent (a DynamoDB item holds at most 400 KB). */
export const MAX_AGENT_METADATA_BYTES = 16 * 1024;

/** `POST /agents`. A registration without `agentId` gets a generated one. */
export const RegisterAgentInputSchema = z.strictObject({
  agentId: AgentIdentifierSchema.optional(),
  agentType: AgentIdentifierSchema,
  capabilities: AgentCapabilitiesSchema.refine(
    (c) => jsonByteLength(c.metadata) <= MAX_AGENT_METADATA_BYTES,
    { message: `metadata must be at most ${MAX_AGENT_METADATA_BYTES} bytes of JSON`, path: ["metadata"] },
  ),
  endpoint: z.url().max(2048).optional(),
});
export type RegisterAgentInput = z.input<typeof RegisterAgentInputSchema>;

/** `PUT /agents/{agentId}/status`. */
export const UpdateAgentStatusInputSchema = z.strictObject({ status: AgentStatusSchema });
export type UpdateAgentStatusInput = z.infer<typeof UpdateAgentStatusInputSchema>;

/** `POST /agents/{agentId}/heartbeat`: the working tasks of this agent that were asked to cancel. */
export const HeartbeatResponseSchema = z.object({ cancelRequests: z.array(z.string()) });
export type HeartbeatResponse = z.infer<typeof HeartbeatResponseSchema>;

export const AgentListResponseSchema = z.object({
  items: z.array(AgentInfoSchema),
  /** Present when there may be more agents: pass it as `cursor` for the next page. */
  nextCursor: z.string().optional(),
});

/** The registered agents serving one capability (or all agents), and what they have done. */
export const WorkerPoolStatisticsSchema = z.object({
  totalWorkers: z.int(),
  /** Status `available` and below `maxConcurrentTasks`. */
  availableWorkers: z.int(),
  /** Status `busy`, or `available` with every slot taken. */
  busyWorkers: z.int(),
  totalTasksProcessed: z.int(),
  averageTaskDurationMs: z.number(),
  /** Finished tasks per agent id (the `agent:<id>` statistics counters). */
  tasksByWorker: z.record(z.string(), z.int()),
});
export type WorkerPoolStatistics = z.infer<typeof WorkerPoolStatisticsSchema>;

/** Who receives a broadcast: every registered agent matching all the given fields, resolved at send time. */
export const MessageAudienceSchema = z.strictObject({
  agentType: AgentIdentifierSchema.optional(),
  capability: z.string().min(1).max(128).optional(),
  status: AgentStatusSchema.optional(),
});
export type MessageAudience = z.infer<typeof MessageAudienceSchema>;

/** The recipient of a broadcast. */
export const BROADCAST = "*";

/** Largest message on the wire: an EventBridge entry holds 256 KiB, envelope included. */
export const MAX_MESSAGE_BYTES = 240 * 1024;
/** Longest ttl a message may ask for (EventBridge retries a target for at most 24 hours). */
export const MAX_MESSAGE_TTL_SECONDS = 86_400;

/** `POST /messages` and `MessagingService.send`. */
export const SendMessageInputSchema = z
  .strictObject({
    /** Reusing an id makes a retried send recognizable as the same message to its recipients. */
    messageId: AgentIdentifierSchema.optional(),
    fromAgentId: AgentIdentifierSchema,
    toAgentId: z.union([z.literal(BROADCAST), AgentIdentifierSchema]),
    messageType: AgentIdentifierSchema,
    payload: StorableJsonSchema,
    headers: z
      .record(z.string().min(1).max(128), z.string().max(1024))
      .refine((h) => Object.keys(h).length <= 32, { message: "at most 32 headers" })
      .optional(),
    correlationId: z.string().min(1).max(128).optional(),
    ttlSeconds: z.int().min(1).max(MAX_MESSAGE_TTL_SECONDS).optional(),
    /** When the sender created the message; its ttl counts from here. @default - the time of the send */
    timestamp: z.iso.datetime({ offset: true }).optional(),
    audience: MessageAudienceSchema.optional(),
  })
  .refine((m) => m.audience === undefined || m.toAgentId === BROADCAST, {
    message: `an audience applies to a broadcast only (toAgentId "${BROADCAST}")`,
    path: ["audience"],
  });
export type SendMessageInput = z.input<typeof SendMessageInputSchema>;

/** What a send did: the message as sent (`toAgentId` is `*` for a broadcast) and who it went to. */
export const SendMessageResultSchema = z.object({
  message: AgentMessageSchema,
  recipients: z.array(z.string()),
});
export type SendMessageResult = z.infer<typeof SendMessageResultSchema>;

/**
 * Parses a use case's input, turning zod issues into a 400 `validation_error` whose details name each
 * offending field (an unknown field is reported at its own path, where the caller has to look).
 *
 * @example
 * const input = parseInput(RegisterAgentInputSchema, body, "invalid agent registration");
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, message: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(message, issueDetails(result.error.issues));
}

function issueDetails(issues: readonly z.core.$ZodIssue[]): ErrorDetail[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ path: [...path, key].join("."), message: "unknown field" }));
    }
    return [{ path: path.join("."), message: issue.message }];
  });
}
