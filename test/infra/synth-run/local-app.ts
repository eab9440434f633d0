import { rmSync } from "node:fs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBBatchResponse, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { type RunningStreamPoller, startStreamPoller } from "#local/dynamo-stream-poller";
import { type RunningEventSource, startSqsEventSource } from "#local/sqs-event-source";
import type { TaskStreamRecord } from "#shared/adapters/aws/task-stream-records";
import type { Logger } from "#shared/ports/logger";
import { type ContainerProcess, startContainerProcess } from "#test/support/container-process";
import { type EventBridgeStandIn, startEventBridgeStandIn } from "#test/support/eventbridge-stand-in";
import { type CfnTemplate, isObject, propertiesOf, referencedLogicalId, resourcesOfType } from "./cfn.ts";
import { type EmulatedResources, provisionTemplateResources } from "./emulated-resources.ts";
import { installFunctionEnvironments, type LocalFunction, loadFunction } from "./lambda-runtime.ts";
import { type RecordedCall, type RecordingProxy, startRecordingProxy } from "./recording-proxy.ts";
import {
  containerBundles,
  functionBundles,
  isPlaceholderBundle,
  type SynthesizedApp,
  synthesizeAgentryApp,
} from "./synthesize.ts";

export const REGION = "us-east-1";
const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

/** What each function needs on top of its template environment: what Lambda's runtime provides. */
function lambdaRuntimeEnvironment(functionName: string, memoryMb: number): Record<string, string> {
  return {
    ...(process.env.PATH === undefined ? {} : { PATH: process.env.PATH }),
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
    // Not Lambda's: keeps the run's output readable (the functions log every task at INFO and flush
    // metrics to stdout). Neither changes what the functions call.
    POWERTOOLS_LOG_LEVEL: "WARN",
    POWERTOOLS_METRICS_DISABLED: "true",
  };
}

export interface LocalAppFunction extends LocalFunction {
  readonly roleLogicalId: string;
  readonly placeholder: boolean;
  /** The environment it runs with: the template's variables resolved, plus the runtime's. */
  readonly env: Readonly<Record<string, string>>;
  readonly templateEnv: Readonly<Record<string, string>>;
  /** Times the run invoked it (the API, the schedule, an event source mapping). */
  readonly invocations: number;
}

/**
 * A container of an ECS task definition, run as ECS would run its image: `node index.mjs` from the
 * image asset's build context in the cloud assembly, as a child process with the task definition's
 * environment, its AWS calls recorded as its task role's.
 */
export interface LocalAppContainer {
  /** The AWS::ECS::TaskDefinition. */
  readonly logicalId: string;
  readonly containerName: string;
  /** POWERTOOLS_SERVICE_NAME: the caller name its recorded calls carry. */
  readonly service: string;
  readonly taskRoleLogicalId: string;
  readonly stopTimeoutSeconds: number;
  readonly file: string;
  readonly templateEnv: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  /** Starts one more task of it (a child process); stopped with the app if still running. */
  start(): Promise<ContainerProcess>;
}

/** An AWS::Lambda::EventSourceMapping on an SQS queue. */
export interface SqsEventSourceMapping {
  readonly kind: "sqs";
  readonly logicalId: string;
  readonly queueUrl: string;
  readonly function: LocalAppFunction;
  readonly batchSize: number;
  readonly maxConcurrency: number;
  readonly reportBatchItemFailures: boolean;
}

/** An AWS::Lambda::EventSourceMapping on a table's DynamoDB Stream. */
export interface StreamEventSourceMapping {
  readonly kind: "dynamodb-stream";
  readonly logicalId: string;
  /** The emulated table's stream (`Fn::GetAtt [Table, StreamArn]`). */
  readonly streamArn: string;
  readonly function: LocalAppFunction;
  readonly batchSize: number;
  readonly batchingWindowSeconds: number;
  readonly reportBatchItemFailures: boolean;
}

export type EventSourceMapping = SqsEventSourceMapping | StreamEventSourceMapping;

/** One invocation of a function by a stream mapping: the batch it got and what it reported failed. */
export interface StreamDelivery {
  readonly mapping: string;
  /** The batch's changes: each one's sequence number, event name and item key (string key attributes). */
  readonly records: readonly {
    readonly sequenceNumber: string;
    readonly eventName: string;
    readonly key: Readonly<Record<string, string>>;
  }[];
  /** The batch item failures that counted (none without ReportBatchItemFailures), or the error thrown. */
  readonly failures: readonly string[];
}

/**
 * The synthesized app running locally: the template's resources on the emulators, every function's
 * bundle imported with its resolved environment and its own recording proxies, the EventBridge
 * stand-in for the buses the functions publish to, and event-source-mapping loops on demand: SQS
 * queues, and the table's stream (local/dynamo-stream-poller.ts).
 */
export interface LocalApp {
  readonly synthesized: SynthesizedApp;
  readonly template: CfnTemplate;
  readonly emulated: EmulatedResources;
  /** By logical id. */
  readonly functions: ReadonlyMap<string, LocalAppFunction>;
  /** Every container of every ECS task definition. */
  readonly containers: readonly LocalAppContainer[];
  readonly bus: EventBridgeStandIn;
  readonly mappings: readonly EventSourceMapping[];
  readonly calls: readonly RecordedCall[];
  /**
   * Errors the event source loops logged (a failed poll, a throwing batch), and every stream batch
   * whose records are delivered again (a thrown error or reported batch item failures).
   */
  readonly eventSourceErrors: readonly string[];
  /** Every invocation by a stream mapping, in order. */
  readonly streamDeliveries: readonly StreamDelivery[];
  /** The function behind the HTTP API's integration. */
  readonly api: LocalAppFunction;
  /** The function the schedule invokes, and the schedule's input (if any). */
  readonly scheduled: {
    readonly fn: LocalAppFunction;
    readonly scheduleArn: string;
    readonly input: unknown;
  };
  startEventSources(): Promise<void>;
  /**
   * Resolves once every stream mapping has handed its function every change committed before the
   * call (each shard read to its end afterwards); rejects after `timeoutMs`.
   */
  streamsCaughtUp(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Synthesizes the app and stands it up locally (see {@link LocalApp}); event sources start with
 * `startEventSources()`. `stop()` quiesces and closes everything, and removes the cloud assembly.
 *
 * @example
 * const app = await startLocalApp({ dynamoEndpoint, sqsEndpoint, dynamodb, sqs });
 * await app.api.invoke(httpApiEvent({ method: "GET", path: "/health" }));
 * await app.stop();
 */
export async function startLocalApp(options: {
  dynamoEndpoint: string;
  sqsEndpoint: string;
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
}): Promise<LocalApp> {
  const synthesized = synthesizeAgentryApp();
  const { template } = synthesized;
  const closers: (() => Promise<void> | void)[] = [
    () => rmSync(synthesized.outdir, { recursive: true, force: true }),
  ];
  const sources: (RunningEventSource | RunningStreamPoller)[] = [];
  const pollers: RunningStreamPoller[] = [];
  const containerProcesses: ContainerProcess[] = [];
  let bus: EventBridgeStandIn | undefined;
  const stop = async () => {
    // Quiesce first (no more polls, no invocation in flight), then close in reverse order of opening.
    await Promise.allSettled(sources.splice(0).map((source) => source.stop()));
    await Promise.allSettled(containerProcesses.splice(0).map((p) => p.stop("SIGKILL")));
    await bus?.idle();
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const emulated = await provisionTemplateResources({
      template,
      stackName: synthesized.stackName,
      dynamodb: options.dynamodb,
      sqs: options.sqs,
      region: REGION,
    });
    const { resolver } = emulated;
    const calls: RecordedCall[] = [];
    const record = (call: RecordedCall) => calls.push(call);
    const functions = new Map<string, LocalAppFunction>();

    // No function is a rule target: jobs are fed from the task table's stream, not from the bus.
    // A rule in the template would route events this run does not deliver, so it fails the run.
    const rules = resourcesOfType(template, "AWS::Events::Rule").map(([ruleId]) => ruleId);
    if (rules.length > 0) throw new Error(`EventBridge rules are not modelled: ${rules.join(", ")}`);

    // The buses the functions publish to (Job Completed, agent messages); nothing routes from them.
    bus = await startEventBridgeStandIn({
      region: REGION,
      account: emulated.account,
      busArns: emulated.busArns,
    });
    const standIn = bus;
    closers.push(() => standIn.close());

    const scopes = installFunctionEnvironments();
    closers.push(() => scopes.restore());
    const arns = {
      tableArns: emulated.tableArns,
      queueArns: emulated.queueArns,
      busArns: emulated.busArns,
      streamArns: emulated.streamArns,
    };

    // Sequentially: each import runs in its own environment scope.
    for (const bundle of functionBundles(synthesized)) {
      const resource = template.Resources[bundle.logicalId];
      if (resource === undefined) throw new Error(`no resource ${bundle.logicalId}`);
      const p = propertiesOf(resource);
      const variables =
        isObject(p.Environment) && isObject(p.Environment.Variables) ? p.Environment.Variables : {};
      const templateEnv = Object.fromEntries(
        Object.entries(variables).map(([name, value]) => [
          name,
          resolver.resolveString(value, `${bundle.logicalId}.Environment.Variables.${name}`),
        ]),
      );
      const service = templateEnv.POWERTOOLS_SERVICE_NAME ?? bundle.logicalId;
      const proxies: Record<"dynamodb" | "sqs" | "events", RecordingProxy> = {
        dynamodb: await startRecordingProxy({
          caller: service,
          upstream: options.dynamoEndpoint,
          arns,
          record,
        }),
        sqs: await startRecordingProxy({ caller: service, upstream: options.sqsEndpoint, arns, record }),
        events: await startRecordingProxy({ caller: service, upstream: standIn.url, arns, record }),
      };
      for (const proxy of Object.values(proxies)) closers.push(() => proxy.close());
      const physical = resolver.physical(bundle.logicalId, bundle.logicalId);
      const memoryMb = Number(p.MemorySize ?? 128);
      const env = {
        ...lambdaRuntimeEnvironment(physical.ref, memoryMb),
        ...templateEnv,
        // Service-specific endpoints only, each this function's own proxy (never AWS_ENDPOINT_URL).
        AWS_ENDPOINT_URL_DYNAMODB: proxies.dynamodb.url,
        AWS_ENDPOINT_URL_SQS: proxies.sqs.url,
        AWS_ENDPOINT_URL_EVENTBRIDGE: proxies.events.url,
      };
      const placeholder = isPlaceholderBundle(bundle);
      const loaded = await loadFunction({
        logicalId: bundle.logicalId,
        service,
        file: bundle.file,
        exportName: bundle.exportName,
        env,
        functionArn: physical.attributes.Arn ?? "",
        timeoutSeconds: Number(p.Timeout ?? 3),
        memoryMb,
        placeholder,
        scopes,
      });
      const roleLogicalId = referencedLogicalId(p.Role);
      if (roleLogicalId === undefined) throw new Error(`${bundle.logicalId} has no role reference`);
      let invocations = 0;
      functions.set(bundle.logicalId, {
        ...loaded,
        roleLogicalId,
        placeholder,
        env,
        templateEnv,
        get invocations() {
          return invocations;
        },
        invoke: (event) => {
          invocations++;
          return loaded.invoke(event);
        },
      });
    }

    const containers: LocalAppContainer[] = [];
    for (const bundle of containerBundles(synthesized)) {
      const resource = template.Resources[bundle.logicalId];
      const p = resource === undefined ? {} : propertiesOf(resource);
      const definitions = Array.isArray(p.ContainerDefinitions) ? p.ContainerDefinitions : [];
      const definition = definitions.find((d: unknown) => isObject(d) && d.Name === bundle.containerName);
      if (!isObject(definition)) throw new Error(`${bundle.logicalId}: no container ${bundle.containerName}`);
      const variables = Array.isArray(definition.Environment) ? definition.Environment : [];
      const templateEnv = Object.fromEntries(
        variables.map((variable: unknown, i: number) => {
          if (!isObject(variable) || typeof variable.Name !== "string")
            throw new Error(`${bundle.logicalId}.Environment[${i}] has no Name`);
          return [
            variable.Name,
            resolver.resolveString(variable.Value, `${bundle.logicalId}.Environment.${variable.Name}`),
          ];
        }),
      );
      const service = templateEnv.POWERTOOLS_SERVICE_NAME ?? bundle.logicalId;
      const taskRoleLogicalId = referencedLogicalId(p.TaskRoleArn);
      if (taskRoleLogicalId === undefined) throw new Error(`${bundle.logicalId} has no task role`);
      const proxies = {
        dynamodb: await startRecordingProxy({
          caller: service,
          upstream: options.dynamoEndpoint,
          arns,
          record,
        }),
        sqs: await startRecordingProxy({ caller: service, upstream: options.sqsEndpoint, arns, record }),
        events: await startRecordingProxy({ caller: service, upstream: standIn.url, arns, record }),
      };
      for (const proxy of Object.values(proxies)) closers.push(() => proxy.close());
      const env = {
        ...(process.env.PATH === undefined ? {} : { PATH: process.env.PATH }),
        // What the task role's container credentials would provide.
        AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        ...templateEnv,
        // On ECS each task has its own network namespace; here the tasks share the host's, so the
        // health endpoint takes a free port instead of the template's fixed one.
        HEALTH_PORT: "0",
        AWS_ENDPOINT_URL_DYNAMODB: proxies.dynamodb.url,
        AWS_ENDPOINT_URL_SQS: proxies.sqs.url,
        AWS_ENDPOINT_URL_EVENTBRIDGE: proxies.events.url,
      };
      containers.push({
        logicalId: bundle.logicalId,
        containerName: bundle.containerName,
        service,
        taskRoleLogicalId,
        stopTimeoutSeconds: Number(definition.StopTimeout ?? 30),
        file: bundle.file,
        templateEnv,
        env,
        start: async () => {
          const started = await startContainerProcess(bundle.file, env);
          containerProcesses.push(started);
          return started;
        },
      });
    }

    const functionAt = (value: unknown, where: string): LocalAppFunction => {
      const resolved = resolver.resolveString(value, where);
      const id = resolver.logicalIdOf(resolved) ?? resolver.logicalIdOf(resolved.replace(/:[^:]*$/, ""));
      const fn = id === undefined ? undefined : functions.get(id);
      if (fn === undefined) throw new Error(`${where}: ${resolved} is not one of the template's functions`);
      return fn;
    };

    const integrations = resourcesOfType(template, "AWS::ApiGatewayV2::Integration");
    if (integrations.length !== 1)
      throw new Error(`expected one API integration, got ${integrations.length}`);
    const [integrationId, integration] = integrations[0]!;
    const api = functionAt(propertiesOf(integration).IntegrationUri, `${integrationId}.IntegrationUri`);

    const schedules = resourcesOfType(template, "AWS::Scheduler::Schedule");
    if (schedules.length !== 1) throw new Error(`expected one schedule, got ${schedules.length}`);
    const [scheduleId, schedule] = schedules[0]!;
    const scheduleTarget = propertiesOf(schedule).Target;
    if (!isObject(scheduleTarget)) throw new Error(`${scheduleId} has no Target`);
    const scheduled = {
      fn: functionAt(scheduleTarget.Arn, `${scheduleId}.Target.Arn`),
      scheduleArn: `arn:aws:scheduler:${REGION}:${emulated.account}:schedule/default/${scheduleId}`,
      input:
        typeof scheduleTarget.Input === "string" ? (JSON.parse(scheduleTarget.Input) as unknown) : undefined,
    };

    const mappings: EventSourceMapping[] = resourcesOfType(
      template,
      "AWS::Lambda::EventSourceMapping",
    ).flatMap(([logicalId, mapping]): EventSourceMapping[] => {
      const p = propertiesOf(mapping);
      if (p.Enabled === false) return [];
      const sourceArn = resolver.resolveString(p.EventSourceArn, `${logicalId}.EventSourceArn`);
      const sourceId = resolver.logicalIdOf(sourceArn);
      const source = sourceId === undefined ? undefined : emulated.resources.get(sourceId);
      const fn = functionAt(p.FunctionName, `${logicalId}.FunctionName`);
      const reportBatchItemFailures =
        Array.isArray(p.FunctionResponseTypes) && p.FunctionResponseTypes.includes("ReportBatchItemFailures");
      if (source?.type === "AWS::SQS::Queue") {
        const scaling = isObject(p.ScalingConfig) ? p.ScalingConfig : {};
        return [
          {
            kind: "sqs",
            logicalId,
            queueUrl: source.ref,
            function: fn,
            batchSize: Number(p.BatchSize ?? 10),
            maxConcurrency: Number(scaling.MaximumConcurrency ?? 2),
            reportBatchItemFailures,
          },
        ];
      }
      if (source?.type === "AWS::DynamoDB::Table" && source.attributes.StreamArn === sourceArn) {
        // What the poller reproduces: one batch at a time per shard from the oldest record, whole
        // batches, a failed record and the ones after it read again. Retry limits, record age and the
        // on-failure destination only matter to a batch that keeps failing, which fails this run anyway
        // (eventSourceErrors).
        if (p.StartingPosition !== "TRIM_HORIZON")
          throw new Error(`${logicalId}: only StartingPosition TRIM_HORIZON is modelled`);
        if (p.BisectBatchOnFunctionError === true)
          throw new Error(`${logicalId}: BisectBatchOnFunctionError is not modelled`);
        if (Number(p.ParallelizationFactor ?? 1) !== 1)
          throw new Error(`${logicalId}: only ParallelizationFactor 1 is modelled`);
        for (const unsupported of ["FilterCriteria", "TumblingWindowInSeconds"]) {
          if (p[unsupported] !== undefined) throw new Error(`${logicalId}: ${unsupported} is not modelled`);
        }
        return [
          {
            kind: "dynamodb-stream",
            logicalId,
            streamArn: sourceArn,
            function: fn,
            batchSize: Number(p.BatchSize ?? 100),
            batchingWindowSeconds: Number(p.MaximumBatchingWindowInSeconds ?? 0),
            reportBatchItemFailures,
          },
        ];
      }
      throw new Error(`${logicalId}: only SQS queues and table streams are modelled (${sourceArn})`);
    });

    const eventSourceErrors: string[] = [];
    const streamDeliveries: StreamDelivery[] = [];
    const loggerOf = (mapping: EventSourceMapping): Logger => ({
      debug: () => undefined,
      info: () => undefined,
      warn: (message, ...extra) =>
        eventSourceErrors.push(`${mapping.logicalId}: ${message} ${JSON.stringify(extra)}`),
      error: (message, ...extra) =>
        eventSourceErrors.push(`${mapping.logicalId}: ${message} ${JSON.stringify(extra)}`),
    });
    const startStreamSource = async (mapping: StreamEventSourceMapping) => {
      const fn = mapping.function;
      // The mapping reads the stream with the function's execution role: its calls go through that
      // function's DynamoDB proxy (DynamoDB Local serves the Streams API on the same endpoint).
      const streams = new DynamoDBStreamsClient({
        endpoint: fn.env.AWS_ENDPOINT_URL_DYNAMODB,
        region: REGION,
        credentials: CREDENTIALS,
      });
      closers.push(() => streams.destroy());
      const poller = await startStreamPoller({
        streamArn: mapping.streamArn,
        streams,
        batchSize: mapping.batchSize,
        batchingWindowMs: mapping.batchingWindowSeconds * 1000,
        logger: loggerOf(mapping),
        handler: async ({ Records }) => {
          const records = Records.map((r) => ({
            sequenceNumber: String(r.dynamodb?.SequenceNumber),
            eventName: String(r.eventName),
            key: Object.fromEntries(
              Object.entries(r.dynamodb?.Keys ?? {}).map(([name, value]) => [
                name,
                String((value as { S?: unknown }).S),
              ]),
            ),
          }));
          let response: DynamoDBBatchResponse | undefined;
          try {
            response = (await fn.invoke({ Records: Records.map((r) => lambdaStreamRecord(r, mapping)) })) as
              | DynamoDBBatchResponse
              | undefined;
          } catch (error) {
            streamDeliveries.push({ mapping: mapping.logicalId, records, failures: [String(error)] });
            throw error;
          }
          // Without ReportBatchItemFailures, Lambda ignores a partial response: the batch succeeded.
          const batchItemFailures = mapping.reportBatchItemFailures
            ? (response?.batchItemFailures ?? [])
            : [];
          const failures = batchItemFailures.map((f) => String(f.itemIdentifier));
          streamDeliveries.push({ mapping: mapping.logicalId, records, failures });
          if (failures.length > 0)
            eventSourceErrors.push(`${mapping.logicalId}: batch item failures ${failures.join(", ")}`);
          return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
        },
      });
      sources.push(poller);
      pollers.push(poller);
    };
    const startEventSources = async () => {
      for (const mapping of mappings) {
        if (mapping.kind === "dynamodb-stream") {
          await startStreamSource(mapping);
          continue;
        }
        const fn = mapping.function;
        // The mapping polls with the function's execution role, so its calls go through that function's proxy.
        const sqs = new SQSClient({
          endpoint: fn.env.AWS_ENDPOINT_URL_SQS,
          region: REGION,
          credentials: CREDENTIALS,
          useQueueUrlAsEndpoint: false,
        });
        closers.push(() => sqs.destroy());
        const source = await startSqsEventSource({
          sqs,
          queueUrl: mapping.queueUrl,
          batchSize: mapping.batchSize,
          maxConcurrency: mapping.maxConcurrency,
          waitSeconds: 1,
          region: REGION,
          logger: loggerOf(mapping),
          handler: async (event: SQSEvent) => {
            const response = (await fn.invoke(event)) as SQSBatchResponse | undefined;
            // Without ReportBatchItemFailures, Lambda ignores a partial response: the batch succeeded.
            return mapping.reportBatchItemFailures ? response : undefined;
          },
        });
        sources.push(source);
      }
    };

    return {
      synthesized,
      template,
      emulated,
      functions,
      containers,
      bus: standIn,
      mappings,
      calls,
      eventSourceErrors,
      streamDeliveries,
      api,
      scheduled,
      startEventSources,
      streamsCaughtUp: (timeoutMs) => {
        if (pollers.length === 0) return Promise.reject(new Error("no stream event source is running"));
        return withTimeout(
          Promise.all(pollers.map((poller) => poller.caughtUp())).then(() => undefined),
          timeoutMs,
          "the stream event sources did not catch up",
        );
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A stream record as Lambda's event carries it: the mapping's stream as `eventSourceARN`, and
 * `ApproximateCreationDateTime` in epoch seconds (the Streams client parses it into a Date).
 */
function lambdaStreamRecord(record: TaskStreamRecord, mapping: StreamEventSourceMapping): unknown {
  const created = (record.dynamodb as { ApproximateCreationDateTime?: unknown } | undefined)
    ?.ApproximateCreationDateTime;
  return {
    ...record,
    eventSourceARN: mapping.streamArn,
    dynamodb: {
      ...record.dynamodb,
      ...(created instanceof Date ? { ApproximateCreationDateTime: created.getTime() / 1000 } : {}),
    },
  };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
