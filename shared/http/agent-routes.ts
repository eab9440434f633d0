import * as z from "zod";
import { type AgentService, MAX_AGENT_PAGE_SIZE } from "#shared/core/agents/agent-service";
import type { MessagingService } from "#shared/core/agents/messaging-service";
import {
  AgentIdentifierSchema,
  AgentListResponseSchema,
  HeartbeatResponseSchema,
  RegisterAgentInputSchema,
  SendMessageInputSchema,
  SendMessageResultSchema,
  UpdateAgentStatusInputSchema,
  WorkerPoolStatisticsSchema,
} from "#shared/core/agents/schemas";
import { AgentInfoSchema, AgentStatusSchema } from "#shared/domain/agent";
import { type ApiRoute, defineRoute, errorResponses, json, jsonBody } from "./route.ts";
import { CursorSchema } from "./schemas.ts";

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

const AGENTS_TAG = ["agents"];
const MESSAGES_TAG = ["messages"];
const UNKNOWN_AGENT = { 404: "`not_found`: no such agent" } as const;
const INVALID_BODY = "`invalid_json` or `validation_error` (see details)";

/** An id outside the agent id alphabet names no agent: 404, like any other unknown id. */
const AgentPathSchema = z.object({ agentId: AgentIdentifierSchema });

/**
 * The agent registry, worker pool and messaging routes: `/agents`, `/pool`, `/messages`. Bodies are
 * validated at the edge with the services' own schemas (the services check them again: the worker
 * SDK calls them directly).
 *
 * @example
 * const app = createApiApp({ routes: agentRoutes({ agents, messaging }), logger });
 */
export function agentRoutes(deps: AgentRoutesDeps): ApiRoute[] {
  const { agents, messaging } = deps;
  return [
    defineRoute(
      {
        method: "post",
        path: "/agents",
        operationId: "registerAgent",
        summary: "Register an agent, or update a registered one",
        description:
          "The agent is `available` and alive from now on. Without `agentId` one is generated. Registering " +
          "an existing `agentId` replaces its type, capabilities and endpoint and keeps `registeredAt`.",
        tags: AGENTS_TAG,
        request: {
          body: jsonBody(
            RegisterAgentInputSchema,
            "An agent announcing itself. Registering an existing agentId updates that agent.",
          ),
        },
        responses: {
          201: json("The agent as registered", AgentInfoSchema),
          ...errorResponses({ 400: INVALID_BODY }),
        },
      },
      async (c) => c.json(await agents.register(c.req.valid("json")), 201),
    ),
    defineRoute(
      {
        method: "get",
        path: "/agents",
        operationId: "listAgents",
        summary: "Find agents by capability, type and status",
        tags: AGENTS_TAG,
        request: { query: ListAgentsQuerySchema },
        responses: {
          200: json("The matching agents, by agentId", AgentListResponseSchema),
          ...errorResponses({ 400: "`validation_error`: a query parameter is invalid (see details)" }),
        },
      },
      async (c) => {
        const query = c.req.valid("query");
        const page = await agents.listPage(
          {
            ...(query.capability !== undefined ? { capability: query.capability } : {}),
            ...(query.type !== undefined ? { agentType: query.type } : {}),
            ...(query.status !== undefined ? { status: query.status } : {}),
          },
          { limit: query.limit, ...(query.cursor !== undefined ? { cursor: query.cursor } : {}) },
        );
        return c.json({ ...page, items: [...page.items] }, 200);
      },
    ),
    defineRoute(
      {
        method: "get",
        path: "/agents/{agentId}",
        operationId: "getAgent",
        summary: "Get an agent",
        tags: AGENTS_TAG,
        request: { params: AgentPathSchema },
        responses: { 200: json("The agent", AgentInfoSchema), ...errorResponses(UNKNOWN_AGENT) },
      },
      async (c) => c.json(await agents.get(c.req.valid("param").agentId), 200),
    ),
    defineRoute(
      {
        method: "put",
        path: "/agents/{agentId}/status",
        operationId: "updateAgentStatus",
        summary: "Set an agent's status",
        tags: AGENTS_TAG,
        request: { params: AgentPathSchema, body: jsonBody(UpdateAgentStatusInputSchema) },
        responses: {
          200: json("The agent with its new status", AgentInfoSchema),
          ...errorResponses({ 400: INVALID_BODY, ...UNKNOWN_AGENT }),
        },
      },
      async (c) =>
        c.json(await agents.updateStatus(c.req.valid("param").agentId, c.req.valid("json").status), 200),
    ),
    defineRoute(
      {
        method: "post",
        path: "/agents/{agentId}/heartbeat",
        operationId: "heartbeatAgent",
        summary: "Report that an agent is alive",
        description:
          "Refreshes `lastHeartbeat`; an agent marked `unavailable` for missing heartbeats becomes " +
          "`available` again. Answers the agent's working tasks that were asked to cancel: the agent " +
          "should stop them.",
        tags: AGENTS_TAG,
        request: { params: AgentPathSchema },
        responses: {
          200: json("The agent's working tasks that were asked to cancel", HeartbeatResponseSchema),
          ...errorResponses(UNKNOWN_AGENT),
        },
      },
      async (c) => {
        const { cancelRequests } = await agents.heartbeat(c.req.valid("param").agentId);
        return c.json({ cancelRequests }, 200);
      },
    ),
    defineRoute(
      {
        method: "delete",
        path: "/agents/{agentId}",
        operationId: "unregisterAgent",
        summary: "Unregister an agent",
        tags: AGENTS_TAG,
        request: { params: AgentPathSchema },
        responses: { 204: { description: "Unregistered" }, ...errorResponses(UNKNOWN_AGENT) },
      },
      async (c) => {
        await agents.unregister(c.req.valid("param").agentId);
        return c.body(null, 204);
      },
    ),
    defineRoute(
      {
        method: "get",
        path: "/pool",
        operationId: "getWorkerPool",
        summary: "Worker pool statistics",
        description:
          "Registered agents serving a capability (every agent without one), how many can take a task, " +
          "and the tasks they finished. Without a capability `averageTaskDurationMs` is exact over all " +
          "tasks; with one it is the average over the pool agents' most recent completed tasks.",
        tags: AGENTS_TAG,
        request: { query: PoolQuerySchema },
        responses: {
          200: json("The pool", WorkerPoolStatisticsSchema),
          ...errorResponses({ 400: "`validation_error`: a query parameter is invalid (see details)" }),
        },
      },
      async (c) => c.json(await agents.pool(c.req.valid("query").capability), 200),
    ),
    defineRoute(
      {
        method: "post",
        path: "/messages",
        operationId: "sendMessage",
        summary: "Send a message to an agent, or broadcast one",
        description:
          'To one registered agent, or with `toAgentId: "*"` to every registered agent matching ' +
          "`audience` (agentType, capability, status; all agents without one) at the time of the send, " +
          "the sender excepted. Delivery is asynchronous and at least once; a message whose `ttlSeconds` " +
          "(counted from `timestamp`) ran out is never delivered. A reply is a message back to the " +
          "sender with the request's `correlationId`.",
        tags: MESSAGES_TAG,
        request: {
          body: jsonBody(
            SendMessageInputSchema,
            'A message to one agent, or with toAgentId "*" a broadcast to an audience.',
          ),
        },
        responses: {
          202: json("Published to its recipients", SendMessageResultSchema),
          ...errorResponses({
            400: INVALID_BODY,
            404: "`not_found`: the recipient is not a registered agent",
            413: "`payload_too_large`: the message is over 240 KiB",
          }),
        },
      },
      async (c) => c.json(await messaging.send(c.req.valid("json")), 202),
    ),
  ];
}
