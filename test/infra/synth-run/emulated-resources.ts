import { randomBytes } from "node:crypto";
import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { AGENTRY_TABLE_SCHEMA, createAgentryTable } from "#shared/adapters/aws/table-schema";
import {
  type CfnTemplate,
  IntrinsicResolver,
  isObject,
  type PhysicalResource,
  propertiesOf,
  referencedLogicalId,
  resourcesOfType,
  type TemplateResource,
} from "./cfn.ts";

/** A table layout in a comparable form: what CloudFormation and createAgentryTable both express. */
export interface TableLayout {
  readonly billingMode: string;
  readonly attributes: readonly string[];
  readonly keySchema: readonly string[];
  readonly indexes: readonly { name: string; keySchema: readonly string[]; projection: string }[];
  readonly timeToLiveAttribute: string | undefined;
  /** The stream's view type; undefined without a stream. */
  readonly streamViewType: string | undefined;
}

/** The layout the template declares for an AWS::DynamoDB::Table. */
export function templateTableLayout(table: TemplateResource): TableLayout {
  const p = propertiesOf(table) as {
    BillingMode?: string;
    AttributeDefinitions?: { AttributeName: string; AttributeType: string }[];
    KeySchema?: { AttributeName: string; KeyType: string }[];
    GlobalSecondaryIndexes?: {
      IndexName: string;
      KeySchema: { AttributeName: string; KeyType: string }[];
      Projection: { ProjectionType: string };
    }[];
    LocalSecondaryIndexes?: unknown;
    TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
    StreamSpecification?: { StreamViewType?: string };
  };
  if (p.LocalSecondaryIndexes !== undefined)
    throw new Error("the local run does not model local secondary indexes");
  const keys = (schema: { AttributeName: string; KeyType: string }[] = []) =>
    schema.map((k) => `${k.AttributeName}:${k.KeyType}`);
  return {
    billingMode: p.BillingMode ?? "PROVISIONED",
    attributes: (p.AttributeDefinitions ?? []).map((a) => `${a.AttributeName}:${a.AttributeType}`).sort(),
    keySchema: keys(p.KeySchema),
    indexes: (p.GlobalSecondaryIndexes ?? [])
      .map((index) => ({
        name: index.IndexName,
        keySchema: keys(index.KeySchema),
        projection: index.Projection.ProjectionType,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    timeToLiveAttribute: p.TimeToLiveSpecification?.Enabled
      ? p.TimeToLiveSpecification.AttributeName
      : undefined,
    // CloudFormation enables a table's stream by giving it a view type.
    streamViewType: p.StreamSpecification?.StreamViewType,
  };
}

/** The layout createAgentryTable creates (all key attributes are strings). */
export function agentryTableLayout(): TableLayout {
  const s = AGENTRY_TABLE_SCHEMA;
  const attributes = [
    s.partitionKey,
    s.sortKey,
    ...s.globalSecondaryIndexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ];
  return {
    billingMode: s.billingMode,
    attributes: attributes.map((name) => `${name}:S`).sort(),
    keySchema: [`${s.partitionKey}:HASH`, `${s.sortKey}:RANGE`],
    indexes: s.globalSecondaryIndexes
      .map((i) => ({
        name: i.indexName,
        keySchema: [`${i.partitionKey}:HASH`, `${i.sortKey}:RANGE`],
        projection: i.projection,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    timeToLiveAttribute: s.timeToLiveAttribute,
    streamViewType: s.streamViewType,
  };
}

export interface EmulatedResources {
  readonly region: string;
  readonly account: string;
  readonly resolver: IntrinsicResolver;
  readonly resources: ReadonlyMap<string, PhysicalResource>;
  /** Table name → ARN. */
  readonly tableArns: ReadonlyMap<string, string>;
  /** Queue URL and queue name → queue ARN. */
  readonly queueArns: ReadonlyMap<string, string>;
  /** Bus name and bus ARN → bus ARN. */
  readonly busArns: ReadonlyMap<string, string>;
  /** Stream ARN → stream ARN, for the table streams the emulator created. */
  readonly streamArns: ReadonlyMap<string, string>;
}

/** SQS queue properties the local run reproduces; any other property fails the run. */
const QUEUE_ATTRIBUTES: Readonly<Record<string, string>> = {
  VisibilityTimeout: "VisibilityTimeout",
  MessageRetentionPeriod: "MessageRetentionPeriod",
  DelaySeconds: "DelaySeconds",
  MaximumMessageSize: "MaximumMessageSize",
  ReceiveMessageWaitTimeSeconds: "ReceiveMessageWaitTimeSeconds",
  RedrivePolicy: "RedrivePolicy",
  SqsManagedSseEnabled: "SqsManagedSseEnabled",
};

/**
 * Creates on the emulators what the template declares, named the way CloudFormation names
 * resources without a physical name (`<stack>-<logicalId>-<random>`): the one task table (only if
 * its layout, stream included, is exactly the one createAgentryTable creates), every SQS queue with its attributes
 * (dead-letter queues first, so redrive policies can name them), and the event buses (served by the
 * EventBridge stand-in). Functions, roles and log groups get names and ARNs so the template's
 * references to them resolve.
 *
 * @example
 * const emulated = await provisionTemplateResources({ template, stackName, dynamodb, sqs });
 * emulated.resolver.resolveString(env.TABLE_NAME, "TABLE_NAME");
 */
export async function provisionTemplateResources(options: {
  template: CfnTemplate;
  stackName: string;
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
  region: string;
}): Promise<EmulatedResources> {
  const { template, stackName, region } = options;
  const suffix = randomBytes(6).toString("hex").toUpperCase();
  const physicalName = (logicalId: string, max: number) =>
    `${`${stackName}-${logicalId}`.slice(0, max - suffix.length - 1)}-${suffix}`;
  const resources = new Map<string, PhysicalResource>();
  const tableArns = new Map<string, string>();
  const queueArns = new Map<string, string>();
  const busArns = new Map<string, string>();
  const streamArns = new Map<string, string>();

  // Queues first: the emulator's queue ARNs tell the account every other ARN is built in.
  const queues = resourcesOfType(template, "AWS::SQS::Queue");
  const pending = new Map(queues);
  const resolver = new IntrinsicResolver(resources, pseudoParameters(stackName, region, "000000000000"));
  let account: string | undefined;
  while (pending.size > 0) {
    const ready = [...pending].filter(([, queue]) => {
      const target = referencedLogicalId(redrivePolicyOf(queue)?.deadLetterTargetArn);
      return target === undefined || resources.has(target);
    });
    if (ready.length === 0)
      throw new Error(`queues with unresolvable redrive targets: ${[...pending.keys()].join(", ")}`);
    for (const [logicalId, queue] of ready) {
      pending.delete(logicalId);
      const properties = propertiesOf(queue);
      const attributes: Record<string, string> = {};
      for (const [name, value] of Object.entries(properties)) {
        const attribute = QUEUE_ATTRIBUTES[name];
        if (attribute === undefined)
          throw new Error(`${logicalId}: the local run does not reproduce queue property ${name}`);
        const resolved = resolver.resolve(value, `${logicalId}.${name}`);
        attributes[attribute] = typeof resolved === "object" ? JSON.stringify(resolved) : String(resolved);
      }
      const queueName = physicalName(logicalId, 80);
      const created = await options.sqs.send(
        new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }),
      );
      const url = required(created.QueueUrl, `${logicalId} queue URL`);
      const read = await options.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }),
      );
      const arn = required(read.Attributes?.QueueArn, `${logicalId} queue ARN`);
      // The emulator must have kept what the template asked for, or the run would test something else.
      for (const name of ["VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy"] as const) {
        if (attributes[name] !== undefined && !sameAttribute(attributes[name], read.Attributes?.[name])) {
          throw new Error(
            `${logicalId}: the emulator stored ${name}=${read.Attributes?.[name]}, the template says ${attributes[name]}`,
          );
        }
      }
      account ??= arn.split(":")[4];
      resources.set(logicalId, {
        type: queue.Type,
        ref: url,
        attributes: { Arn: arn, QueueUrl: url, QueueName: queueName },
      });
      queueArns.set(url, arn);
      queueArns.set(queueName, arn);
    }
  }
  const accountId = account ?? "000000000000";
  const arn = (service: string, resource: string, regional = true) =>
    `arn:aws:${service}:${regional ? region : ""}:${accountId}:${resource}`;

  const tables = resourcesOfType(template, "AWS::DynamoDB::Table");
  for (const [logicalId, table] of tables) {
    const layout = templateTableLayout(table);
    if (JSON.stringify(layout) !== JSON.stringify(agentryTableLayout())) {
      throw new Error(
        `${logicalId}: the template's table layout ${JSON.stringify(layout)} is not the one createAgentryTable creates ${JSON.stringify(agentryTableLayout())}`,
      );
    }
    const tableName = String(propertiesOf(table).TableName ?? physicalName(logicalId, 255));
    await createAgentryTable(options.dynamodb, tableName);
    const tableArn = arn("dynamodb", `table/${tableName}`);
    const attributes: Record<string, string> = { Arn: tableArn };
    if (layout.streamViewType !== undefined) {
      // The stream the emulator created, by its own ARN: `Fn::GetAtt [Table, StreamArn]` is what
      // the event source mapping reads and the stream grants name, so both must be the real one.
      const described = await options.dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
      const viewType = described.Table?.StreamSpecification?.StreamViewType;
      if (viewType !== layout.streamViewType) {
        throw new Error(
          `${logicalId}: the emulator's stream has view type ${viewType}, the template says ${layout.streamViewType}`,
        );
      }
      const streamArn = required(described.Table?.LatestStreamArn, `${logicalId} stream ARN`);
      attributes.StreamArn = streamArn;
      streamArns.set(streamArn, streamArn);
    }
    resources.set(logicalId, { type: table.Type, ref: tableName, attributes });
    tableArns.set(tableName, tableArn);
  }

  for (const [logicalId, bus] of resourcesOfType(template, "AWS::Events::EventBus")) {
    const name = String(propertiesOf(bus).Name ?? physicalName(logicalId, 256));
    const busArn = arn("events", `event-bus/${name}`);
    resources.set(logicalId, { type: bus.Type, ref: name, attributes: { Arn: busArn, Name: name } });
    busArns.set(name, busArn);
    busArns.set(busArn, busArn);
  }
  // Entries without an EventBusName go to the account's default bus.
  busArns.set("default", arn("events", "event-bus/default"));

  for (const [logicalId, fn] of resourcesOfType(template, "AWS::Lambda::Function")) {
    const name = String(propertiesOf(fn).FunctionName ?? physicalName(logicalId, 64));
    resources.set(logicalId, {
      type: fn.Type,
      ref: name,
      attributes: { Arn: arn("lambda", `function:${name}`) },
    });
  }
  for (const [logicalId, role] of resourcesOfType(template, "AWS::IAM::Role")) {
    const name = String(propertiesOf(role).RoleName ?? physicalName(logicalId, 64));
    resources.set(logicalId, {
      type: role.Type,
      ref: name,
      attributes: { Arn: arn("iam", `role/${name}`, false) },
    });
  }
  for (const [logicalId, rule] of resourcesOfType(template, "AWS::Events::Rule")) {
    const name = String(propertiesOf(rule).Name ?? physicalName(logicalId, 64));
    const bus = resolver.resolve(propertiesOf(rule).EventBusName ?? "default", `${logicalId}.EventBusName`);
    const busName = String(bus).replace(/^arn:.*:event-bus\//, "");
    const ruleArn = arn("events", busName === "default" ? `rule/${name}` : `rule/${busName}/${name}`);
    resources.set(logicalId, { type: rule.Type, ref: name, attributes: { Arn: ruleArn } });
  }
  for (const [logicalId, api] of resourcesOfType(template, "AWS::ApiGatewayV2::Api")) {
    resources.set(logicalId, { type: api.Type, ref: randomBytes(5).toString("hex"), attributes: {} });
  }
  for (const [logicalId, group] of resourcesOfType(template, "AWS::Logs::LogGroup")) {
    const name = String(propertiesOf(group).LogGroupName ?? physicalName(logicalId, 512));
    resources.set(logicalId, {
      type: group.Type,
      ref: name,
      attributes: { Arn: arn("logs", `log-group:${name}:*`) },
    });
  }

  return {
    region,
    account: accountId,
    resolver: new IntrinsicResolver(resources, pseudoParameters(stackName, region, accountId)),
    resources,
    tableArns,
    queueArns,
    busArns,
    streamArns,
  };
}

function pseudoParameters(stackName: string, region: string, account: string): Record<string, string> {
  return {
    "AWS::Region": region,
    "AWS::AccountId": account,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": stackName,
  };
}

function redrivePolicyOf(queue: TemplateResource): Record<string, unknown> | undefined {
  const policy = propertiesOf(queue).RedrivePolicy;
  return isObject(policy) ? policy : undefined;
}

function sameAttribute(expected: string, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  if (expected.startsWith("{"))
    return JSON.stringify(JSON.parse(expected)) === JSON.stringify(JSON.parse(actual));
  return expected === actual;
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the emulator returned no ${what}`);
  return value;
}
