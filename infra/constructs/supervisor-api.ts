import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import {
  HttpApi,
  HttpMethod,
  HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
} from "aws-cdk-lib/aws-apigatewayv2";
import { HttpIamAuthorizer, HttpJwtAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IEventBus } from "aws-cdk-lib/aws-events";
import { Grant, type IGrantable } from "aws-cdk-lib/aws-iam";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { AgentryFunction, functionEntry } from "./agentry-function.ts";
import type { TaskQueues } from "./task-queues.ts";
import { TaskTable } from "./task-table.ts";

/**
 * One JSON object per request (structured, so Logs Insights can query it). No request or response
 * bodies: payloads stay out of the logs.
 */
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: "$context.requestId",
  requestTime: "$context.requestTime",
  sourceIp: "$context.identity.sourceIp",
  caller: "$context.identity.userArn",
  jwtSubject: "$context.authorizer.claims.sub",
  httpMethod: "$context.httpMethod",
  routeKey: "$context.routeKey",
  path: "$context.path",
  status: "$context.status",
  protocol: "$context.protocol",
  responseLength: "$context.responseLength",
  responseLatency: "$context.responseLatency",
  integrationLatency: "$context.integrationLatency",
  integrationError: "$context.integrationErrorMessage",
  authorizerError: "$context.authorizer.error",
});

export interface SupervisorApiProps {
  /** The task table; the API function gets item-level read/write access. */
  readonly table: ITable;
  /** The bus the API publishes `Task Submitted` and agent messages to. */
  readonly eventBus: IEventBus;
  /** Every task queue; the API function may send to all of them. */
  readonly taskQueues: TaskQueues;
  /**
   * The API function's entry file.
   *
   * @default functions/supervisor-api.ts
   */
  readonly entry?: string;
  /**
   * Issuer URL of a JWT authorizer. When set (with `jwtAudience`), every route requires a JWT from
   * this issuer instead of a SigV4 signature.
   *
   * @default - IAM (SigV4) authorization on every route
   */
  readonly jwtIssuer?: string;
  /**
   * Accepted `aud` values of the JWT authorizer; required with `jwtIssuer`.
   *
   * @default - IAM (SigV4) authorization on every route
   */
  readonly jwtAudience?: readonly string[];
  /**
   * Steady-state requests per second across the API's routes.
   *
   * @default 100
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst capacity across the API's routes.
   *
   * @default 200
   */
  readonly throttlingBurstLimit?: number;
  /**
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
  /**
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * Retention of the access log and the function log.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * What happens to the log groups when they leave the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/** API Gateway waits at most 30 seconds for an HTTP API integration. */
const MAX_INTEGRATION_SECONDS = 29;

/**
 * The supervisor's HTTP API: one Lambda integration behind `ANY /{proxy+}` (routing happens in
 * `shared/http`), IAM (SigV4) authorization on every route — or a JWT authorizer when an issuer
 * and audience are given — a JSON access log, and stage-wide throttling.
 *
 * @example
 * const api = new SupervisorApi(this, "Api", { table: tasks.table, eventBus: bus.eventBus, taskQueues: queues });
 * api.grantInvoke(callerRole);
 * new CfnOutput(this, "ApiUrl", { value: api.url });
 */
export class SupervisorApi extends Construct {
  public readonly handler: AgentryFunction;
  public readonly httpApi: HttpApi;
  public readonly stage: HttpStage;
  public readonly accessLogGroup: LogGroup;
  /** The authorizer every route uses. */
  public readonly authorizer: IHttpRouteAuthorizer;

  constructor(scope: Construct, id: string, props: SupervisorApiProps) {
    super(scope, id);
    const rateLimit = props.throttlingRateLimit ?? 100;
    const burstLimit = props.throttlingBurstLimit ?? 200;
    const timeout = props.timeout ?? Duration.seconds(10);
    validatePositiveInteger("throttlingRateLimit", rateLimit);
    validatePositiveInteger("throttlingBurstLimit", burstLimit);
    if (timeout.toSeconds() > MAX_INTEGRATION_SECONDS) {
      throw new Error(
        `timeout must be at most ${MAX_INTEGRATION_SECONDS} seconds (the HTTP API integration limit), got ${timeout.toHumanString()}`,
      );
    }
    this.authorizer = createAuthorizer(props.jwtIssuer, props.jwtAudience);

    const { taskQueues } = props;
    this.handler = new AgentryFunction(this, "Handler", {
      entry: props.entry ?? functionEntry("supervisor-api.ts"),
      serviceName: "supervisor-api",
      description: "Agentry supervisor HTTP API",
      // Generated at build time and read on the first GET /openapi.json (shared/http/platform-routes.ts).
      bundledFiles: { "shared/http/openapi.json": "openapi.json" },
      table: props.table,
      eventBus: props.eventBus,
      queueUrls: taskQueues.queueUrls(),
      deadLetterQueueUrls: taskQueues.deadLetterQueueUrls(),
      storeShards: taskQueues.config.shards,
      platformConfig: taskQueues.config,
      timeout,
      memorySize: props.memorySize ?? 1024,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const fn = this.handler.function;
    // DeleteItem: agent unregistration (DELETE /agents/{agentId}). BatchGetItem: the sharded counters
    // (GET /stats, GET /stats/jobs) and the agents' load items (agent listings and pools).
    TaskTable.grantItemAccess(props.table, fn, [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
    ]);
    // SendMessage only, on every task queue: submission enqueues to the URLs in QUEUE_URLS.
    taskQueues.grantSendMessages(fn);
    // Operations: queue depths (GET /stats/queues) and the dead-letter queues (GET /dlq, POST /dlq/redrive).
    taskQueues.grantOperations(fn);
    props.eventBus.grantPutEventsTo(fn);
    Validations.of(fn).acknowledge({
      id: "Serverless-LambdaDLQ",
      reason:
        "Invoked synchronously by API Gateway only; a dead-letter queue applies to asynchronous invocations, and errors are returned to the API caller.",
    });

    this.httpApi = new HttpApi(this, "HttpApi", {
      description: "Agentry supervisor API",
      createDefaultStage: false,
      defaultAuthorizer: this.authorizer,
    });
    this.accessLogGroup = new LogGroup(this, "AccessLogs", {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.stage = new HttpStage(this, "DefaultStage", {
      httpApi: this.httpApi,
      stageName: "$default",
      autoDeploy: true,
      throttle: { rateLimit, burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });
    this.httpApi.addRoutes({
      path: "/{proxy+}",
      methods: [HttpMethod.ANY],
      integration: new HttpLambdaIntegration("Handler", fn),
    });
  }

  /** The base URL of the `$default` stage. */
  get url(): string {
    return this.stage.url;
  }

  /**
   * Lets an IAM principal call every route (`execute-api:Invoke`). Only meaningful with IAM
   * authorization; JWT callers are authorized by their token.
   */
  grantInvoke(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ["execute-api:Invoke"],
      resourceArns: [this.httpApi.arnForExecuteApi()],
    });
  }
}

function createAuthorizer(
  jwtIssuer: string | undefined,
  jwtAudience: readonly string[] | undefined,
): IHttpRouteAuthorizer {
  if (jwtIssuer === undefined && jwtAudience === undefined) {
    return new HttpIamAuthorizer();
  }
  if (jwtIssuer === undefined || !/^https:\/\/\S+$/.test(jwtIssuer)) {
    throw new Error(
      `jwtIssuer must be an https:// URL when a JWT authorizer is wanted, got ${String(jwtIssuer)}`,
    );
  }
  if (jwtAudience === undefined || jwtAudience.length === 0 || jwtAudience.some((a) => a.trim() === "")) {
    throw new Error(
      `jwtAudience must list at least one non-empty audience with jwtIssuer, got ${JSON.stringify(jwtAudience)}`,
    );
  }
  return new HttpJwtAuthorizer("JwtAuthorizer", jwtIssuer, { jwtAudience: [...jwtAudience] });
}

function validatePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, got ${value}`);
  }
}
