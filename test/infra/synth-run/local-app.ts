import { rmSync } from "node:fs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { type RunningEventSource, startSqsEventSource } from "#local/sqs-event-source";
import { type ContainerProcess, startContainerProcess } from "#test/support/container-process";
import {
  type EventBridgeStandIn,
  type FunctionRule,
  startEventBridgeStandIn,
} from "#test/support/eventbridge-stand-in";
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

export interface EventSourceMapping {
  readonly logicalId: string;
  readonly queueUrl: string;
  readonly function: LocalAppFunction;
  readonly batchSize: number;
  readonly maxConcurrency: number;
  readonly reportBatchItemFailures: boolean;
}

/**
 * The synthesized app running locally: the template's resources on the emulators, every function's
 * bundle imported with its resolved environment and its own recording proxies, the EventBridge
 * stand-in routing the template's rules, and event-source-mapping loops on demand.
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
  readonly rules: readonly FunctionRule[];
  readonly mappings: readonly EventSourceMapping[];
  readonly calls: readonly RecordedCall[];
  /** Errors the event source loops logged (a failed poll, a throwing batch). */
  readonly eventSourceErrors: readonly string[];
  /** The function behind the HTTP API's integration. */
  readonly api: LocalAppFunction;
  /** The function the schedule invokes, and the schedule's input (if any). */
  readonly scheduled: {
    readonly fn: LocalAppFunction;
    readonly scheduleArn: string;
    readonly input: unknown;
  };
  startEventSources(): Promise<void>;
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
  const sources: RunningEventSource[] = [];
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

    const rules: FunctionRule[] = resourcesOfType(template, "AWS::Events::Rule").flatMap(([ruleId, rule]) => {
      const p = propertiesOf(rule);
      if (p.State !== undefined && p.State !== "ENABLED") return [];
      if (!isObject(p.EventPattern))
        throw new Error(`${ruleId} has no EventPattern (schedule rules are not modelled)`);
      const targets = (Array.isArray(p.Targets) ? p.Targets : []).map((target: unknown, i: number) => {
        const where = `${ruleId}.Targets[${i}]`;
        if (!isObject(target)) throw new Error(`${where} is not an object`);
        if (
          target.Input !== undefined ||
          target.InputPath !== undefined ||
          target.InputTransformer !== undefined
        ) {
          throw new Error(`${where}: input transformation is not modelled`);
        }
        const id = resolver.logicalIdOf(resolver.resolveString(target.Arn, `${where}.Arn`));
        if (id === undefined || template.Resources[id]?.Type !== "AWS::Lambda::Function") {
          throw new Error(`${where}: only function targets are modelled`);
        }
        return id;
      });
      const busArn = emulated.busArns.get(
        resolver.resolveString(p.EventBusName ?? "default", `${ruleId}.EventBusName`),
      );
      if (busArn === undefined) throw new Error(`${ruleId} is on a bus the template does not declare`);
      return [{ ruleId, busArn, pattern: p.EventPattern, targets }];
    });

    bus = await startEventBridgeStandIn({
      region: REGION,
      account: emulated.account,
      busArns: emulated.busArns,
      rules,
      invoke: (target: string, event: unknown) => {
        const fn = functions.get(target);
        if (fn === undefined) throw new Error(`rule target ${target} was not loaded`);
        return fn.placeholder ? undefined : fn.invoke(event);
      },
    });
    const standIn = bus;
    closers.push(() => standIn.close());

    const scopes = installFunctionEnvironments();
    closers.push(() => scopes.restore());
    const arns = { tableArns: emulated.tableArns, queueArns: emulated.queueArns, busArns: emulated.busArns };

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
      functions.set(bundle.logicalId, { ...loaded, roleLogicalId, placeholder, env, templateEnv });
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
    ).flatMap(([logicalId, mapping]) => {
      const p = propertiesOf(mapping);
      if (p.Enabled === false) return [];
      const queueArn = resolver.resolveString(p.EventSourceArn, `${logicalId}.EventSourceArn`);
      const queueId = resolver.logicalIdOf(queueArn);
      const queue = queueId === undefined ? undefined : emulated.resources.get(queueId);
      if (queue?.type !== "AWS::SQS::Queue") throw new Error(`${logicalId}: only SQS sources are modelled`);
      const scaling = isObject(p.ScalingConfig) ? p.ScalingConfig : {};
      return [
        {
          logicalId,
          queueUrl: queue.ref,
          function: functionAt(p.FunctionName, `${logicalId}.FunctionName`),
          batchSize: Number(p.BatchSize ?? 10),
          maxConcurrency: Number(scaling.MaximumConcurrency ?? 2),
          reportBatchItemFailures:
            Array.isArray(p.FunctionResponseTypes) &&
            p.FunctionResponseTypes.includes("ReportBatchItemFailures"),
        },
      ];
    });

    const eventSourceErrors: string[] = [];
    const startEventSources = async () => {
      for (const mapping of mappings) {
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
          logger: {
            debug: () => undefined,
            info: () => undefined,
            warn: (message, extra) =>
              eventSourceErrors.push(`${mapping.logicalId}: ${message} ${JSON.stringify(extra ?? {})}`),
            error: (message, extra) =>
              eventSourceErrors.push(`${mapping.logicalId}: ${message} ${JSON.stringify(extra ?? {})}`),
          },
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
      rules,
      mappings,
      calls,
      eventSourceErrors,
      api,
      scheduled,
      startEventSources,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
