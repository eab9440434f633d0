import * as z from "zod";
import { type AgentService, MAX_AGENT_PAGE_SIZE } from "#shared/core/agents/agent-service";
import type { MessagingService } from "#shared/core/agents/messaging-service";
import {
  AgentIdentifierSchema,
  AgentListResponseSchema,
  HeartbeatResponseSchema,
  MessageAudienceSchema,
  type RegisterAgentInput,
  RegisterAgentInputSchema,
  type SendMessageInput,
  SendMessageInputSchema,
  SendMessageResultSchema,
  UpdateAgentStatusInputSchema,
  WorkerPoolStatisticsSchema,
} from "#shared/core/agents/schemas";
import { AgentInfoSchema, AgentStatusSchema } from "#shared/domain/agent";
import { NotFoundError } from "#shared/domain/errors";
import { AgentMessageSchema } from "#shared/domain/message";
import { errorResponses, queryParameters } from "./openapi.ts";
import type { ApiRequest, ApiRouteTable } from "./router.ts";
import { apiSchemas, CursorSchema, parseRequest, readJsonBody } from "./schemas.ts";

/** The use cases the agent routes call (the services, or stand-ins in tests). */
export interface AgentRoutesDeps {
  readonly agents: Pick<
    AgentService,
    "register" | "get" | "list" | "listPage" | "updateStatus" | "heartbeat" | "unregister" | "pool"
  >;
  readonly messaging: Pick<MessagingService, "send">;
}

/** `GET /agents` query parameters; all filters apply together. */
export const ListAgentsQuerySchema = z.object({
  capability: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .describe("Only agents with this capability among their supported tools or intents."),
  type: z.string().min(1).max(128).optional().describe("Only agents of this agentType."),
  status: AgentStatusSchema.optional().describe("Only agents in this status."),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_AGENT_PAGE_SIZE)
    .default(MAX_AGENT_PAGE_SIZE)
    .describe(`Most agents on the page (default and maximum ${MAX_AGENT_PAGE_SIZE}).`),
  cursor: CursorSchema.optional().describe("The nextCursor of the previous page."),
});

/** `GET /pool` query parameters. */
export const PoolQuerySchema = z.object({
  capability: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .describe("The pool of agents serving this capability (every agent when omitted)."),
});

apiSchemas.add(RegisterAgentInputSchema, {
  id: "RegisterAgentRequest",
  io: "input",
  description: "An agent announcing itself. Registering an existing agentId updates that agent.",
});
apiSchemas.add(AgentInfoSchema, { id: "AgentInfo" });
apiSchemas.add(AgentListResponseSchema, { id: "AgentList" });
apiSchemas.add(UpdateAgentStatusInputSchema, { id: "UpdateAgentStatusRequest", io: "input" });
apiSchemas.add(HeartbeatResponseSchema, {
  id: "HeartbeatResponse",
  description: "The agent's working tasks that were asked to cancel.",
});
apiSchemas.add(WorkerPoolStatisticsSchema, { id: "WorkerPoolStatistics" });
apiSchemas.add(MessageAudienceSchema, { id: "MessageAudience", io: "input" });
apiSchemas.add(SendMessageInputSchema, {
  id: "SendMessageRequest",
  io: "input",
  description: 'A message to one agent, or with toAgentId "*" a broadcast to an audience.',
});
apiSchemas.add(AgentMessageSchema, { id: "AgentMessage" });
apiSchemas.add(SendMessageResultSchema, { id: "SendMessageResponse" });

const AGENTS_TAG = ["agents"] as const;
const MESSAGES_TAG = ["messages"] as const;
const UNKNOWN_AGENT = { "404": "`not_found`: no such agent" } as const;

/**
 * The agent registry, worker pool and messaging routes: `/agents`, `/pool`, `/messages`. Each parses
 * what it needs from the request and calls one use case; the services validate bodies themselves
 * (the worker SDK calls them too), so invalid input is a 400 with details either way.
 *
 * @example
 * const handler = createSupervisorApiHandler({ supervisor, logger, extraRoutes: agentRoutes({ agents, messaging }) });
 */
export function agentRoutes(deps: AgentRoutesDeps): ApiRouteTable {
  const { agents, messaging } = deps;
  return [
    {
      method: "POST",
      path: "/agents",
      operation: {
        operationId: "registerAgent",
        summary: "Register an agent, or update a registered one",
        description:
          "The agent is `available` and alive from now on. Without `agentId` one is generated. Registering " +
          "an existing `agentId` replaces its type, capabilities and endpoint and keeps `registeredAt`.",
        tags: AGENTS_TAG,
        requestBody: { schema: RegisterAgentInputSchema },
        responses: {
          "201": { description: "The agent as registered", schema: AgentInfoSchema },
          ...errorResponses({
            "400": "`invalid_json` or `validation_error` (see details)",
          }),
        },
      },
      handle: async (request) => ({
        statusCode: 201,
        // Validated by the service.
        body: await agents.register(readJsonBody(request) as RegisterAgentInput),
      }),
    },
    {
      method: "GET",
      path: "/agents",
      operation: {
        operationId: "listAgents",
        summary: "Find agents by capability, type and status",
        tags: AGENTS_TAG,
        parameters: queryParameters(ListAgentsQuerySchema),
        responses: {
          "200": { description: "The matching agents, by agentId", schema: AgentListResponseSchema },
          ...errorResponses({ "400": "`validation_error`: a query parameter is invalid (see details)" }),
        },
      },
      handle: async (request) => {
        const query = parseRequest(ListAgentsQuerySchema, request.query, {
          message: "invalid query parameters",
        });
        const page = await agents.listPage(
          {
            ...(query.capability !== undefined ? { capability: query.capability } : {}),
            ...(query.type !== undefined ? { agentType: query.type } : {}),
            ...(query.status !== undefined ? { status: query.status } : {}),
          },
          { limit: query.limit, ...(query.cursor !== undefined ? { cursor: query.cursor } : {}) },
        );
        return { statusCode: 200, body: page };
      },
    },
    {
      method: "GET",
      path: "/agents/{agentId}",
      operation: {
        operationId: "getAgent",
        summary: "Get an agent",
        tags: AGENTS_TAG,
        responses: {
          "200": { description: "The agent", schema: AgentInfoSchema },
          ...errorResponses(UNKNOWN_AGENT),
        },
      },
      handle: async (request) => ({ statusCode: 200, body: await agents.get(agentIdOf(request)) }),
    },
    {
      method: "PUT",
      path: "/agents/{agentId}/status",
      operation: {
        operationId: "updateAgentStatus",
        summary: "Set an agent's status",
        tags: AGENTS_TAG,
        requestBody: { schema: UpdateAgentStatusInputSchema },
        responses: {
          "200": { description: "The agent with its new status", schema: AgentInfoSchema },
          ...errorResponses({
            "400": "`invalid_json` or `validation_error` (see details)",
            ...UNKNOWN_AGENT,
          }),
        },
      },
      handle: async (request) => {
        const agentId = agentIdOf(request);
        const { status } = parseRequest(UpdateAgentStatusInputSchema, readJsonBody(request), {
          message: "invalid agent status",
        });
        return { statusCode: 200, body: await agents.updateStatus(agentId, status) };
      },
    },
    {
      method: "POST",
      path: "/agents/{agentId}/heartbeat",
      operation: {
        operationId: "heartbeatAgent",
        summary: "Report that an agent is alive",
        description:
          "Refreshes `lastHeartbeat`; an agent marked `unavailable` for missing heartbeats becomes " +
          "`available` again. Answers the agent's working tasks that were asked to cancel: the agent " +
          "should stop them.",
        tags: AGENTS_TAG,
        responses: {
          "200": { description: "Cancel requests for the agent", schema: HeartbeatResponseSchema },
          ...errorResponses(UNKNOWN_AGENT),
        },
      },
      handle: async (request) => {
        const { cancelRequests } = await agents.heartbeat(agentIdOf(request));
        return { statusCode: 200, body: { cancelRequests } };
      },
    },
    {
      method: "DELETE",
      path: "/agents/{agentId}",
      operation: {
        operationId: "unregisterAgent",
        summary: "Unregister an agent",
        tags: AGENTS_TAG,
        responses: {
          "204": { description: "Unregistered" },
          ...errorResponses(UNKNOWN_AGENT),
        },
      },
      handle: async (request) => {
        await agents.unregister(agentIdOf(request));
        return { statusCode: 204, body: undefined };
      },
    },
    {
      method: "GET",
      path: "/pool",
      operation: {
        operationId: "getWorkerPool",
        summary: "Worker pool statistics",
        description:
          "Registered agents serving a capability (every agent without one), how many can take a task, " +
          "and the tasks they finished. Without a capability `averageTaskDurationMs` is exact over all " +
          "tasks; with one it is the average over the pool agents' most recent completed tasks.",
        tags: AGENTS_TAG,
        parameters: queryParameters(PoolQuerySchema),
        responses: {
          "200": { description: "The pool", schema: WorkerPoolStatisticsSchema },
          ...errorResponses({ "400": "`validation_error`: a query parameter is invalid (see details)" }),
        },
      },
      handle: async (request) => {
        const { capability } = parseRequest(PoolQuerySchema, request.query, {
          message: "invalid query parameters",
        });
        return { statusCode: 200, body: await agents.pool(capability) };
      },
    },
    {
      method: "POST",
      path: "/messages",
      operation: {
        operationId: "sendMessage",
        summary: "Send a message to an agent, or broadcast one",
        description:
          'To one registered agent, or with `toAgentId: "*"` to every registered agent matching ' +
          "`audience` (agentType, capability, status; all agents without one) at the time of the send, " +
          "the sender excepted. Delivery is asynchronous and at least once; a message whose `ttlSeconds` " +
          "(counted from `timestamp`) ran out is never delivered. A reply is a message back to the " +
          "sender with the request's `correlationId`.",
        tags: MESSAGES_TAG,
        requestBody: { schema: SendMessageInputSchema },
        responses: {
          "202": { description: "Published to its recipients", schema: SendMessageResultSchema },
          ...errorResponses({
            "400": "`invalid_json` or `validation_error` (see details)",
            "404": "`not_found`: the recipient is not a registered agent",
            "413": "`payload_too_large`: the message is over 240 KiB",
          }),
        },
      },
      handle: async (request) => ({
        statusCode: 202,
        // Validated by the service.
        body: await messaging.send(readJsonBody(request) as SendMessageInput),
      }),
    },
  ];
}

/** A path id that no agent could have names no agent: 404, like any other unknown id. */
function agentIdOf(request: ApiRequest): string {
  const agentId = request.params.agentId ?? "";
  if (!AgentIdentifierSchema.safeParse(agentId).success) {
    throw new NotFoundError(`agent ${agentId.slice(0, 128)} not found`);
  }
  return agentId;
}
