import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Duration, Names, RemovalPolicy, Stack, Stage, Validations } from "aws-cdk-lib";
import { AdjustmentType } from "aws-cdk-lib/aws-applicationautoscaling";
import { type IMetric, MathExpression, Stats } from "aws-cdk-lib/aws-cloudwatch";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { type ISecurityGroup, SecurityGroup, type SubnetSelection, SubnetType } from "aws-cdk-lib/aws-ec2";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import {
  type Cluster,
  type ContainerDefinition,
  ContainerImage,
  CpuArchitecture,
  FargateService,
  FargateTaskDefinition,
  LinuxParameters,
  LogDrivers,
  OperatingSystemFamily,
} from "aws-cdk-lib/aws-ecs";
import type { IEventBus } from "aws-cdk-lib/aws-events";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { pollerLeaseSeconds } from "#shared/config/platform";
import { bundleContainerEntry, CONTAINER_BUNDLE_FILE } from "../bundling/container-bundle.ts";
import {
  declareConditionalGrants,
  ESM_REQUIRE_BANNER,
  METRICS_NAMESPACE,
  PROJECT_ROOT,
} from "./agentry-function.ts";
import type { TaskQueues, TierQueue } from "./task-queues.ts";
import { TaskTable } from "./task-table.ts";

/** Fargate's longest stop timeout (SIGTERM → SIGKILL), in seconds. */
export const MAX_STOP_TIMEOUT_SECONDS = 120;
/** Kept from the stop timeout for releasing unfinished tasks, unregistering and exiting. */
const SHUTDOWN_MARGIN_SECONDS = 10;
const HEALTH_PORT = 8080;
/** Step adjustments of the scale-out policy: enough to follow the backlog closely, within AWS's limits. */
const MAX_SCALING_STEPS = 10;
/** Valid Fargate CPU units → memory (MiB) range and step. */
const FARGATE_SIZES: Readonly<Record<number, readonly [min: number, max: number, step: number]>> = {
  256: [512, 2048, 1024],
  512: [1024, 4096, 1024],
  1024: [2048, 8192, 1024],
  2048: [4096, 16_384, 1024],
  4096: [8192, 30_720, 1024],
  8192: [16_384, 61_440, 4096],
  16384: [32_768, 122_880, 8192],
};

/** The container image's build files (Dockerfile, .dockerignore), next to the container entries. */
export const CONTAINER_BUILD_DIR = join(PROJECT_ROOT, "functions", "containers");

/** Absolute path of a container worker entry, given relative to `functions/containers/`. */
export function containerEntry(relativeToContainers: string): string {
  return join(CONTAINER_BUILD_DIR, relativeToContainers);
}

/** What `AgentryPlatform.addFargateWorker` asks for; the platform supplies table, bus, queues and cluster. */
export interface FargateWorkerOptions {
  /** Capabilities of the platform config with `runtime: "fargate"`; the service consumes all their queues. */
  readonly capabilities: readonly string[];
  /** Absolute path of the container entry (`runContainerWorker(worker)`, see functions/containers/). */
  readonly entry: string;
  /**
   * Fargate CPU units.
   *
   * @default 256
   */
  readonly cpu?: number;
  /**
   * @default 512
   */
  readonly memoryLimitMiB?: number;
  /**
   * Tasks kept running when there is no work; 0 scales to zero (an idle service costs nothing).
   *
   * @default 0
   */
  readonly minTasks?: number;
  /**
   * Most tasks the service scales out to.
   *
   * @default - the largest `maxConcurrency` of its capabilities
   */
  readonly maxTasks?: number;
  /**
   * Tasks one container runs at once (`WORKER_CONCURRENCY`).
   *
   * @default 4
   */
  readonly concurrency?: number;
  /**
   * Messages (waiting or in flight) one container should have at most: the service runs
   * ⌈backlog ÷ this⌉ containers, between `minTasks` and `maxTasks`.
   *
   * @default - `concurrency`
   */
  readonly acceptableBacklogPerTask?: number;
  /**
   * How long ECS waits after SIGTERM before SIGKILL. The worker drains for this minus 10 s, then
   * releases what is still running. Fargate allows at most 120 s: longer tasks are released on a
   * deploy or scale-in and taken over through their lease.
   *
   * @default - the longest worker timeout of its capabilities + 10 s, at most 120 s
   */
  readonly stopTimeout?: Duration;
  /**
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
}

export interface FargateWorkerProps extends FargateWorkerOptions {
  readonly taskQueues: TaskQueues;
  readonly table: ITable;
  readonly eventBus: IEventBus;
  /** The cluster (and through it the VPC) the service runs in. */
  readonly cluster: Cluster;
  /**
   * Where the tasks run.
   *
   * @default - the cluster VPC's public subnets
   */
  readonly vpcSubnets?: SubnetSelection;
  /**
   * A public IP reaches AWS APIs without a NAT gateway; turn it off in private subnets with a NAT
   * gateway or interface endpoints.
   *
   * @default true
   */
  readonly assignPublicIp?: boolean;
}

/**
 * A worker agent running as long-lived pollers on ECS Fargate: one service whose containers run the
 * bundled `entry` (esbuild at synth, image built from functions/containers/Dockerfile at deploy),
 * consuming both tier queues of each capability. It scales on backlog per task — messages waiting or
 * in flight ÷ `acceptableBacklogPerTask`, step scaling to an exact task count — down to `minTasks`
 * (0 by default) and out from zero on the first message. Its security group has no inbound rule; its
 * task role holds only what the poller calls (receive, delete, change visibility and send on its
 * queues, send to their DLQs, the table's item actions; it publishes no event). ARM64, Container
 * Insights on the cluster, logs with bounded retention, a health check, and a stop timeout the
 * worker drains within.
 *
 * @example
 * new FargateWorker(this, "ResearchWorker", {
 *   capabilities: ["research"],
 *   entry: containerEntry("worker.ts"),
 *   taskQueues, table, eventBus, cluster,
 *   maxTasks: 4,
 * });
 */
export class FargateWorker extends Construct {
  public readonly capabilities: readonly string[];
  public readonly service: FargateService;
  public readonly taskDefinition: FargateTaskDefinition;
  public readonly container: ContainerDefinition;
  public readonly logGroup: LogGroup;
  public readonly securityGroup: ISecurityGroup;
  /** Every queue the service consumes, high tier first per capability. */
  public readonly queues: readonly TierQueue[];
  /** Messages visible + in flight on its queues: the scaling metric. */
  public readonly backlog: IMetric;
  public readonly stopTimeout: Duration;

  constructor(scope: Construct, id: string, props: FargateWorkerProps) {
    const settings = resolveSettings(props);
    super(scope, id);
    const { taskQueues } = props;
    this.capabilities = [...props.capabilities];
    this.queues = settings.queues;
    this.stopTimeout = settings.stopTimeout;

    this.logGroup = new LogGroup(this, "LogGroup", {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.taskDefinition = new FargateTaskDefinition(this, "TaskDefinition", {
      cpu: settings.cpu,
      memoryLimitMiB: settings.memoryLimitMiB,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });
    const serviceName = this.capabilities.join("-");
    const stack = Stack.of(this);
    this.container = this.taskDefinition.addContainer("Worker", {
      image: ContainerImage.fromAsset(stageImage(this, props.entry), { platform: Platform.LINUX_ARM64 }),
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: serviceName }),
      stopTimeout: settings.stopTimeout,
      readonlyRootFilesystem: true,
      essential: true,
      // A small init process as PID 1 forwards SIGTERM to node and reaps zombies.
      linuxParameters: new LinuxParameters(this, "LinuxParameters", { initProcessEnabled: true }),
      environment: {
        AWS_REGION: stack.region,
        TABLE_NAME: props.table.tableName,
        EVENT_BUS_NAME: props.eventBus.eventBusName,
        QUEUE_URLS: stack.toJsonString(taskQueues.queueUrls(settings.queues)),
        DLQ_URLS: stack.toJsonString(taskQueues.deadLetterQueueUrls(settings.queues)),
        STORE_SHARDS: String(taskQueues.config.shards),
        PLATFORM_CONFIG: JSON.stringify(taskQueues.config),
        CAPABILITIES: this.capabilities.join(","),
        WORKER_CONCURRENCY: String(settings.concurrency),
        LEASE_SECONDS: String(pollerLeaseSeconds(taskQueues.config)),
        DRAIN_SECONDS: String(settings.stopTimeout.toSeconds() - SHUTDOWN_MARGIN_SECONDS),
        HEALTH_PORT: String(HEALTH_PORT),
        POWERTOOLS_SERVICE_NAME: serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      },
      healthCheck: {
        command: [
          "CMD",
          "node",
          "-e",
          `fetch("http://127.0.0.1:${HEALTH_PORT}/health").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
        ],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
    });

    const taskRole = this.taskDefinition.taskRole;
    TaskTable.grantItemAccess(props.table, taskRole, [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
    ]);
    // No events:PutEvents: a worker publishes nothing; its writes reach the task table's stream.
    taskQueues.grantPoll(taskRole, settings.queues);
    taskQueues.grantSendMessages(taskRole, settings.queues);
    taskQueues.grantSendToDeadLetterQueues(taskRole, settings.queues);
    declareConditionalGrants(this.taskDefinition, {
      "sqs:SendMessage":
        "a poller sends only to retry a failed attempt (a delayed message on the task's queue) or to dead-letter a message (its DLQ)",
    });

    this.securityGroup = new SecurityGroup(this, "SecurityGroup", {
      vpc: props.cluster.vpc,
      description: `Agentry ${serviceName} workers: no inbound; outbound HTTPS to AWS APIs`,
      allowAllOutbound: true,
    });
    this.service = new FargateService(this, "Service", {
      cluster: props.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: settings.minTasks,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      assignPublicIp: props.assignPublicIp ?? true,
      vpcSubnets: props.vpcSubnets ?? { subnetType: SubnetType.PUBLIC },
      securityGroups: [this.securityGroup],
      enableExecuteCommand: false,
    });

    const usingMetrics: Record<string, IMetric> = {};
    settings.queues.forEach(({ queue }, index) => {
      usingMetrics[`visible${index}`] = queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: Stats.MAXIMUM,
      });
      usingMetrics[`inflight${index}`] = queue.metricApproximateNumberOfMessagesNotVisible({
        period: Duration.minutes(1),
        statistic: Stats.MAXIMUM,
      });
    });
    this.backlog = new MathExpression({
      expression: Object.keys(usingMetrics).join(" + "),
      usingMetrics,
      period: Duration.minutes(1),
      label: `${serviceName} backlog (messages waiting or in flight)`,
    });
    const scaling = this.service.autoScaleTaskCount({
      minCapacity: settings.minTasks,
      maxCapacity: settings.maxTasks,
    });
    scaling.scaleOnMetric("BacklogScaling", {
      metric: this.backlog,
      adjustmentType: AdjustmentType.EXACT_CAPACITY,
      scalingSteps: backlogSteps(settings.minTasks, settings.maxTasks, settings.acceptableBacklogPerTask),
      evaluationPeriods: 1,
      cooldown: Duration.seconds(60),
    });

    Validations.of(this.taskDefinition.obtainExecutionRole()).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "ECS pulls the image with ecr:GetAuthorizationToken, which supports no resource-level permissions; the layer reads are scoped to the asset repository.",
    });
    Validations.of(this.taskDefinition).acknowledge({
      id: "AwsSolutions-ECS2",
      reason:
        "The environment holds resource names, queue URLs and the platform config, no secret; the worker reads its contract from the environment like the Lambda functions do.",
    });
  }
}

interface FargateSettings {
  readonly cpu: number;
  readonly memoryLimitMiB: number;
  readonly minTasks: number;
  readonly maxTasks: number;
  readonly concurrency: number;
  readonly acceptableBacklogPerTask: number;
  readonly stopTimeout: Duration;
  readonly queues: readonly TierQueue[];
}

function resolveSettings(props: FargateWorkerProps): FargateSettings {
  const { taskQueues } = props;
  if (props.capabilities.length === 0)
    throw new Error("a Fargate worker needs at least one capability, got none");
  const configs = props.capabilities.map((capability) => {
    const config = taskQueues.capabilityConfig(capability);
    if (config.runtime !== "fargate") {
      throw new Error(
        `capability "${capability}" is not a Fargate capability: give its worker deployment: { runsOn: "fargate" } (shared/agents/workers.ts derives runtime: "fargate" in the config, and its queues then follow the poller's lease)`,
      );
    }
    return config;
  });
  const cpu = props.cpu ?? 256;
  const memoryLimitMiB = props.memoryLimitMiB ?? 512;
  const size = FARGATE_SIZES[cpu];
  if (size === undefined) {
    throw new Error(
      `cpu must be one of ${Object.keys(FARGATE_SIZES).join(", ")} Fargate CPU units, got ${cpu}`,
    );
  }
  const [minMemory, maxMemory, step] = size;
  if (
    !Number.isInteger(memoryLimitMiB) ||
    memoryLimitMiB < minMemory ||
    memoryLimitMiB > maxMemory ||
    (memoryLimitMiB !== 512 && memoryLimitMiB % step !== 0)
  ) {
    throw new Error(
      `memoryLimitMiB for ${cpu} CPU units must be ${minMemory}-${maxMemory} MiB in steps of ${step}, got ${memoryLimitMiB}`,
    );
  }
  const minTasks = props.minTasks ?? 0;
  const maxTasks = props.maxTasks ?? Math.max(...configs.map((c) => c.maxConcurrency));
  if (!Number.isInteger(minTasks) || minTasks < 0) {
    throw new Error(`minTasks must be a non-negative integer, got ${minTasks}`);
  }
  if (!Number.isInteger(maxTasks) || maxTasks < Math.max(1, minTasks) || maxTasks > 1000) {
    throw new Error(`maxTasks must be an integer between max(1, minTasks) and 1000, got ${maxTasks}`);
  }
  const concurrency = props.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
    throw new Error(`concurrency must be an integer between 1 and 1000, got ${concurrency}`);
  }
  const acceptableBacklogPerTask = props.acceptableBacklogPerTask ?? concurrency;
  if (!Number.isInteger(acceptableBacklogPerTask) || acceptableBacklogPerTask < 1) {
    throw new Error(`acceptableBacklogPerTask must be a positive integer, got ${acceptableBacklogPerTask}`);
  }
  const longest = Math.max(...configs.map((c) => c.workerTimeoutSeconds));
  const stopTimeout =
    props.stopTimeout ??
    Duration.seconds(Math.min(MAX_STOP_TIMEOUT_SECONDS, longest + SHUTDOWN_MARGIN_SECONDS));
  const stopSeconds = stopTimeout.toSeconds();
  if (stopSeconds < SHUTDOWN_MARGIN_SECONDS + 2 || stopSeconds > MAX_STOP_TIMEOUT_SECONDS) {
    throw new Error(
      `stopTimeout must be between ${SHUTDOWN_MARGIN_SECONDS + 2} and ${MAX_STOP_TIMEOUT_SECONDS} seconds (Fargate's maximum), got ${stopSeconds}`,
    );
  }
  if (stopSeconds < Math.min(longest, MAX_STOP_TIMEOUT_SECONDS)) {
    throw new Error(
      `stopTimeout must be at least the longest worker timeout it serves (${longest} s, at most ${MAX_STOP_TIMEOUT_SECONDS}), got ${stopSeconds}`,
    );
  }
  const queues = props.capabilities.flatMap((capability) => [...taskQueues.forCapability(capability)]);
  return {
    cpu,
    memoryLimitMiB,
    minTasks,
    maxTasks,
    concurrency,
    acceptableBacklogPerTask,
    stopTimeout,
    queues,
  };
}

/**
 * Step scaling to an exact task count: no backlog → `minTasks`; a backlog of b → ⌈b ÷ perTask⌉ tasks,
 * in at most MAX_SCALING_STEPS steps up to `maxTasks`. The first message already starts one task.
 */
export function backlogSteps(
  minTasks: number,
  maxTasks: number,
  perTask: number,
): { lower?: number; upper?: number; change: number }[] {
  const steps = Math.min(maxTasks, MAX_SCALING_STEPS);
  const counts = [
    ...new Set([1, ...Array.from({ length: steps }, (_, k) => Math.ceil(((k + 1) * maxTasks) / steps))]),
  ];
  return [
    { upper: 0, change: minTasks },
    ...counts.map((tasks) => ({ lower: (tasks - 1) * perTask + 1, change: Math.max(tasks, minTasks) })),
  ];
}

/**
 * The image's build context: the esbuild bundle of the entry, the Dockerfile and the .dockerignore,
 * staged under the cloud assembly. Nothing else reaches the image. When the stack is synthesized
 * without bundling (`aws:cdk:bundling-stacks`), a stub stands in for the bundle.
 */
function stageImage(scope: Construct, entry: string): string {
  const stage = Stage.of(scope);
  const dir = join(stage?.outdir ?? PROJECT_ROOT, ".container-builds", Names.uniqueId(scope));
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(CONTAINER_BUILD_DIR, "Dockerfile"), join(dir, "Dockerfile"));
  copyFileSync(join(CONTAINER_BUILD_DIR, ".dockerignore"), join(dir, ".dockerignore"));
  if (Stack.of(scope).bundlingRequired) {
    bundleContainerEntry({ entry, outdir: dir, projectRoot: PROJECT_ROOT, banner: ESM_REQUIRE_BANNER });
  } else {
    writeFileSync(
      join(dir, CONTAINER_BUNDLE_FILE),
      'throw new Error("not bundled: synthesized without bundling");\n',
    );
    writeFileSync(join(dir, `${CONTAINER_BUNDLE_FILE}.map`), "{}\n");
  }
  return dir;
}
