import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { inject } from "vitest";
import { type RunningStreamPoller, startStreamPoller } from "#local/dynamo-stream-poller";
import {
  AgentKeys,
  createAgentryTable,
  type ItemKey,
  KEY_ATTRIBUTES,
  keyAttributes,
  TaskKeys,
} from "#shared/adapters/aws/table-schema";
import { createTaskStreamHandler, type TaskChangeProcessor } from "#shared/adapters/aws/task-stream-records";
import type { AgentInfo } from "#shared/domain/agent";
import type { Task } from "#shared/domain/task";

/**
 * Helpers for tests against the local AWS emulators started by global-setup.ts: clients, a fresh
 * table or set of queues per suite, and readers that look at stored state around the adapters.
 */

const TEST_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
const TEST_REGION = "us-east-1";

/** A DynamoDB client pointed at DynamoDB Local, with dummy credentials. */
export function localDynamoClient(): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: inject("dynamoEndpoint"),
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
  });
}

/** An SQS client pointed at fauxqs (its queue URLs carry a host that does not resolve, so never follow them). */
export function localSqsClient(): SQSClient {
  return new SQSClient({
    endpoint: inject("sqsEndpoint"),
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    useQueueUrlAsEndpoint: false,
  });
}

/** A unique, valid resource name (3-80 characters of letters, digits, hyphens). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 13)}`;
}

/** Creates a fresh Agentry table with the production key schema and returns its name. */
export async function createTestTable(client: DynamoDBClient, prefix = "agentry-test"): Promise<string> {
  const tableName = uniqueName(prefix);
  await createAgentryTable(client, tableName);
  return tableName;
}

/** Reads one item exactly as stored (unmarshalled, key attributes included). */
export async function readItem(
  client: DynamoDBClient,
  tableName: string,
  key: ItemKey,
): Promise<Record<string, unknown> | undefined> {
  const output = await client.send(
    new GetItemCommand({ TableName: tableName, Key: keyAttributes(key), ConsistentRead: true }),
  );
  return output.Item ? unmarshall(output.Item) : undefined;
}

/** Runs a Query or Scan page by page and returns every item, unmarshalled. */
async function collectPages(
  page: (startKey: Record<string, AttributeValue> | undefined) => Promise<{
    Items?: Record<string, AttributeValue>[];
    LastEvaluatedKey?: Record<string, AttributeValue>;
  }>,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const output = await page(startKey);
    items.push(...(output.Items ?? []).map((item) => unmarshall(item)));
    startKey = output.LastEvaluatedKey;
  } while (startKey);
  return items;
}

const from = (startKey: Record<string, AttributeValue> | undefined) =>
  startKey ? { ExclusiveStartKey: startKey } : {};

/** Reads every item of one partition as stored. */
export function readPartition(
  client: DynamoDBClient,
  tableName: string,
  pk: string,
): Promise<Record<string, unknown>[]> {
  return collectPages((startKey) =>
    client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": { S: pk } },
        ConsistentRead: true,
        ...from(startKey),
      }),
    ),
  );
}

/** Reads every item of one index partition (gsi1 or gsi2) as stored. */
export function readIndexPartition(
  client: DynamoDBClient,
  tableName: string,
  index: "gsi1" | "gsi2",
  partition: string,
): Promise<Record<string, unknown>[]> {
  return collectPages((startKey) =>
    client.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: index,
        KeyConditionExpression: "#pk = :pk",
        ExpressionAttributeNames: { "#pk": `${index}pk` },
        ExpressionAttributeValues: { ":pk": { S: partition } },
        ...from(startKey),
      }),
    ),
  );
}

/** Reads every item of the table whose `entity` attribute is `entity` (tests only: a Scan). */
export function scanEntities(
  client: DynamoDBClient,
  tableName: string,
  entity: string,
): Promise<Record<string, unknown>[]> {
  return collectPages((startKey) =>
    client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: "#entity = :entity",
        ExpressionAttributeNames: { "#entity": "entity" },
        ExpressionAttributeValues: { ":entity": { S: entity } },
        ConsistentRead: true,
        ...from(startKey),
      }),
    ),
  );
}

function withoutKeys(item: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([name]) => !KEY_ATTRIBUTES.has(name)));
}

/** Reads the task store's items straight from the table: the `inspect` of the TaskStore contract. */
export function dynamoTaskStoreInspector(client: DynamoDBClient, tableName: string) {
  return {
    async task(taskId: string): Promise<Task | undefined> {
      const item = await readItem(client, tableName, TaskKeys.task(taskId));
      return item ? (withoutKeys(item) as unknown as Task) : undefined;
    },
  };
}

/** Reads an agent's two items straight from the table: the `inspect` of the AgentRegistry contract. */
export async function readStoredAgent(
  client: DynamoDBClient,
  tableName: string,
  agentId: string,
): Promise<AgentInfo | undefined> {
  const profile = await readItem(client, tableName, AgentKeys.profile(agentId));
  if (!profile) return undefined;
  const load = await readItem(client, tableName, AgentKeys.load(agentId));
  return {
    ...withoutKeys(profile),
    currentTaskCount: Number(load?.currentTaskCount ?? 0),
  } as unknown as AgentInfo;
}

export interface TestQueues {
  /** Logical name → queue URL. */
  readonly queueUrls: Record<string, string>;
  /** Logical name → DLQ URL. */
  readonly dlqUrls: Record<string, string>;
}

/**
 * Creates a fresh queue and dead-letter queue for each logical name, the queue redriving to its DLQ
 * after `maxReceiveCount` receives.
 */
export async function createTestQueues(
  client: SQSClient,
  names: readonly string[],
  options: { maxReceiveCount?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<TestQueues> {
  const queueUrls: Record<string, string> = {};
  const dlqUrls: Record<string, string> = {};
  for (const name of names) {
    const base = uniqueName(name.slice(0, 40));
    const dlq = await client.send(new CreateQueueCommand({ QueueName: `${base}-dlq` }));
    const dlqUrl = required(dlq.QueueUrl, "DLQ URL");
    const attributes = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }),
    );
    const queue = await client.send(
      new CreateQueueCommand({
        QueueName: base,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: required(attributes.Attributes?.QueueArn, "DLQ ARN"),
            maxReceiveCount: options.maxReceiveCount ?? 5,
          }),
        },
      }),
    );
    queueUrls[name] = required(queue.QueueUrl, "queue URL");
    dlqUrls[name] = dlqUrl;
  }
  return { queueUrls, dlqUrls };
}

/** Puts a raw body on a queue, around the adapter (for malformed-message tests). */
export async function sendRawMessage(client: SQSClient, queueUrl: string, body: string): Promise<void> {
  await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
}

interface FauxqsMessage {
  readonly messageId: string;
  readonly body: string;
  readonly messageAttributes: Record<string, { DataType: string; StringValue?: string }>;
  readonly approximateReceiveCount: number;
}

export interface SqsQueueState {
  /** Messages a receive would return now. */
  readonly visible: readonly FauxqsMessage[];
  /** Received and still invisible. */
  readonly inFlight: readonly FauxqsMessage[];
  /** Sent with a delay that has not passed. */
  readonly delayed: readonly FauxqsMessage[];
}

/**
 * Reads a queue's messages through fauxqs' inspection endpoint, which never changes visibility or
 * receive counts.
 */
export async function inspectSqsQueue(queueUrl: string): Promise<SqsQueueState> {
  const name = queueUrl.slice(queueUrl.lastIndexOf("/") + 1);
  const response = await fetch(`${inject("sqsEndpoint")}/_fauxqs/queues/${encodeURIComponent(name)}`);
  if (!response.ok) throw new Error(`fauxqs has no queue ${name} (HTTP ${response.status})`);
  const state = (await response.json()) as {
    messages: {
      ready: FauxqsMessage[];
      delayed: FauxqsMessage[];
      inflight: { message: FauxqsMessage; visibilityDeadline: number }[];
    };
  };
  const now = Date.now();
  return {
    visible: [
      ...state.messages.ready,
      ...state.messages.inflight.filter((m) => m.visibilityDeadline <= now).map((m) => m.message),
    ],
    inFlight: state.messages.inflight.filter((m) => m.visibilityDeadline > now).map((m) => m.message),
    delayed: state.messages.delayed,
  };
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the emulator returned no ${what}`);
  return value;
}

/**
 * Feeds a table's DynamoDB Local stream to `processor` through the stream consumer's Lambda handler,
 * as the event source mapping does on AWS. Stop it when the test ends.
 */
export async function startTestTableStream(
  client: DynamoDBClient,
  tableName: string,
  processor: TaskChangeProcessor,
): Promise<RunningStreamPoller> {
  const streams = new DynamoDBStreamsClient({
    endpoint: inject("dynamoEndpoint"),
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
  });
  const poller = await startStreamPoller({
    dynamodb: client,
    streams,
    tableName,
    handler: createTaskStreamHandler(processor),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    idleMs: 20,
  });
  return {
    caughtUp: () => poller.caughtUp(),
    async stop() {
      await poller.stop();
      streams.destroy();
    },
  };
}
