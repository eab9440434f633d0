import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CfnResource, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IEventBus } from "aws-cdk-lib/aws-events";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, type IFunction, LoggingFormat, Tracing } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct, type IConstruct } from "constructs";
import type { PlatformConfig } from "#shared/config/platform";
import { lambdaBundleAliases } from "../bundling/aliases.ts";
import { ESBUILD_TARGET, LAMBDA_NODE_RUNTIME } from "../node-runtime.ts";

/** The repository root: NodejsFunction's project root and the base of every function entry. */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Absolute path of a Lambda entry file, given relative to `functions/` (e.g. `workers/echo.ts`). */
export function functionEntry(relativeToFunctions: string): string {
  return join(PROJECT_ROOT, "functions", relativeToFunctions);
}

/** The CloudWatch metrics namespace Powertools Metrics publishes to. */
export const METRICS_NAMESPACE = "Agentry";

/**
 * ESM bundles have no `require`; CommonJS dependencies bundled into them still call it for Node
 * built-ins. The banner gives them a real one.
 */

export const ESM_REQUIRE_BANNER =
  "import { createRequire as __agentryCreateRequire } from 'node:module'; const require = __agentryCreateRequire(import.meta.url);";

const MIN_MEMORY_MB = 128;
const MAX_MEMORY_MB = 10_240;
const MAX_TIMEOUT_SECONDS = 900;

export interface AgentryFunctionProps {
  /** Absolute path of the TypeScript entry file exporting `handler`. */
  readonly entry: string;
  /** `POWERTOOLS_SERVICE_NAME`: names the function in logs, traces and metrics. */
  readonly serviceName: string;
  /**
   * Files copied next to the bundle (project-relative path → file name), read by the code at run time
   * instead of being bundled, e.g. the API's generated OpenAPI document.
   * @default - none
   */
  readonly bundledFiles?: Readonly<Record<string, string>>;
  /** The task table (`TABLE_NAME`). Access is granted separately. */
  readonly table: ITable;
  /** The event bus (`EVENT_BUS_NAME`). Access is granted separately. */
  readonly eventBus: IEventBus;
  /**
   * `QUEUE_URLS`: logical queue name → URL of every queue the function sends to or receives from.
   *
   * @default {} - the function uses no task queue
   */
  readonly queueUrls?: Readonly<Record<string, string>>;
  /**
   * `DLQ_URLS`: logical queue name → URL of that queue's DLQ, for the queues the function
   * dead-letters messages of.
   *
   * @default {} - the function dead-letters nothing itself
   */
  readonly deadLetterQueueUrls?: Readonly<Record<string, string>>;
  /**
   * `STORE_SHARDS`: shards of the store's statistics counters and listing keys (`PlatformConfig.shards`);
   * every function of a deployment must use the same value.
   *
   * @default - unset; the runtime's default (16) applies
   */
  readonly storeShards?: number;
  /**
   * `PLATFORM_CONFIG`: the deployment's configuration as JSON, so routing, retries and timeouts in
   * the function are the ones the stack was synthesized with.
   *
   * @default - unset; the runtime uses the default configuration
   */
  readonly platformConfig?: PlatformConfig;
  /**
   * Extra environment variables, on top of the contract every Agentry function gets.
   *
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Where failed asynchronous invocations go (after Lambda's own two retries).
   *
   * @default - none; only valid for functions that are never invoked asynchronously
   */
  readonly deadLetterQueue?: IQueue;
  /**
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * What happens to the log group when it leaves the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * @default - none
   */
  readonly description?: string;
}

/**
 * A Lambda function built the one way Agentry builds them: TypeScript bundled by local esbuild
 * into a minified ESM file with source maps and every dependency (the AWS SDK included), Node.js 24
 * on arm64, X-Ray tracing, JSON logs into its own log group with bounded retention, and a role of
 * its own with nothing attached but write access to that log group. Callers grant the rest.
 *
 * Every function receives the runtime's environment contract: `TABLE_NAME`, `EVENT_BUS_NAME`,
 * `QUEUE_URLS`, `DLQ_URLS` (JSON objects), `POWERTOOLS_SERVICE_NAME`,
 * `POWERTOOLS_METRICS_NAMESPACE` and `NODE_OPTIONS=--enable-source-maps`, plus `STORE_SHARDS` when
 * given.
 *
 * @example
 * const fn = new AgentryFunction(this, "Sweeper", {
 *   entry: functionEntry("sweeper.ts"),
 *   serviceName: "sweeper",
 *   table: tasks.table,
 *   eventBus: bus.eventBus,
 *   queueUrls: queues.queueUrls(),
 * });
 * tasks.grantItemAccess(fn.function, ["dynamodb:Query"]);
 */
export class AgentryFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: AgentryFunctionProps) {
    const timeout = props.timeout ?? Duration.seconds(30);
    const memorySize = props.memorySize ?? 512;
    if (!Number.isInteger(memorySize) || memorySize < MIN_MEMORY_MB || memorySize > MAX_MEMORY_MB) {
      throw new Error(
        `memorySize must be an integer between ${MIN_MEMORY_MB} and ${MAX_MEMORY_MB} MB, got ${memorySize}`,
      );
    }
    if (timeout.toMilliseconds() < 1000 || timeout.toSeconds() > MAX_TIMEOUT_SECONDS) {
      throw new Error(
        `timeout must be between 1 and ${MAX_TIMEOUT_SECONDS} seconds, got ${timeout.toHumanString()}`,
      );
    }
    if (!/^[A-Za-z0-9-]+$/.test(props.serviceName)) {
      throw new Error(`serviceName must be letters, digits or hyphens, got "${props.serviceName}"`);
    }
    if (
      props.storeShards !== undefined &&
      (!Number.isInteger(props.storeShards) || props.storeShards < 1 || props.storeShards > 1000)
    ) {
      throw new Error(`storeShards must be an integer between 1 and 1000, got ${props.storeShards}`);
    }
    // Validated before joining the tree, so that a refused function leaves no half-built construct.
    super(scope, id);

    this.logGroup = new LogGroup(this, "LogGroup", {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // A role of our own instead of the default one, which carries the AWSLambdaBasicExecutionRole
    // managed policy (logs:* on every log group of the account).
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `Execution role of the Agentry ${props.serviceName} function`,
    });
    this.logGroup.grantWrite(this.role);

    const stack = Stack.of(this);
    this.function = new NodejsFunction(this, "Function", {
      entry: props.entry,
      handler: "handler",
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, "package-lock.json"),
      runtime: LAMBDA_NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      tracing: Tracing.ACTIVE,
      deadLetterQueue: props.deadLetterQueue,
      description: props.description,
      awsSdkConnectionReuse: false,
      bundling: {
        format: OutputFormat.ESM,
        target: ESBUILD_TARGET,
        banner: ESM_REQUIRE_BANNER,
        mainFields: ["module", "main"],
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        externalModules: [],
        // SDK parts a function never runs on Lambda (the default credential chain, event streams,
        // endpoint discovery's cache), each replaced by a small module: infra/bundling/aliases.ts.
        esbuildArgs: Object.fromEntries(
          Object.entries(lambdaBundleAliases(PROJECT_ROOT)).map(([pkg, file]) => [`--alias:${pkg}`, file]),
        ),
        ...(props.bundledFiles === undefined
          ? {}
          : {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling: (inputDir: string, outputDir: string) =>
                  Object.entries(props.bundledFiles ?? {}).map(
                    ([source, name]) => `cp "${join(inputDir, source)}" "${join(outputDir, name)}"`,
                  ),
              },
            }),
      },
      environment: {
        ...props.environment,
        TABLE_NAME: props.table.tableName,
        EVENT_BUS_NAME: props.eventBus.eventBusName,
        QUEUE_URLS: stack.toJsonString(props.queueUrls ?? {}),
        DLQ_URLS: stack.toJsonString(props.deadLetterQueueUrls ?? {}),
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: "--enable-source-maps",
        ...(props.storeShards === undefined ? {} : { STORE_SHARDS: String(props.storeShards) }),
        ...(props.platformConfig === undefined
          ? {}
          : { PLATFORM_CONFIG: JSON.stringify(props.platformConfig) }),
      },
    });

    declareConditionalGrants(this.function, {
      "logs:CreateLogStream": "the Lambda service creates the function's log stream in its own log group",
      "logs:PutLogEvents": "the Lambda service writes the function's logs to its own log group",
      "xray:PutTraceSegments": "active tracing: Lambda's X-Ray daemon sends the function's segments",
      "xray:PutTelemetryRecords": "active tracing: Lambda's X-Ray daemon reports its telemetry",
    });
    Validations.of(this.role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "Active X-Ray tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions (resource must be *).",
    });
  }
}

/** Template metadata key under which a function lists its conditional grants. */
export const CONDITIONAL_GRANTS_METADATA = "AgentryConditionalGrants";

/**
 * Records, on the template resource of a function (or an ECS task definition, for its task role), the
 * grants its role holds that a run may never use,
 * each with the reason — said by the construct that grants them, so the synthesized-app test (which
 * checks that every grant is either used or explained) follows whatever functions the stack deploys.
 *
 * @example
 * declareConditionalGrants(fn, { "sqs:SendMessage": "only to retry a failed attempt" });
 */
export function declareConditionalGrants(
  principal: IFunction | IConstruct,
  reasons: Readonly<Record<string, string>>,
): void {
  const resource = principal.node.defaultChild as CfnResource;
  const existing = (resource.getMetadata(CONDITIONAL_GRANTS_METADATA) ?? {}) as Record<string, string>;
  resource.addMetadata(CONDITIONAL_GRANTS_METADATA, { ...existing, ...reasons });
}
