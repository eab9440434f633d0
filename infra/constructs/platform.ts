import { RemovalPolicy } from "aws-cdk-lib";
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  type IVpc,
  SubnetType,
  Vpc,
} from "aws-cdk-lib/aws-ec2";
import { Cluster, ContainerInsights } from "aws-cdk-lib/aws-ecs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { platformConfig } from "#shared/agents/workers";
import type { PlatformConfig } from "#shared/config/platform";
import { Aggregation } from "./aggregation.ts";
import { AgentryEventBus } from "./event-bus.ts";
import { FargateWorker, type FargateWorkerOptions } from "./fargate-worker.ts";
import { LambdaWorker, type LambdaWorkerOptions } from "./lambda-worker.ts";
import { Operations } from "./operations.ts";
import { SupervisorApi } from "./supervisor-api.ts";
import { Sweeper } from "./sweeper.ts";
import { TaskQueues } from "./task-queues.ts";
import { TaskTable } from "./task-table.ts";

export interface AgentryPlatformProps {
  /**
   * Capabilities, queues and policies.
   *
   * @default platformConfig
   */
  readonly config?: PlatformConfig;
  /**
   * What happens to the table and the log groups when they leave the stack. `DESTROY` suits
   * throw-away environments (and needs `deletionProtection: false`).
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Whether DynamoDB refuses to delete the task table.
   *
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * Issuer of the API's JWT authorizer (with `jwtAudience`).
   *
   * @default - IAM (SigV4) authorization on every route
   */
  readonly jwtIssuer?: string;
  /**
   * Audiences of the API's JWT authorizer (with `jwtIssuer`).
   *
   * @default - IAM (SigV4) authorization on every route
   */
  readonly jwtAudience?: readonly string[];
  /**
   * The event bus name (`EVENT_BUS_NAME`); set it to run two deployments in one account and region.
   *
   * @default "agentry"
   */
  readonly eventBusName?: string;
  /**
   * @default 100
   */
  readonly apiThrottlingRateLimit?: number;
  /**
   * @default 200
   */
  readonly apiThrottlingBurstLimit?: number;
  /**
   * Retention of every function log and the API access log.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Topic every alarm notifies.
   *
   * @default - alarms without actions
   */
  readonly alarmTopic?: ITopic;
  /**
   * The VPC Fargate workers run in, in subnets with a route to AWS APIs (`fargateSubnets`).
   *
   * @default - created with the first Fargate worker: two AZs of public subnets, no NAT gateway,
   * gateway endpoints for DynamoDB and S3, flow logs of rejected traffic
   */
  readonly fargateVpc?: IVpc;
  /**
   * Subnets of `fargateVpc` for the workers; give private subnets (with a NAT gateway or interface
   * endpoints) together with `fargateAssignPublicIp: false`.
   *
   * @default - the public subnets
   */
  readonly fargateSubnetType?: SubnetType;
  /**
   * @default true
   */
  readonly fargateAssignPublicIp?: boolean;
}

/**
 * The whole Agentry platform on AWS: task table, task queues, event bus, supervisor API, sweeper,
 * aggregation and operations (alarms, dashboard). Worker agents are added with
 * {@link AgentryPlatform.addLambdaWorker}, which wires them to their capability's queues and puts
 * them under the same alarms.
 *
 * @example
 * const platform = new AgentryPlatform(this, "Platform", { config: platformConfig });
 * platform.addLambdaWorker({
 *   capability: "summarization",
 *   entry: functionEntry("workers/summarization.ts"),
 *   maxConcurrency: 10,
 * });
 */
export class AgentryPlatform extends Construct {
  public readonly config: PlatformConfig;
  public readonly tasks: TaskTable;
  public readonly taskQueues: TaskQueues;
  public readonly bus: AgentryEventBus;
  public readonly api: SupervisorApi;
  public readonly sweeper: Sweeper;
  public readonly aggregation: Aggregation;
  public readonly operations: Operations;
  private readonly removalPolicy: RemovalPolicy;
  private readonly logRetention: RetentionDays | undefined;
  private readonly lambdaWorkers = new Map<string, LambdaWorker>();
  private readonly fargateWorkers = new Map<string, FargateWorker>();
  private readonly fargateNetwork: Pick<
    AgentryPlatformProps,
    "fargateVpc" | "fargateSubnetType" | "fargateAssignPublicIp"
  >;
  private cluster: Cluster | undefined;

  constructor(scope: Construct, id: string, props: AgentryPlatformProps = {}) {
    super(scope, id);
    this.config = props.config ?? platformConfig;
    this.removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.logRetention = props.logRetention;
    this.fargateNetwork = props;
    const logs = { logRetention: this.logRetention, logRemovalPolicy: this.removalPolicy };

    this.tasks = new TaskTable(this, "Tasks", {
      removalPolicy: this.removalPolicy,
      deletionProtection: props.deletionProtection,
    });
    this.taskQueues = new TaskQueues(this, "TaskQueues", { config: this.config });
    this.bus = new AgentryEventBus(this, "Bus", { eventBusName: props.eventBusName });
    const shared = { table: this.tasks.table, eventBus: this.bus.eventBus, taskQueues: this.taskQueues };

    this.api = new SupervisorApi(this, "Api", {
      ...shared,
      ...logs,
      jwtIssuer: props.jwtIssuer,
      jwtAudience: props.jwtAudience,
      throttlingRateLimit: props.apiThrottlingRateLimit,
      throttlingBurstLimit: props.apiThrottlingBurstLimit,
    });
    this.sweeper = new Sweeper(this, "Sweeper", { ...shared, ...logs });
    this.aggregation = new Aggregation(this, "Aggregation", { ...shared, ...logs });

    this.operations = new Operations(this, "Operations", { alarmTopic: props.alarmTopic });
    this.operations.monitorHttpApi("api", this.api.stage);
    this.operations.monitorFunction("supervisor-api", this.api.handler.function);
    this.operations.monitorFunction("sweeper", this.sweeper.handler.function);
    this.operations.monitorDeadLetterQueue("sweeper-failures", this.sweeper.deadLetterQueue);
    this.operations.monitorFunction("aggregator", this.aggregation.handler.function);
    this.operations.monitorDeadLetterQueue("aggregation-failures", this.aggregation.deadLetterQueue);
    for (const q of this.taskQueues.queues) {
      this.operations.monitorTaskQueue(q.logicalName, q.queue, q.deadLetterQueue);
    }
  }

  /** The Fargate workers added so far. */
  get containerWorkers(): readonly FargateWorker[] {
    return [...new Set(this.fargateWorkers.values())];
  }

  /**
   * Deploys a worker agent as long-running pollers on ECS Fargate consuming the queues of its
   * capabilities (each with `runtime: "fargate"` in the config, each served by one worker), scaled on
   * backlog per task from `minTasks` (0: scale to zero) to `maxTasks`, with the platform's table, bus,
   * alarms and log settings. The first one creates the cluster (Container Insights on) and, unless
   * `fargateVpc` was given, its VPC without a NAT gateway.
   *
   * @example
   * platform.addFargateWorker({ capabilities: ["research"], entry: containerEntry("worker.ts"), maxTasks: 4 });
   */
  addFargateWorker(options: FargateWorkerOptions): FargateWorker {
    for (const capability of options.capabilities) {
      if (this.fargateWorkers.has(capability)) {
        throw new Error(`a Fargate worker for capability "${capability}" already exists`);
      }
    }
    this.cluster ??= new Cluster(this, "WorkerCluster", {
      vpc: this.fargateNetwork.fargateVpc ?? createWorkerVpc(this, this.logRetention, this.removalPolicy),
      containerInsightsV2: ContainerInsights.ENABLED,
    });
    const worker = new FargateWorker(this, `${pascalCase(options.capabilities.join("-"))}FargateWorker`, {
      logRetention: this.logRetention,
      logRemovalPolicy: this.removalPolicy,
      ...options,
      taskQueues: this.taskQueues,
      table: this.tasks.table,
      eventBus: this.bus.eventBus,
      cluster: this.cluster,
      vpcSubnets: { subnetType: this.fargateNetwork.fargateSubnetType ?? SubnetType.PUBLIC },
      assignPublicIp: this.fargateNetwork.fargateAssignPublicIp ?? true,
    });
    for (const capability of options.capabilities) this.fargateWorkers.set(capability, worker);
    this.operations.monitorFargateService(
      `${options.capabilities.join("-")}-worker`,
      worker.service,
      worker.logGroup,
    );
    return worker;
  }

  /** The Lambda workers added so far. */
  get workers(): readonly LambdaWorker[] {
    return [...this.lambdaWorkers.values()];
  }

  /**
   * Deploys a worker agent as an SQS-triggered Lambda on both tier queues of its capability, with
   * the platform's table, bus, alarms and log settings. One Lambda worker per capability.
   */
  addLambdaWorker(options: LambdaWorkerOptions): LambdaWorker {
    if (this.lambdaWorkers.has(options.capability)) {
      throw new Error(`a lambda worker for capability "${options.capability}" already exists`);
    }
    const worker = new LambdaWorker(this, `${pascalCase(options.capability)}Worker`, {
      logRetention: this.logRetention,
      logRemovalPolicy: this.removalPolicy,
      ...options,
      taskQueues: this.taskQueues,
      table: this.tasks.table,
      eventBus: this.bus.eventBus,
    });
    this.lambdaWorkers.set(options.capability, worker);
    this.operations.monitorFunction(`${options.capability}-worker`, worker.handler.function);
    return worker;
  }
}

/**
 * The platform's Fargate workers network: a VPC with public subnets only and no NAT gateway (tasks
 * reach AWS APIs through their public IP, and DynamoDB and S3 (ECR image layers) through free gateway
 * endpoints), with flow logs of rejected traffic.
 */
function createWorkerVpc(
  scope: Construct,
  logRetention: RetentionDays | undefined,
  removalPolicy: RemovalPolicy,
): Vpc {
  const vpc = new Vpc(scope, "WorkerVpc", {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: "public", subnetType: SubnetType.PUBLIC, cidrMask: 24 }],
    gatewayEndpoints: {
      DynamoDB: { service: GatewayVpcEndpointAwsService.DYNAMODB },
      S3: { service: GatewayVpcEndpointAwsService.S3 },
    },
    // No custom resource (a Lambda) to empty the default security group: nothing uses it.
    restrictDefaultSecurityGroup: false,
  });
  const flowLogs = new LogGroup(scope, "WorkerVpcFlowLogs", {
    retention: logRetention ?? RetentionDays.ONE_MONTH,
    removalPolicy,
  });
  vpc.addFlowLog("FlowLog", {
    destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
    trafficType: FlowLogTrafficType.REJECT,
  });
  return vpc;
}

function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part.length > 0)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}
