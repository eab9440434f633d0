import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import {
  AgentKeys,
  batchGetAll,
  conditionFailureItem,
  type DynamoRetryOptions,
  type IndexName,
  isConditionFailure,
  KEY_ATTRIBUTES,
  keyAttributes,
  type ResolvedRetryOptions,
  resolveRetryOptions,
  withDynamoRetry,
} from "#shared/adapters/aws/table-schema";
import { AGENT_STATUSES, type AgentInfo, type AgentStatus, agentHasCapability } from "#shared/domain/agent";
import { AgentryError } from "#shared/domain/errors";
import type { AgentPage, AgentPageRequest, AgentQuery, AgentRegistry } from "#shared/ports/agent-registry";

export interface DynamoAgentRegistryOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** @default 8 attempts, 25 ms base delay, 2 s cap */
  readonly retry?: DynamoRetryOptions;
}

const MARSHALL_OPTIONS = { removeUndefinedValues: true } as const;

/**
 * The AgentRegistry on the shared DynamoDB table. An agent is two items in one partition: its profile
 * (indexed by type on gsi1 and by status on gsi2) and its load (`currentTaskCount`), which changes
 * with every task and is kept out of the indexes so per-task updates never write an index partition.
 * A capability is one of an agent's tools or intents; it is matched with a filter, since a list
 * cannot be a key.
 *
 * @example
 * const registry = new DynamoAgentRegistry({ client: new DynamoDBClient({}), tableName: "agentry" });
 * await registry.register(agent);
 * const available = await registry.list({ capability: "summarization", status: "available" });
 */
export class DynamoAgentRegistry implements AgentRegistry {
  readonly tableName: string;
  private readonly client: DynamoDBClient;
  private readonly retry: ResolvedRetryOptions;

  constructor(options: DynamoAgentRegistryOptions) {
    if (options.tableName.length < 3) {
      throw new AgentryError(`tableName must have at least 3 characters, got "${options.tableName}"`, {
        code: "configuration_error",
      });
    }
    this.client = options.client;
    this.tableName = options.tableName;
    this.retry = resolveRetryOptions(options.retry);
  }

  async register(agent: AgentInfo): Promise<AgentInfo> {
    const { currentTaskCount, registeredAt, ...profile } = agent;
    const names: Record<string, string> = { "#registeredAt": "registeredAt" };
    const values: Record<string, unknown> = { ":registeredAt": registeredAt };
    const sets = ["#registeredAt = if_not_exists(#registeredAt, :registeredAt)"];
    const fields: Record<string, unknown> = {
      ...profile,
      entity: "agent",
      gsi1pk: AgentKeys.byType(agent.agentType),
      gsi1sk: AgentKeys.sort(agent.agentId),
      gsi2pk: AgentKeys.byStatus(agent.status),
      gsi2sk: AgentKeys.sort(agent.agentId),
    };
    Object.entries(fields).forEach(([field, value], i) => {
      if (value === undefined) return;
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      sets.push(`#f${i} = :f${i}`);
    });
    // A re-registration replaces the profile: optional fields it no longer has are removed.
    const removes = agent.endpoint === undefined ? " REMOVE #endpoint" : "";
    if (removes) names["#endpoint"] = "endpoint";
    const token = randomUUID();
    await withDynamoRetry("TransactWriteItems", this.retry, () =>
      this.client.send(
        new TransactWriteItemsCommand({
          ClientRequestToken: token,
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: keyAttributes(AgentKeys.profile(agent.agentId)),
                UpdateExpression: `SET ${sets.join(", ")}${removes}`,
                ExpressionAttributeNames: names,
                ExpressionAttributeValues: marshall(values, MARSHALL_OPTIONS),
              },
            },
            {
              Put: {
                TableName: this.tableName,
                Item: marshall(
                  { ...AgentKeys.load(agent.agentId), entity: "agent-load", currentTaskCount },
                  MARSHALL_OPTIONS,
                ),
              },
            },
          ],
        }),
      ),
    );
    const stored = await this.get(agent.agentId);
    if (!stored)
      throw new AgentryError(`agent ${agent.agentId} vanished while registering`, {
        code: "conflict",
        statusCode: 409,
      });
    return stored;
  }

  async get(agentId: string): Promise<AgentInfo | undefined> {
    const { pk } = AgentKeys.profile(agentId);
    const output = await withDynamoRetry("Query", this.retry, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: pk } },
          ConsistentRead: true,
        }),
      ),
    );
    const items = output.Items ?? [];
    const profile = items.find((item) => item.sk?.S === AgentKeys.profile(agentId).sk);
    const load = items.find((item) => item.sk?.S === AgentKeys.load(agentId).sk);
    return profile ? agentFromItems(profile, load) : undefined;
  }

  async list(query: AgentQuery): Promise<readonly AgentInfo[]> {
    const partitions = this.partitionsOf(query);
    const profiles = (
      await Promise.all(partitions.map(({ index, partition }) => this.queryProfiles(index, partition, query)))
    ).flat();
    return (await this.withLoads(profiles))
      .filter(
        (agent) =>
          (query.status === undefined || agent.status === query.status) &&
          (query.capability === undefined || agentHasCapability(agent, query.capability)),
      )
      .sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
  }

  /** The agents of these profile items, each with its load item (running task count), read consistently. */
  private async withLoads(profiles: readonly Record<string, AttributeValue>[]): Promise<AgentInfo[]> {
    const loads = await batchGetAll(
      this.client,
      this.tableName,
      profiles.map((profile) => keyAttributes(AgentKeys.load(String(profile.agentId?.S)))),
      { ...this.retry, consistentRead: true },
    );
    const loadById = new Map(loads.map((item) => [String(item.pk?.S), item]));
    return profiles.map((profile) => agentFromItems(profile, loadById.get(String(profile.pk?.S))));
  }

  /**
   * One query per partition, each reading at most `limit + 1` items after `page.after`. Below the
   * lowest position a partition stopped at, nothing is known yet: the page holds what sorts up to it,
   * and continues from there.
   */
  async listPage(query: AgentQuery, page: AgentPageRequest): Promise<AgentPage> {
    const reads = await Promise.all(
      this.partitionsOf(query).map(({ index, partition }) =>
        this.queryProfilePage(index, partition, query, page),
      ),
    );
    let frontier: string | undefined;
    for (const read of reads) {
      if (read.position !== undefined && (frontier === undefined || read.position < frontier))
        frontier = read.position;
    }
    const profiles = reads
      .flatMap((read) => read.items)
      .filter((profile) => frontier === undefined || String(profile.agentId?.S) <= frontier)
      .sort((a, b) => (String(a.agentId?.S) < String(b.agentId?.S) ? -1 : 1));
    const matching = profiles.filter(
      (profile) => query.status === undefined || profile.status?.S === query.status,
    );
    const items = await this.withLoads(matching.slice(0, page.limit));
    const nextAfter =
      matching.length > page.limit ? items.at(-1)?.agentId : frontier !== undefined ? frontier : undefined;
    return { items, ...(nextAfter !== undefined ? { nextAfter } : {}) };
  }

  async updateStatus(agentId: string, status: AgentStatus): Promise<AgentInfo | undefined> {
    return this.updateProfile(agentId, "SET #status = :status, #gsi2pk = :statusKey", {
      names: { "#status": "status", "#gsi2pk": "gsi2pk" },
      values: { ":status": status, ":statusKey": AgentKeys.byStatus(status) },
    });
  }

  async markUnavailableIfStale(agentId: string, heartbeatAtOrBefore: string): Promise<AgentInfo | undefined> {
    return this.updateProfile(
      agentId,
      "SET #status = :status, #gsi2pk = :statusKey",
      {
        names: { "#status": "status", "#gsi2pk": "gsi2pk", "#lastHeartbeat": "lastHeartbeat" },
        values: {
          ":status": "unavailable",
          ":statusKey": AgentKeys.byStatus("unavailable"),
          ":cutoff": heartbeatAtOrBefore,
        },
      },
      // ISO-8601 UTC times of one format compare as strings.
      "#status <> :status AND #lastHeartbeat <= :cutoff",
    );
  }

  async heartbeat(agentId: string, at: string): Promise<AgentInfo | undefined> {
    return this.updateProfile(agentId, "SET #lastHeartbeat = :at", {
      names: { "#lastHeartbeat": "lastHeartbeat" },
      values: { ":at": at },
    });
  }

  async adjustTaskCount(agentId: string, delta: number): Promise<void> {
    if (!Number.isFinite(delta) || delta === 0) return;
    const Key = keyAttributes(AgentKeys.load(agentId));
    // Add when the result stays at or above zero; otherwise clamp to zero. A concurrent change between
    // the two writes sends us round again.
    for (let round = 0; round < 8; round++) {
      try {
        await withDynamoRetry("UpdateItem", this.retry, () =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.tableName,
              Key,
              UpdateExpression: "ADD #count :delta",
              ConditionExpression:
                delta < 0 ? "attribute_exists(pk) AND #count >= :floor" : "attribute_exists(pk)",
              ExpressionAttributeNames: { "#count": "currentTaskCount" },
              ExpressionAttributeValues: marshall(
                delta < 0 ? { ":delta": delta, ":floor": -delta } : { ":delta": delta },
              ),
              ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            }),
          ),
        );
        return;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        if (!conditionFailureItem(error)) return; // unknown agent
      }
      try {
        await withDynamoRetry("UpdateItem", this.retry, () =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.tableName,
              Key,
              UpdateExpression: "SET #count = :zero",
              ConditionExpression: "attribute_exists(pk) AND #count < :floor",
              ExpressionAttributeNames: { "#count": "currentTaskCount" },
              ExpressionAttributeValues: marshall({ ":zero": 0, ":floor": -delta }),
              ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            }),
          ),
        );
        return;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        if (!conditionFailureItem(error)) return;
      }
    }
  }

  async unregister(agentId: string): Promise<boolean> {
    const token = randomUUID();
    try {
      await withDynamoRetry("TransactWriteItems", this.retry, () =>
        this.client.send(
          new TransactWriteItemsCommand({
            ClientRequestToken: token,
            TransactItems: [
              {
                Delete: {
                  TableName: this.tableName,
                  Key: keyAttributes(AgentKeys.profile(agentId)),
                  ConditionExpression: "attribute_exists(pk)",
                },
              },
              { Delete: { TableName: this.tableName, Key: keyAttributes(AgentKeys.load(agentId)) } },
            ],
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  private async updateProfile(
    agentId: string,
    updateExpression: string,
    expression: { names: Record<string, string>; values: Record<string, unknown> },
    condition?: string,
  ): Promise<AgentInfo | undefined> {
    try {
      const [updated, load] = await Promise.all([
        withDynamoRetry("UpdateItem", this.retry, () =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.tableName,
              Key: keyAttributes(AgentKeys.profile(agentId)),
              UpdateExpression: updateExpression,
              ConditionExpression: condition
                ? `attribute_exists(pk) AND ${condition}`
                : "attribute_exists(pk)",
              ExpressionAttributeNames: expression.names,
              ExpressionAttributeValues: marshall(expression.values, MARSHALL_OPTIONS),
              ReturnValues: "ALL_NEW",
            }),
          ),
        ),
        this.readLoad(agentId),
      ]);
      return updated.Attributes ? agentFromItems(updated.Attributes, load) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  private async readLoad(agentId: string): Promise<Record<string, AttributeValue> | undefined> {
    const output = await withDynamoRetry("GetItem", this.retry, () =>
      this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: keyAttributes(AgentKeys.load(agentId)),
          ConsistentRead: true,
        }),
      ),
    );
    return output.Item;
  }

  private partitionsOf(query: AgentQuery): { index: IndexName; partition: string }[] {
    return query.agentType !== undefined
      ? [{ index: "gsi1", partition: AgentKeys.byType(query.agentType) }]
      : (query.status === undefined ? AGENT_STATUSES : [query.status]).map((status) => ({
          index: "gsi2" as const,
          partition: AgentKeys.byStatus(status),
        }));
  }

  private async queryProfilePage(
    index: IndexName,
    partition: string,
    query: AgentQuery,
    page: AgentPageRequest,
  ): Promise<{ items: Record<string, AttributeValue>[]; position?: string }> {
    const names: Record<string, string> = { "#pk": `${index}pk`, "#sk": `${index}sk` };
    const values: Record<string, unknown> = { ":pk": partition, ":after": AgentKeys.sort(page.after ?? "") };
    const filters: string[] = [];
    addCapabilityFilter(query, names, values, filters);
    const output = await withDynamoRetry("Query", this.retry, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: index,
          KeyConditionExpression: "#pk = :pk AND #sk > :after",
          ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: marshall(values, MARSHALL_OPTIONS),
          Limit: page.limit + 1,
        }),
      ),
    );
    const last = output.LastEvaluatedKey?.[`${index}sk`]?.S;
    return {
      items: output.Items ?? [],
      ...(last !== undefined ? { position: last.slice(AgentKeys.sort("").length) } : {}),
    };
  }

  private async queryProfiles(
    index: IndexName,
    partition: string,
    query: AgentQuery,
  ): Promise<Record<string, AttributeValue>[]> {
    const names: Record<string, string> = { "#pk": `${index}pk` };
    const values: Record<string, unknown> = { ":pk": partition };
    const filters: string[] = [];
    if (index === "gsi1" && query.status !== undefined) {
      names["#status"] = "status";
      values[":status"] = query.status;
      filters.push("#status = :status");
    }
    addCapabilityFilter(query, names, values, filters);
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const output = await withDynamoRetry("Query", this.retry, () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: index,
            KeyConditionExpression: "#pk = :pk",
            ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: marshall(values, MARSHALL_OPTIONS),
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        ),
      );
      items.push(...(output.Items ?? []));
      startKey = output.LastEvaluatedKey;
    } while (startKey);
    return items;
  }
}

function agentFromItems(
  profile: Record<string, AttributeValue>,
  load: Record<string, AttributeValue> | undefined,
): AgentInfo {
  const raw = unmarshall(profile);
  for (const attribute of KEY_ATTRIBUTES) delete raw[attribute];
  const count = load?.currentTaskCount?.N;
  return { ...raw, currentTaskCount: count === undefined ? 0 : Number(count) } as AgentInfo;
}

/** A capability matches a supported tool or intent: the filter both listings add to their queries. */
function addCapabilityFilter(
  query: AgentQuery,
  names: Record<string, string>,
  values: Record<string, unknown>,
  filters: string[],
): void {
  if (query.capability === undefined) return;
  names["#capabilities"] = "capabilities";
  names["#tools"] = "supportedTools";
  names["#intents"] = "supportedIntents";
  values[":capability"] = query.capability;
  filters.push(
    "(contains(#capabilities.#tools, :capability) OR contains(#capabilities.#intents, :capability))",
  );
}
