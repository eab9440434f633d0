import { readFileSync, rmSync } from "node:fs";
import { App, type CfnElement, Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformConfig } from "#shared/agents/workers";
import { type PlatformConfig, pollerLeaseSeconds } from "#shared/config/platform";
import { AgentryStack } from "../../infra/agentry-stack.ts";
import { backlogSteps, containerEntry } from "../../infra/constructs/fargate-worker.ts";
import { AgentryPlatform } from "../../infra/constructs/platform.ts";
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

/**
 * The research capability on ECS Fargate (issue #12), as the default stack synthesizes it: service,
 * scaling, networking, task role, logs and alarms. Synthesized without bundling (the image's bundle
 * is run from a bundled synthesis in synthesized-app.test.ts).
 */

const SYNTH_TIMEOUT_MS = 120_000;
const RESEARCH = platformConfig.capabilities.find((c) => c.name === "research");

function only(template: Template, type: string): [string, CfnResource] {
  const found = Object.entries(resourcesOfType(template, type));
  expect(found, type).toHaveLength(1);
  return found[0] as [string, CfnResource];
}

describe("the research worker on ECS Fargate", () => {
  let stack: AgentryStack;
  let template: Template;
  let taskDefinition: CfnResource;
  let container: Record<string, unknown>;

  const outdir = temporaryOutdir();
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  beforeAll(() => {
    const app = new App({ outdir, context: withoutBundling(cdkJsonContext()) });
    stack = new AgentryStack(app, "Agentry");
    template = Template.fromStack(stack);
    [, taskDefinition] = only(template, "AWS::ECS::TaskDefinition");
    container = (taskDefinition.Properties.ContainerDefinitions as Record<string, unknown>[])[0] ?? {};
  }, SYNTH_TIMEOUT_MS);

  it("is the demo capability the platform config marks as Fargate, with no Lambda worker", () => {
    expect(RESEARCH).toMatchObject({ runtime: "fargate" });
    expect(platformConfig.taskTypes.research).toBe("research");
    expect(stack.platform.containerWorkers.map((w) => w.capabilities)).toEqual([["research"]]);
    expect(stack.platform.workers.map((w) => w.capability)).not.toContain("research");
  });

  it("runs a service of 0 tasks by default, on ARM64 Fargate with Container Insights on its cluster", () => {
    const [, service] = only(template, "AWS::ECS::Service");
    const [, cluster] = only(template, "AWS::ECS::Cluster");

    expect(service.Properties).toMatchObject({
      LaunchType: "FARGATE",
      DesiredCount: 0,
      DeploymentConfiguration: { DeploymentCircuitBreaker: { Enable: true, Rollback: true } },
    });
    expect(taskDefinition.Properties).toMatchObject({
      RequiresCompatibilities: ["FARGATE"],
      NetworkMode: "awsvpc",
      RuntimePlatform: { CpuArchitecture: "ARM64", OperatingSystemFamily: "LINUX" },
    });
    expect(cluster.Properties.ClusterSettings).toEqual([{ Name: "containerInsights", Value: "enabled" }]);
  });

  it("scales on backlog per task: exact capacity ⌈messages waiting or in flight ÷ 4⌉, from 0 to 4", () => {
    const [, target] = only(template, "AWS::ApplicationAutoScaling::ScalableTarget");
    const policies = Object.values(resourcesOfType(template, "AWS::ApplicationAutoScaling::ScalingPolicy"));
    const steps = policies.flatMap(
      (p) =>
        (p.Properties.StepScalingPolicyConfiguration as { StepAdjustments: Record<string, number>[] })
          .StepAdjustments,
    );
    const scalingAlarms = Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm")).filter((a) =>
      (a.Properties.AlarmActions as unknown[] | undefined)?.some((x) =>
        JSON.stringify(x).includes("Scaling"),
      ),
    );

    expect(target.Properties).toMatchObject({ MinCapacity: 0, MaxCapacity: RESEARCH?.maxConcurrency });
    expect(policies.map((p) => p.Properties.StepScalingPolicyConfiguration)).toEqual([
      expect.objectContaining({ AdjustmentType: "ExactCapacity" }),
      expect.objectContaining({ AdjustmentType: "ExactCapacity" }),
    ]);
    // Thresholds are relative to the scale-out alarm's threshold of 1 message.
    expect(steps).toEqual(
      expect.arrayContaining([
        { MetricIntervalUpperBound: 0, ScalingAdjustment: 0 },
        { MetricIntervalLowerBound: 0, MetricIntervalUpperBound: 4, ScalingAdjustment: 1 },
        { MetricIntervalLowerBound: 4, MetricIntervalUpperBound: 8, ScalingAdjustment: 2 },
        { MetricIntervalLowerBound: 12, ScalingAdjustment: 4 },
      ]),
    );
    expect(scalingAlarms).toHaveLength(2);
    for (const alarm of scalingAlarms) {
      const metrics = alarm.Properties.Metrics as { Id: string; Expression?: string; MetricStat?: unknown }[];
      expect(metrics.find((m) => m.Expression)?.Expression).toBe(
        "visible0 + inflight0 + visible1 + inflight1",
      );
      expect(
        metrics
          .filter((m) => m.MetricStat)
          .map((m) => (m.MetricStat as { Metric: { MetricName: string }; Period: number }).Metric.MetricName)
          .sort(),
      ).toEqual([
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesVisible",
      ]);
      expect(alarm.Properties.EvaluationPeriods).toBe(1);
    }
  });

  it("computes backlog steps that follow ⌈backlog ÷ perTask⌉ and never go below minTasks", () => {
    expect(backlogSteps(0, 3, 5)).toEqual([
      { upper: 0, change: 0 },
      { lower: 1, change: 1 },
      { lower: 6, change: 2 },
      { lower: 11, change: 3 },
    ]);
    expect(backlogSteps(2, 2, 1)).toEqual([
      { upper: 0, change: 2 },
      { lower: 1, change: 2 },
      { lower: 2, change: 2 },
    ]);
    // Many tasks: one task from the first message, then at most 10 steps, the last one at maxTasks.
    const many = backlogSteps(0, 100, 2);
    expect(many).toHaveLength(12);
    expect(many.at(-1)).toEqual({ lower: 199, change: 100 });
  });

  it("sets the stop timeout to the longest handler timeout it serves, capped at Fargate's 120 s, and drains 10 s less", () => {
    const env = Object.fromEntries(
      (container.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );

    expect(RESEARCH?.workerTimeoutSeconds).toBeGreaterThan(120);
    expect(container.StopTimeout).toBe(120);
    expect(env.DRAIN_SECONDS).toBe("110");
  });

  it("gives the container its capability, queues, lease, health check, init process and a read-only root", () => {
    const env = Object.fromEntries(
      (container.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );
    const queueUrls = JSON.parse(renderJoin(env.QUEUE_URLS)) as Record<string, string>;
    const dlqUrls = JSON.parse(renderJoin(env.DLQ_URLS)) as Record<string, string>;

    expect(env).toMatchObject({
      CAPABILITIES: "research",
      LEASE_SECONDS: String(pollerLeaseSeconds(platformConfig)),
      WORKER_CONCURRENCY: "4",
      HEALTH_PORT: "8080",
      POWERTOOLS_SERVICE_NAME: "research",
      STORE_SHARDS: String(platformConfig.shards),
    });
    expect(JSON.parse(String(env.PLATFORM_CONFIG))).toEqual(platformConfig);
    expect(Object.keys(queueUrls).sort()).toEqual(["research", "research-high"]);
    expect(Object.keys(dlqUrls).sort()).toEqual(["research", "research-high"]);
    expect(container).toMatchObject({
      Essential: true,
      ReadonlyRootFilesystem: true,
      LinuxParameters: { InitProcessEnabled: true },
      HealthCheck: {
        Command: ["CMD", "node", "-e", expect.stringContaining("http://127.0.0.1:8080/health")],
        Retries: 3,
      },
    });
  });

  it("gives the research queues the poller's lease as visibility timeout, not 6 × the worker timeout", () => {
    for (const q of stack.platform.taskQueues.forCapability("research")) {
      const [, queue] = Object.entries(resourcesOfType(template, "AWS::SQS::Queue")).find(
        ([id]) => id === stack.getLogicalId(q.queue.node.defaultChild as CfnElement),
      ) ?? [undefined, undefined];
      expect(queue?.Properties.VisibilityTimeout, q.logicalName).toBe(pollerLeaseSeconds(platformConfig));
    }
  });

  it("gives the task role exactly what the poller calls, on its own queues, the table and the bus", () => {
    const roleId = referencedId(taskDefinition.Properties.TaskRoleArn);
    const statements = Object.values(resourcesOfType(template, "AWS::IAM::Policy"))
      .filter((p) => (p.Properties.Roles as unknown[]).map(referencedId).includes(roleId))
      .flatMap((p) => statementsOf(p.Properties.PolicyDocument));
    // Action → every resource it is granted on, across the role's statements.
    const grants = new Map<string, Set<string>>();
    for (const st of statements) {
      for (const action of actionsOf(st)) {
        const resources = grants.get(action) ?? new Set<string>();
        for (const r of Array.isArray(st.Resource) ? st.Resource : [st.Resource]) {
          resources.add(
            typeof r === "object" && r !== null && "Fn::Join" in r ? renderJoin(r) : `<${referencedId(r)}>`,
          );
        }
        grants.set(action, resources);
      }
    }
    const on = (action: string) => [...(grants.get(action) ?? [])].sort();
    const [high, normal] = stack.platform.taskQueues.forCapability("research");
    const id = (construct: { node: { defaultChild?: unknown } }) =>
      `<${stack.getLogicalId(construct.node.defaultChild as CfnElement)}>`;
    const queues = [id(high.queue), id(normal.queue)].sort();
    const dlqs = [id(high.deadLetterQueue), id(normal.deadLetterQueue)];
    const [tableId] = Object.keys(resourcesOfType(template, "AWS::DynamoDB::Table"));

    expect([...grants.keys()].sort()).toEqual([
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]);
    for (const action of ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]) {
      expect(on(action), action).toEqual(queues);
    }
    expect(on("sqs:SendMessage")).toEqual([...queues, ...dlqs].sort());
    for (const action of [...grants.keys()].filter((a) => a.startsWith("dynamodb:"))) {
      expect(
        on(action).every((r) => r.startsWith(`<${tableId}>`)),
        action,
      ).toBe(true);
      expect(
        on(action).some((r) => r.includes("index/*")),
        action,
      ).toBe(false);
    }
  });

  it("writes the container's logs to a log group with bounded retention", () => {
    const logging = container.LogConfiguration as { LogDriver: string; Options: Record<string, unknown> };
    const groups = resourcesOfType(template, "AWS::Logs::LogGroup");

    expect(logging.LogDriver).toBe("awslogs");
    expect(groups[referencedId(logging.Options["awslogs-group"])]?.Properties.RetentionInDays).toBe(30);
  });

  it("creates no NAT gateway: public subnets, a public IP, a security group without inbound rules", () => {
    const [, service] = only(template, "AWS::ECS::Service");
    const network = (
      service.Properties.NetworkConfiguration as { AwsvpcConfiguration: Record<string, unknown> }
    ).AwsvpcConfiguration;
    const [groupId, group] = Object.entries(resourcesOfType(template, "AWS::EC2::SecurityGroup")).find(
      ([id]) => id === referencedId((network.SecurityGroups as unknown[])[0]),
    ) ?? [undefined, undefined];
    const subnets = resourcesOfType(template, "AWS::EC2::Subnet");

    template.resourceCountIs("AWS::EC2::NatGateway", 0);
    template.resourceCountIs("AWS::EC2::EIP", 0);
    expect(network.AssignPublicIp).toBe("ENABLED");
    for (const subnet of network.Subnets as unknown[]) {
      expect(subnets[referencedId(subnet)]?.Properties.MapPublicIpOnLaunch).toBe(true);
    }
    expect(groupId).toBeDefined();
    expect(group?.Properties.SecurityGroupIngress).toBeUndefined();
    template.resourceCountIs("AWS::EC2::SecurityGroupIngress", 0);
    // DynamoDB and S3 (ECR's image layers) through free gateway endpoints; flow logs of rejected traffic.
    template.resourcePropertiesCountIs("AWS::EC2::VPCEndpoint", { VpcEndpointType: "Gateway" }, 2);
    template.hasResourceProperties("AWS::EC2::FlowLog", { TrafficType: "REJECT" });
  });

  it("alarms as for a Lambda worker: errors logged and memory near the limit", () => {
    const [filterId, filter] = only(template, "AWS::Logs::MetricFilter");
    const alarms = Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm"));

    expect(filter.Properties.FilterPattern).toBe('{ $.level = "ERROR" }');
    expect(filterId).toBeDefined();
    expect(alarms.filter((a) => a.Properties.MetricName === "research-worker-errors")).toHaveLength(1);
    expect(alarms.filter((a) => a.Properties.MetricName === "MemoryUtilization")).toEqual([
      expect.objectContaining({ Properties: expect.objectContaining({ Threshold: 90 }) }),
    ]);
  });
});

describe("the container image", () => {
  const dockerfile = readFileSync(new URL("../../functions/containers/Dockerfile", import.meta.url), "utf8");
  const instructions = dockerfile
    .split("\n")
    .filter((line) => /^[A-Z]+\s/.test(line))
    .map((line) => line.split(/\s+/)[0]);

  it("copies only the esbuild bundle onto a Node.js 24 base, installs nothing, and runs as a non-root user", () => {
    expect(dockerfile).toMatch(/^FROM \S+node:24[-\w.]*$/m);
    expect(dockerfile).toMatch(/^COPY index\.mjs index\.mjs\.map \.\/$/m);
    expect(instructions.filter((i) => i === "COPY" || i === "ADD")).toEqual(["COPY"]);
    expect(instructions).not.toContain("RUN");
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "index\.mjs"\]$/m);
  });

  it("ignores everything but the bundle in its build context", () => {
    const ignore = readFileSync(new URL("../../functions/containers/.dockerignore", import.meta.url), "utf8");
    expect(ignore.split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([
      "*",
      "!Dockerfile",
      "!index.mjs",
      "!index.mjs.map",
    ]);
  });
});

describe("AgentryPlatform.addFargateWorker", () => {
  const config: PlatformConfig = {
    ...platformConfig,
    capabilities: [
      { name: "search", workerTimeoutSeconds: 30, maxConcurrency: 5 },
      { name: "crawl", workerTimeoutSeconds: 60, maxConcurrency: 6, runtime: "fargate" },
    ],
    taskTypes: { search: "search", crawl: "crawl" },
  };
  const platform = () => {
    const app = new App({ context: withoutBundling(cdkJsonContext()) });
    return new AgentryPlatform(new Stack(app, "Test"), "Platform", { config });
  };
  const entry = containerEntry("worker.ts");

  it("refuses a capability that is unknown or not marked runtime fargate", () => {
    expect(() => platform().addFargateWorker({ capabilities: ["nope"], entry })).toThrow(
      /unknown capability "nope"/,
    );
    expect(() => platform().addFargateWorker({ capabilities: ["search"], entry })).toThrow(
      /"search" is not a Fargate capability/,
    );
  });

  it("refuses a stop timeout beyond Fargate's 120 s or below the handler timeout, and impossible sizes", () => {
    expect(() =>
      platform().addFargateWorker({ capabilities: ["crawl"], entry, stopTimeout: Duration.seconds(121) }),
    ).toThrow(/stopTimeout must be between 12 and 120/);
    expect(() =>
      platform().addFargateWorker({ capabilities: ["crawl"], entry, stopTimeout: Duration.seconds(30) }),
    ).toThrow(/at least the longest worker timeout it serves \(60 s/);
    expect(() => platform().addFargateWorker({ capabilities: ["crawl"], entry, cpu: 300 })).toThrow(
      /cpu must be/,
    );
    expect(() =>
      platform().addFargateWorker({ capabilities: ["crawl"], entry, minTasks: 3, maxTasks: 2 }),
    ).toThrow(/maxTasks/);
  });

  it("serves each capability with one worker, and defaults the stop timeout to the handler timeout + 10 s", () => {
    const p = platform();
    const worker = p.addFargateWorker({ capabilities: ["crawl"], entry, minTasks: 1 });

    expect(worker.stopTimeout.toSeconds()).toBe(70);
    expect(() => p.addFargateWorker({ capabilities: ["crawl"], entry })).toThrow(/already exists/);
    const template = Template.fromStack(Stack.of(p));
    template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalableTarget", {
      MinCapacity: 1,
      MaxCapacity: 6,
    });
    template.hasResourceProperties("AWS::ECS::TaskDefinition", {
      ContainerDefinitions: [Match.objectLike({ StopTimeout: 70 })],
    });
  });
});
