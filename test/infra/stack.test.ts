import { rmSync } from "node:fs";
import { App, type CfnElement, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformConfig } from "#shared/agents/workers";
import { queuesForCapability } from "#shared/config/platform";
import { EVENT_SOURCE } from "#shared/domain/events";
import { AgentryStack } from "../../infra/agentry-stack.ts";
import { functionEntry } from "../../infra/constructs/agentry-function.ts";
import { AgentryPlatform } from "../../infra/constructs/platform.ts";
import { SupervisorApi } from "../../infra/constructs/supervisor-api.ts";
import { TaskQueues, type TierQueue } from "../../infra/constructs/task-queues.ts";
import { TaskTable } from "../../infra/constructs/task-table.ts";
import {
  actionsOf,
  type CfnResource,
  cdkJsonContext,
  referencedId,
  renderJoin,
  resourcesOfType,
  statementsOf,
  temporaryOutdir,
  withoutBundling,
} from "./support.ts";

/** Synthesize once per suite (under a minute alone; more on a loaded 2-core machine). */
const SYNTH_TIMEOUT_MS = 180_000;

const ENV_CONTRACT = [
  "TABLE_NAME",
  "EVENT_BUS_NAME",
  "QUEUE_URLS",
  "DLQ_URLS",
  "POWERTOOLS_SERVICE_NAME",
  "POWERTOOLS_METRICS_NAMESPACE",
  "NODE_OPTIONS",
];
const ALL_QUEUE_NAMES = platformConfig.capabilities.flatMap((c) => [...queuesForCapability(c.name)]);
/** The capabilities served by Lambda workers (the Fargate ones: test/infra/fargate-worker.test.ts). */
const CAPABILITIES = platformConfig.capabilities.filter((c) => c.runtime !== "fargate").map((c) => c.name);
const LAMBDA_QUEUE_NAMES = CAPABILITIES.flatMap((c) => [...queuesForCapability(c)]);

interface FunctionInfo {
  readonly id: string;
  readonly service: string;
  readonly properties: Record<string, unknown>;
  readonly env: Record<string, unknown>;
}

function functionsOf(template: Template): FunctionInfo[] {
  return Object.entries(resourcesOfType(template, "AWS::Lambda::Function")).map(([id, fn]) => {
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    return { id, service: String(env.POWERTOOLS_SERVICE_NAME), properties: fn.Properties, env };
  });
}

/** Every action granted to a function's role, by any policy attached to it. */
function actionsGrantedTo(template: Template, fn: FunctionInfo): Set<string> {
  const roleId = referencedId(fn.properties.Role);
  const actions = new Set<string>();
  for (const policy of Object.values(resourcesOfType(template, "AWS::IAM::Policy"))) {
    const roles = (policy.Properties.Roles as unknown[]).map(referencedId);
    if (roles.includes(roleId)) {
      for (const statement of statementsOf(policy.Properties.PolicyDocument)) {
        for (const action of actionsOf(statement)) {
          actions.add(action);
        }
      }
    }
  }
  return actions;
}

function dynamoActions(actions: Set<string>): string[] {
  return [...actions].filter((a) => a.startsWith("dynamodb:")).sort();
}

describe("AgentryStack with IAM authorization (the default)", () => {
  let stack: AgentryStack;
  let template: Template;
  let queues: Record<string, CfnResource>;
  let functions: FunctionInfo[];
  /** Queues some other resource dead-letters into. */
  let deadLetterQueueIds: Set<string>;

  const outdir = temporaryOutdir();
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  beforeAll(() => {
    // Without bundling: no assertion here reads a bundle, and synthesized-app.test.ts bundles and runs
    // every one (six functions and a container entry take minutes on a loaded 2-core machine).
    const app = new App({ outdir, context: withoutBundling(cdkJsonContext()) });
    stack = new AgentryStack(app, "Agentry");
    template = Template.fromStack(stack);
    queues = resourcesOfType(template, "AWS::SQS::Queue");
    functions = functionsOf(template);
    deadLetterQueueIds = new Set<string>();
    for (const queue of Object.values(queues)) {
      const redrive = queue.Properties.RedrivePolicy as { deadLetterTargetArn?: unknown } | undefined;
      if (redrive?.deadLetterTargetArn) {
        deadLetterQueueIds.add(referencedId(redrive.deadLetterTargetArn));
      }
    }
    for (const fn of functions) {
      const config = fn.properties.DeadLetterConfig as { TargetArn?: unknown } | undefined;
      if (config?.TargetArn) {
        deadLetterQueueIds.add(referencedId(config.TargetArn));
      }
    }
    for (const mapping of Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping"))) {
      const onFailure = (
        mapping.Properties.DestinationConfig as { OnFailure?: { Destination: unknown } } | undefined
      )?.OnFailure;
      if (onFailure) {
        deadLetterQueueIds.add(referencedId(onFailure.Destination));
      }
    }
    for (const rule of Object.values(resourcesOfType(template, "AWS::Events::Rule"))) {
      for (const target of rule.Properties.Targets as Array<{ DeadLetterConfig?: { Arn: unknown } }>) {
        if (target.DeadLetterConfig) {
          deadLetterQueueIds.add(referencedId(target.DeadLetterConfig.Arn));
        }
      }
    }
  }, SYNTH_TIMEOUT_MS);

  describe("API", () => {
    it("authorizes every route with IAM (SigV4)", () => {
      const routes = Object.values(resourcesOfType(template, "AWS::ApiGatewayV2::Route"));

      expect(routes.length).toBeGreaterThan(0);
      for (const route of routes) {
        expect(route.Properties.AuthorizationType, String(route.Properties.RouteKey)).toBe("AWS_IAM");
      }
    });

    it("sends every route to the supervisor function through a greedy proxy route", () => {
      template.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: "ANY /{proxy+}" });
      template.resourceCountIs("AWS::ApiGatewayV2::Integration", 1);
    });

    it("writes a JSON access log and throttles every route of the stage", () => {
      const [stage] = Object.values(resourcesOfType(template, "AWS::ApiGatewayV2::Stage"));
      const accessLog = stage?.Properties.AccessLogSettings as { DestinationArn: unknown; Format: string };
      const throttling = stage?.Properties.DefaultRouteSettings as Record<string, number>;

      expect(resourcesOfType(template, "AWS::Logs::LogGroup")).toHaveProperty(
        referencedId(accessLog.DestinationArn),
      );
      expect(JSON.parse(accessLog.Format)).toHaveProperty("requestId", "$context.requestId");
      expect(throttling.ThrottlingRateLimit).toBeGreaterThan(0);
      expect(throttling.ThrottlingBurstLimit).toBeGreaterThan(0);
    });

    it("outputs the API URL", () => {
      template.hasOutput("ApiUrl", { Value: Match.anyValue() });
    });
  });

  describe("queues", () => {
    it("creates a normal and a high-priority queue for every configured capability", () => {
      const logicalNames = stack.platform.taskQueues.queues.map((q) => q.logicalName).sort();

      expect(logicalNames).toEqual([...ALL_QUEUE_NAMES].sort());
    });

    it("gives every queue that is not a dead-letter queue a redrive policy after at least 5 receives", () => {
      const sourceQueues = Object.entries(queues).filter(([id]) => !deadLetterQueueIds.has(id));

      expect(sourceQueues).toHaveLength(ALL_QUEUE_NAMES.length);
      for (const [id, queue] of sourceQueues) {
        const redrive = queue.Properties.RedrivePolicy as { maxReceiveCount: number } | undefined;
        expect(redrive, id).toBeDefined();
        expect(redrive?.maxReceiveCount, id).toBeGreaterThanOrEqual(5);
      }
    });

    it("keeps dead letters longer than their source queue keeps messages", () => {
      for (const [id, queue] of Object.entries(queues)) {
        const redrive = queue.Properties.RedrivePolicy as { deadLetterTargetArn: unknown } | undefined;
        if (redrive) {
          const dlq = queues[referencedId(redrive.deadLetterTargetArn)];
          expect(dlq?.Properties.MessageRetentionPeriod, id).toBeGreaterThan(
            queue.Properties.MessageRetentionPeriod as number,
          );
        }
      }
    });

    it("sets every Lambda-consumed queue's visibility timeout to at least 6 × its consumer's timeout", () => {
      const mappings = Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping")).filter(
        (m) => !JSON.stringify(m.Properties.EventSourceArn).includes("StreamArn"),
      );
      const consumedQueueIds = new Set<string>();

      for (const mapping of mappings) {
        const queueId = referencedId(mapping.Properties.EventSourceArn);
        const fn = functions.find((f) => f.id === referencedId(mapping.Properties.FunctionName));
        const visibility = queues[queueId]?.Properties.VisibilityTimeout as number;
        expect(visibility, queueId).toBeGreaterThanOrEqual(6 * (fn?.properties.Timeout as number));
        consumedQueueIds.add(queueId);
      }
      expect([...consumedQueueIds].sort()).toEqual(
        stack.platform.taskQueues.queues
          .filter((q) => LAMBDA_QUEUE_NAMES.includes(q.logicalName))
          .map((q) => stack.getLogicalId(q.queue.node.defaultChild as CfnElement))
          .sort(),
      );
    });

    it("reports batch item failures and caps concurrency on every SQS event source mapping", () => {
      const mappings = Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping")).filter(
        (m) => !JSON.stringify(m.Properties.EventSourceArn).includes("StreamArn"),
      );

      expect(mappings).toHaveLength(LAMBDA_QUEUE_NAMES.length);
      for (const mapping of mappings) {
        const concurrency = (mapping.Properties.ScalingConfig as { MaximumConcurrency?: number } | undefined)
          ?.MaximumConcurrency;
        expect(mapping.Properties.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
        expect(concurrency).toBeGreaterThanOrEqual(2);
        expect(concurrency).toBeLessThanOrEqual(1000);
        expect(mapping.Properties.BatchSize).toBeLessThanOrEqual(10);
      }
    });

    it("encrypts every queue and denies every request without TLS", () => {
      const policies = Object.values(resourcesOfType(template, "AWS::SQS::QueuePolicy"));

      for (const [id, queue] of Object.entries(queues)) {
        expect(queue.Properties.SqsManagedSseEnabled, id).toBe(true);
        const policy = policies.find((p) =>
          (p.Properties.Queues as unknown[]).some((q) => referencedId(q) === id),
        );
        expect(statementsOf(policy?.Properties.PolicyDocument), id).toContainEqual(
          expect.objectContaining({
            Effect: "Deny",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        );
      }
    });
  });

  describe("state and events", () => {
    it("creates one on-demand table with PITR, TTL on expiresAt, KMS encryption, a stream and its GSIs", () => {
      template.resourceCountIs("AWS::DynamoDB::Table", 1);
      template.hasResourceProperties("AWS::DynamoDB::Table", {
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        BillingMode: "PAY_PER_REQUEST",
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
        GlobalSecondaryIndexes: [
          Match.objectLike({ IndexName: "gsi1", Projection: { ProjectionType: "ALL" } }),
          Match.objectLike({ IndexName: "gsi2", Projection: { ProjectionType: "ALL" } }),
          // The task listings project keys only: a transition rewrites no index entry it does not move.
          Match.objectLike({ IndexName: "gsi3", Projection: { ProjectionType: "KEYS_ONLY" } }),
          Match.objectLike({ IndexName: "gsi4", Projection: { ProjectionType: "KEYS_ONLY" } }),
        ],
        StreamSpecification: { StreamViewType: "NEW_AND_OLD_IMAGES" },
      });
      template.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Retain" });
    });

    it("archives Agentry's events on a custom bus without a resource policy", () => {
      template.hasResourceProperties("AWS::Events::EventBus", { Name: "agentry" });
      template.hasResourceProperties("AWS::Events::Archive", { EventPattern: { source: [EVENT_SOURCE] } });
      template.resourceCountIs("AWS::Events::EventBusPolicy", 0);
      expect(
        Object.values(resourcesOfType(template, "AWS::Events::EventBus"))[0]?.Properties,
      ).not.toHaveProperty("Policy");
    });

    it("feeds the table's stream to the aggregator in batches, with partial failures and a dead-letter queue", () => {
      const aggregator = functions.find((f) => f.service === "aggregator");
      const streamMappings = Object.values(
        resourcesOfType(template, "AWS::Lambda::EventSourceMapping"),
      ).filter((m) => JSON.stringify(m.Properties.EventSourceArn).includes("StreamArn"));

      expect(streamMappings).toHaveLength(1);
      expect(streamMappings[0]?.Properties).toMatchObject({
        FunctionName: { Ref: aggregator?.id },
        StartingPosition: "TRIM_HORIZON",
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        BisectBatchOnFunctionError: false,
        MaximumRetryAttempts: expect.any(Number),
        DestinationConfig: { OnFailure: { Destination: expect.anything() } },
      });
      expect(streamMappings[0]?.Properties.BatchSize).toBeGreaterThan(10);
      // No rule sends task events anywhere: nothing in the stack consumes them from the bus.
      template.resourcePropertiesCountIs(
        "AWS::Events::Rule",
        { EventPattern: Match.objectLike({ "detail-type": [{ prefix: "Task " }] }) },
        0,
      );
      expect(aggregator?.properties.Environment).toMatchObject({
        Variables: expect.objectContaining({ PUBLISH_TASK_EVENTS: "none" }),
      });
    });

    it("runs the sweeper every minute with a dead-letter queue", () => {
      const sweeper = functions.find((f) => f.service === "sweeper");

      template.hasResourceProperties("AWS::Scheduler::Schedule", {
        ScheduleExpression: "rate(1 minute)",
        Target: Match.objectLike({
          Arn: { "Fn::GetAtt": [sweeper?.id, "Arn"] },
          DeadLetterConfig: Match.objectLike({ Arn: Match.anyValue() }),
        }),
      });
    });
  });

  describe("functions", () => {
    it("deploys the supervisor, the sweeper, the aggregator and one worker per capability", () => {
      expect(functions.map((f) => f.service).sort()).toEqual(
        ["aggregator", "supervisor-api", "sweeper", ...CAPABILITIES].sort(),
      );
    });

    it("runs every function on the latest Node.js on arm64 with active tracing and bounded JSON logs", () => {
      const logGroups = resourcesOfType(template, "AWS::Logs::LogGroup");

      for (const fn of functions) {
        const logging = fn.properties.LoggingConfig as { LogFormat: string; LogGroup: unknown };
        expect(fn.properties, fn.service).toMatchObject({
          Runtime: "nodejs24.x",
          Architectures: ["arm64"],
          TracingConfig: { Mode: "Active" },
        });
        expect(logging.LogFormat).toBe("JSON");
        expect(
          logGroups[referencedId(logging.LogGroup)]?.Properties.RetentionInDays,
          fn.service,
        ).toBeGreaterThan(0);
        expect(fn.properties.MemorySize).toBeGreaterThanOrEqual(128);
        expect(fn.properties.Timeout).toBeGreaterThan(3);
      }
    });

    it("gives every function the runtime's environment contract", () => {
      for (const fn of functions) {
        expect(Object.keys(fn.env), fn.service).toEqual(expect.arrayContaining(ENV_CONTRACT));
        expect(fn.env.POWERTOOLS_METRICS_NAMESPACE).toBe("Agentry");
        expect(fn.env.NODE_OPTIONS).toBe("--enable-source-maps");
        expect(fn.env.STORE_SHARDS).toBe(String(platformConfig.shards));
        expect(referencedId(fn.env.TABLE_NAME)).toMatch(/Table/);
        expect(referencedId(fn.env.EVENT_BUS_NAME)).toMatch(/EventBus/);
      }
    });

    it("lists every task queue in QUEUE_URLS of the supervisor, the sweeper and the aggregator", () => {
      for (const service of ["supervisor-api", "sweeper", "aggregator"]) {
        const fn = functions.find((f) => f.service === service);
        const queueUrls = JSON.parse(renderJoin(fn?.env.QUEUE_URLS)) as Record<string, string>;

        expect(Object.keys(queueUrls).sort(), service).toEqual([...ALL_QUEUE_NAMES].sort());
        // Only the API reads the DLQs (GET /dlq, POST /dlq/redrive, GET /stats/queues).
        const deadLetterUrls = JSON.parse(renderJoin(fn?.env.DLQ_URLS)) as Record<string, string>;
        expect(Object.keys(deadLetterUrls).sort(), service).toEqual(
          service === "supervisor-api" ? [...ALL_QUEUE_NAMES].sort() : [],
        );
      }
    });

    it("gives each worker its capability and the URLs of its two queues and their DLQs", () => {
      for (const capability of CAPABILITIES) {
        const fn = functions.find((f) => f.service === capability);
        const queueUrls = JSON.parse(renderJoin(fn?.env.QUEUE_URLS)) as Record<string, string>;
        const deadLetterUrls = JSON.parse(renderJoin(fn?.env.DLQ_URLS)) as Record<string, string>;
        const expectedNames = [...queuesForCapability(capability)].sort();

        expect(fn?.env).toMatchObject({ AGENT_TYPE: capability, CAPABILITY: capability });
        expect(Object.keys(queueUrls).sort()).toEqual(expectedNames);
        expect(Object.keys(deadLetterUrls).sort()).toEqual(expectedNames);
        // renderJoin shows each queue URL as `<QueueLogicalId>`.
        for (const name of expectedNames) {
          expect(deadLetterQueueIds.has(queueUrls[name]?.slice(1, -1) ?? "")).toBe(false);
          expect(deadLetterQueueIds.has(deadLetterUrls[name]?.slice(1, -1) ?? "")).toBe(true);
        }
      }
    });
  });

  describe("IAM", () => {
    it("grants no wildcard action anywhere", () => {
      const documents = [
        ...Object.values(resourcesOfType(template, "AWS::IAM::Policy")).map(
          (p) => p.Properties.PolicyDocument,
        ),
        ...Object.values(resourcesOfType(template, "AWS::IAM::ManagedPolicy")).map(
          (p) => p.Properties.PolicyDocument,
        ),
        ...Object.values(resourcesOfType(template, "AWS::IAM::Role")).flatMap((r) =>
          ((r.Properties.Policies as Array<{ PolicyDocument: unknown }> | undefined) ?? []).map(
            (p) => p.PolicyDocument,
          ),
        ),
      ];
      const actions = documents.flatMap((d) => statementsOf(d).flatMap(actionsOf));

      expect(actions.length).toBeGreaterThan(0);
      expect(actions.filter((a) => a === "*" || a.endsWith(":*"))).toEqual([]);
    });

    it("attaches no AWS managed policy to any role", () => {
      for (const role of Object.values(resourcesOfType(template, "AWS::IAM::Role"))) {
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      }
    });

    it("grants DynamoDB access on the table, its named indexes and its stream only", () => {
      for (const policy of Object.values(resourcesOfType(template, "AWS::IAM::Policy"))) {
        for (const statement of statementsOf(policy.Properties.PolicyDocument)) {
          // ListStreams has no resource-level permission: IAM only accepts "*" for it (CDK merges it
          // into the function's "*" statement); every other DynamoDB action names the table.
          const scoped = actionsOf(statement).filter(
            (a) => a.startsWith("dynamodb:") && a !== "dynamodb:ListStreams",
          );
          if (scoped.length > 0) {
            const resources = JSON.stringify(statement.Resource);
            expect(resources).not.toContain("index/*");
            expect(resources).not.toBe('"*"');
          }
        }
      }
    });

    it("grants each function exactly the DynamoDB actions it calls", () => {
      // Every function gets, puts, updates and queries. None batch-writes (lifecycle events follow
      // from the table's stream: there is no outbox to clear) and none issues a ConditionCheck item:
      // every guard is a ConditionExpression.
      const itemActions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"];
      const expected: Record<string, string[]> = {
        // BatchGetItem: counters and agent listings; DeleteItem: agent unregistration.
        "supervisor-api": [...itemActions, "dynamodb:BatchGetItem", "dynamodb:DeleteItem"].sort(),
        // BatchGetItem: the agent liveness sweep lists agents with their load items.
        sweeper: [...itemActions, "dynamodb:BatchGetItem"].sort(),
        // The stream event source reads the table's stream with the function's role.
        aggregator: [
          ...itemActions,
          "dynamodb:DescribeStream",
          "dynamodb:GetRecords",
          "dynamodb:GetShardIterator",
          "dynamodb:ListStreams",
        ].sort(),
        ...Object.fromEntries(CAPABILITIES.map((c) => [c, itemActions])),
      };

      for (const fn of functions) {
        expect(dynamoActions(actionsGrantedTo(template, fn)), fn.service).toEqual(expected[fn.service]);
      }
    });

    it("lets only workers consume queues (the API only its DLQs), and every function but the workers publish to the bus", () => {
      for (const fn of functions) {
        const actions = actionsGrantedTo(template, fn);
        const isWorker = CAPABILITIES.includes(fn.service);
        const readsDeadLetters = isWorker || fn.service === "supervisor-api";

        // A worker publishes nothing: its writes reach the table's stream, whose consumer publishes.
        expect(actions.has("events:PutEvents"), fn.service).toBe(!isWorker);
        expect(actions.has("sqs:SendMessage"), fn.service).toBe(true);
        expect(actions.has("sqs:ReceiveMessage"), fn.service).toBe(readsDeadLetters);
        expect(actions.has("sqs:DeleteMessage"), fn.service).toBe(readsDeadLetters);
        expect(actions.has("sqs:ChangeMessageVisibility"), fn.service).toBe(isWorker);
      }
    });

    it("grants exactly the SQS actions each function and its event source mappings call, on its queues only", () => {
      const queueIdsOf = (fn: FunctionInfo, action: string): string[] => {
        const roleId = referencedId(fn.properties.Role);
        const ids = new Set<string>();
        for (const policy of Object.values(resourcesOfType(template, "AWS::IAM::Policy"))) {
          if (!(policy.Properties.Roles as unknown[]).map(referencedId).includes(roleId)) continue;
          for (const statement of statementsOf(policy.Properties.PolicyDocument)) {
            if (!actionsOf(statement).includes(action)) continue;
            const resources = statement.Resource;
            for (const resource of Array.isArray(resources) ? resources : [resources])
              ids.add(referencedId(resource));
          }
        }
        return [...ids].sort();
      };
      const logicalIdOf = (queue: Queue) => stack.getLogicalId(queue.node.defaultChild as CfnElement);
      const ofQueues = (names: readonly string[], pick: (q: TierQueue) => Queue) =>
        stack.platform.taskQueues.queues
          .filter((q) => names.includes(q.logicalName))
          .map((q) => logicalIdOf(pick(q)));
      const taskQueueIds = (names: readonly string[]) => ofQueues(names, (q) => q.queue);
      const dlqIds = (names: readonly string[]) => ofQueues(names, (q) => q.deadLetterQueue);
      const sqsActions = (fn: FunctionInfo) =>
        [...actionsGrantedTo(template, fn)].filter((a) => a.startsWith("sqs:")).sort();

      for (const fn of functions) {
        if (CAPABILITIES.includes(fn.service)) {
          const own = [...queuesForCapability(fn.service)];
          // ReceiveMessage, DeleteMessage, GetQueueAttributes: the event source mappings;
          // ChangeMessageVisibility and SendMessage: the worker (lease, release, retry, dead letter).
          expect(sqsActions(fn), fn.service).toEqual([
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
          ]);
          for (const action of ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]) {
            expect(queueIdsOf(fn, action), `${fn.service} ${action}`).toEqual(taskQueueIds(own).sort());
          }
          expect(queueIdsOf(fn, "sqs:SendMessage"), fn.service).toEqual(
            [...taskQueueIds(own), ...dlqIds(own)].sort(),
          );
        } else if (fn.service === "supervisor-api") {
          // Submission sends to every task queue; the operations routes read depths of every queue and
          // DLQ, and receive from and delete on the DLQs only (a redrive sends back with SendMessage).
          expect(sqsActions(fn), fn.service).toEqual([
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
          ]);
          const every = [...ALL_QUEUE_NAMES];
          expect(queueIdsOf(fn, "sqs:SendMessage"), fn.service).toEqual(taskQueueIds(every).sort());
          expect(queueIdsOf(fn, "sqs:GetQueueAttributes"), fn.service).toEqual(
            [...taskQueueIds(every), ...dlqIds(every)].sort(),
          );
          for (const action of ["sqs:ReceiveMessage", "sqs:DeleteMessage"]) {
            expect(queueIdsOf(fn, action), `${fn.service} ${action}`).toEqual(dlqIds(every).sort());
          }
        } else if (fn.service === "sweeper") {
          // Sends only, to every task queue and to its own DLQ (Lambda dead-letters failed
          // asynchronous invocations with the function's role).
          expect(sqsActions(fn), fn.service).toEqual(["sqs:SendMessage"]);
          const sentTo = queueIdsOf(fn, "sqs:SendMessage");
          expect(
            sentTo.filter((id) => deadLetterQueueIds.has(id)),
            fn.service,
          ).toEqual([referencedId((fn.properties.DeadLetterConfig as { TargetArn: unknown }).TargetArn)]);
          expect(
            sentTo.filter((id) => !deadLetterQueueIds.has(id)),
            fn.service,
          ).toEqual(taskQueueIds(ALL_QUEUE_NAMES).sort());
        } else {
          // The aggregator sends to every task queue (a pipeline's next step); its stream event
          // source sends failed batches' descriptions to the on-failure queue with the function's
          // role (SqsDlq grants SendMessage, GetQueueAttributes and GetQueueUrl on that queue only).
          expect(fn.service).toBe("aggregator");
          const mapping = Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping")).find(
            (m) => referencedId(m.Properties.FunctionName) === fn.id,
          );
          const destination = mapping?.Properties.DestinationConfig as
            | { OnFailure: { Destination: unknown } }
            | undefined;
          const onFailure = referencedId(destination?.OnFailure.Destination);
          expect(sqsActions(fn), fn.service).toEqual([
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:SendMessage",
          ]);
          expect(queueIdsOf(fn, "sqs:SendMessage"), fn.service).toEqual(
            [...taskQueueIds(ALL_QUEUE_NAMES), onFailure].sort(),
          );
          for (const action of ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]) {
            expect(queueIdsOf(fn, action), `${fn.service} ${action}`).toEqual([onFailure]);
          }
        }
      }
    });
  });

  describe("operations", () => {
    const alarmsOn = (metricName: string) =>
      Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm")).filter(
        (a) => a.Properties.MetricName === metricName,
      );
    const dimension = (alarm: CfnResource, name: string): unknown =>
      (alarm.Properties.Dimensions as Array<{ Name: string; Value: unknown }>).find((d) => d.Name === name)
        ?.Value;

    it("alarms as soon as any dead-letter queue holds a message", () => {
      const alarmed = alarmsOn("ApproximateNumberOfMessagesVisible").map((a) =>
        referencedId(dimension(a, "QueueName")),
      );

      expect(deadLetterQueueIds.size).toBe(ALL_QUEUE_NAMES.length + 2);
      expect(alarmed.sort()).toEqual([...deadLetterQueueIds].sort());
      for (const alarm of alarmsOn("ApproximateNumberOfMessagesVisible")) {
        expect(alarm.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: "GreaterThanThreshold" });
      }
    });

    it("alarms on the age of the oldest message of every task queue", () => {
      const alarmed = alarmsOn("ApproximateAgeOfOldestMessage").map((a) =>
        referencedId(dimension(a, "QueueName")),
      );

      expect(alarmed.sort()).toEqual(
        Object.keys(queues)
          .filter((id) => !deadLetterQueueIds.has(id))
          .sort(),
      );
    });

    it("alarms on errors and throttles of every function", () => {
      for (const metric of ["Errors", "Throttles"]) {
        const alarmed = alarmsOn(metric).map((a) => referencedId(dimension(a, "FunctionName")));

        expect(alarmed.sort(), metric).toEqual(functions.map((f) => f.id).sort());
      }
    });

    it("alarms on 5xx responses of the API and draws a dashboard", () => {
      expect(alarmsOn("5xx")).toHaveLength(1);
      template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    });
  });
});

describe("AgentryStack with a JWT authorizer", () => {
  let template: Template;

  const outdir = temporaryOutdir();
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  beforeAll(() => {
    const app = new App({ outdir, context: withoutBundling(cdkJsonContext()) });
    const stack = new AgentryStack(app, "Agentry", {
      jwtIssuer: "https://issuer.example.com/",
      jwtAudience: ["agentry-api"],
    });
    template = Template.fromStack(stack);
  }, SYNTH_TIMEOUT_MS);

  it("authorizes every route with the JWT authorizer of the configured issuer and audience", () => {
    const [authorizerId] = Object.keys(
      template.findResources("AWS::ApiGatewayV2::Authorizer", {
        Properties: {
          AuthorizerType: "JWT",
          JwtConfiguration: { Issuer: "https://issuer.example.com/", Audience: ["agentry-api"] },
        },
      }),
    );
    const routes = Object.values(resourcesOfType(template, "AWS::ApiGatewayV2::Route"));

    expect(authorizerId).toBeDefined();
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) {
      expect(route.Properties).toMatchObject({
        AuthorizationType: "JWT",
        AuthorizerId: { Ref: authorizerId },
      });
    }
  });
});

describe("construct validation", () => {
  let platform: AgentryPlatform;
  let stack: Stack;

  beforeAll(() => {
    const app = new App({ context: withoutBundling(cdkJsonContext()) });
    stack = new Stack(app, "Validation");
    platform = new AgentryPlatform(stack, "Platform");
  }, SYNTH_TIMEOUT_MS);

  const entry = functionEntry("workers/worker.ts");

  it("refuses a Lambda worker for a capability the config does not have, naming it", () => {
    expect(() => platform.addLambdaWorker({ capability: "zz-unconfigured-capability", entry })).toThrow(
      /unknown capability "zz-unconfigured-capability"/,
    );
  });

  it.each([1, 1001, 2.5])("refuses maxConcurrency %d, outside Lambda's 2-1000", (maxConcurrency) => {
    expect(() => platform.addLambdaWorker({ capability: "diagnostics", entry, maxConcurrency })).toThrow(
      new RegExp(`maxConcurrency must be an integer between 2 and 1000, got ${maxConcurrency}`),
    );
  });

  it("refuses a worker timeout whose 6-fold exceeds the queue visibility timeout", () => {
    expect(() =>
      platform.addLambdaWorker({ capability: "diagnostics", entry, timeout: Duration.seconds(61) }),
    ).toThrow(/got 61 seconds/);
  });

  it("refuses a second Lambda worker for the same capability", () => {
    platform.addLambdaWorker({ capability: "summarization", entry });

    expect(() => platform.addLambdaWorker({ capability: "summarization", entry })).toThrow(
      /capability "summarization" already exists/,
    );
  });

  it("refuses a maxReceiveCount below 5", () => {
    expect(
      () => new TaskQueues(stack, "FewReceives", { config: { ...platformConfig, maxReceiveCount: 3 } }),
    ).toThrow(/maxReceiveCount must be an integer between 5 and 1000, got 3/);
  });

  it("refuses a capability name SQS cannot carry", () => {
    const config = {
      ...platformConfig,
      capabilities: [{ name: "text analysis", workerTimeoutSeconds: 30, maxConcurrency: 5 }],
    };

    expect(() => new TaskQueues(stack, "BadName", { config })).toThrow(/got "text analysis"/);
  });

  it("refuses a queue grant on no queue, or on queues of another TaskQueues", () => {
    const other = new TaskQueues(stack, "OtherQueues");
    const grantee = platform.api.handler.function;

    expect(() => platform.taskQueues.grantConsumeMessages(grantee, [])).toThrow(
      /needs at least one task queue, got none/,
    );
    expect(() => platform.taskQueues.grantSendMessages(grantee, other.queues)).toThrow(
      /queue "text-analysis-high" is not one of this construct's task queues/,
    );
  });

  it("refuses a table that is destroyed with the stack yet protected from deletion", () => {
    expect(() => new TaskTable(stack, "Conflicting", { removalPolicy: RemovalPolicy.DESTROY })).toThrow(
      /removalPolicy "destroy" conflicts with deletionProtection true/,
    );
  });

  it.each([
    [{ jwtIssuer: "https://issuer.example.com/" }, /jwtAudience must list at least one non-empty audience/],
    [{ jwtAudience: ["agentry-api"] }, /jwtIssuer must be an https:\/\/ URL .*got undefined/],
    [{ jwtIssuer: "http://issuer.example.com/", jwtAudience: ["a"] }, /got http:\/\/issuer\.example\.com\//],
  ])("refuses an incomplete or insecure JWT configuration %j", (jwt, message) => {
    expect(
      () =>
        new SupervisorApi(stack, `Api${JSON.stringify(jwt).length}`, {
          table: platform.tasks.table,
          eventBus: platform.bus.eventBus,
          taskQueues: platform.taskQueues,
          ...jwt,
        }),
    ).toThrow(message);
  });
});
