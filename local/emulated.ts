import { join, resolve as resolvePath } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoAgentRegistry } from "#shared/adapters/aws/dynamo-agent-registry";
import { DynamoTaskStore } from "#shared/adapters/aws/dynamo-task-store";
import {
  attachCapacityMeter,
  attachRequestCounter,
  CapacityMeter,
  currentIo,
  IoTracker,
  RequestCounter,
} from "#shared/adapters/aws/request-accounting";
import { SqsTaskQueue } from "#shared/adapters/aws/sqs-task-queue";
import { createTaskStreamHandler, type TaskChangeProcessor } from "#shared/adapters/aws/task-stream-records";
import { type PlatformConfig, queuesForCapability } from "#shared/config/platform";
import type { Logger } from "#shared/ports/logger";
import { lambdaAgentPresence } from "#shared/worker/agent-presence";
import { queueNamesFromUrls } from "#shared/worker/aws-lambda";
import type { WorkerDefinition } from "#shared/worker/define-worker";
import { createLambdaWorkerHandler } from "#shared/worker/lambda-handler";
import { fileCheckpoints, type RunningStreamPoller, startStreamPoller } from "./dynamo-stream-poller.ts";
import { type RunningEmulators, startEmulators } from "./emulators.ts";
import { type ProvisionedResources, provisionLocalResources } from "./provision.ts";
import { type RunningEventSource, startSqsEventSource } from "./sqs-event-source.ts";

const REGION = "us-east-1";

/** Records one Lambda-equivalent invocation: the function's name and the handler's duration. */
export type InvocationRecorder = (functionName: string, durationMs: number, io: IoTracker) => void;

/** Runs `work` as one metered invocation: its duration and the AWS requests it waited on go to `record`. */
export async function meteredInvocation<R>(
  name: string,
  record: InvocationRecorder | undefined,
  work: () => Promise<R>,
): Promise<R> {
  if (!record) return work();
  const io = new IoTracker();
  const started = performance.now();
  try {
    return await currentIo.run(io, work);
  } finally {
    record(name, performance.now() - started, io);
  }
}
const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

export interface EmulatedInfrastructure {
  readonly emulators: RunningEmulators;
  readonly resources: ProvisionedResources;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  /** DynamoDB Local's Streams API (the task table's stream). */
  readonly streams: DynamoDBStreamsClient;
  /** Where DynamoDB Local keeps its data across restarts, if anywhere (`--data-dir`). */
  readonly dataDir?: string;
  readonly store: DynamoTaskStore;
  readonly queue: SqsTaskQueue;
  readonly registry: DynamoAgentRegistry;
  /** Every AWS request the platform made, by service and operation (the cost model's input). */
  readonly requests: RequestCounter;
  /** DynamoDB capacity consumed by the platform's requests (the cost bench's input). */
  readonly capacity: CapacityMeter;
  stop(): Promise<void>;
}

/**
 * The AWS side of `npm start -- --emulated`: starts Amazon DynamoDB Local and the fauxqs SQS
 * emulator, creates the table and queues the CDK stack would create, and builds the AWS adapters on
 * them with request accounting. EventBridge has no emulator: the caller keeps the in-process bus,
 * which implements EventBridge's pattern matching.
 *
 * @example
 * const infra = await startEmulatedInfrastructure(config);
 * await infra.stop();
 */
export async function startEmulatedInfrastructure(
  config: PlatformConfig,
  options: { dataDir?: string } = {},
): Promise<EmulatedInfrastructure> {
  const emulators = await startEmulators(options);
  try {
    const requests = new RequestCounter();
    const capacity = new CapacityMeter();
    const dynamodb = new DynamoDBClient({
      endpoint: emulators.dynamoEndpoint,
      region: REGION,
      credentials: CREDENTIALS,
    });
    const sqs = new SQSClient({
      endpoint: emulators.sqsEndpoint,
      region: REGION,
      credentials: CREDENTIALS,
      useQueueUrlAsEndpoint: false,
    });
    const streams = new DynamoDBStreamsClient({
      endpoint: emulators.dynamoEndpoint,
      region: REGION,
      credentials: CREDENTIALS,
    });
    const resources = await provisionLocalResources({ dynamodb, sqs, config, prefix: "agentry-local" });
    // Count only the platform's requests, not the provisioning above.
    attachRequestCounter(dynamodb, requests);
    attachRequestCounter(sqs, requests);
    attachCapacityMeter(dynamodb, capacity);
    attachRequestCounter(streams, requests);
    return {
      emulators,
      ...(options.dataDir !== undefined ? { dataDir: resolvePath(options.dataDir) } : {}),
      resources,
      dynamodb,
      sqs,
      streams,
      requests,
      capacity,
      store: new DynamoTaskStore({ client: dynamodb, tableName: resources.tableName, shards: config.shards }),
      queue: new SqsTaskQueue({ client: sqs, queueUrls: resources.queueUrls, dlqUrls: resources.dlqUrls }),
      registry: new DynamoAgentRegistry({ client: dynamodb, tableName: resources.tableName }),
      async stop() {
        dynamodb.destroy();
        sqs.destroy();
        streams.destroy();
        await emulators.stop();
      },
    };
  } catch (error) {
    await emulators.stop();
    throw error;
  }
}

/**
 * Runs workers the way AWS does: each worker definition becomes the SQS-batch Lambda handler it is
 * deployed as, fed by an event-source-mapping loop per queue it consumes.
 */
export async function startEmulatedLambdaWorkers(
  infra: EmulatedInfrastructure,
  workers: readonly WorkerDefinition[],
  deps: {
    config: PlatformConfig;
    logger: (agentType: string) => Logger;
    /** Told of every handler invocation and its duration (the cost bench's Lambda meter). */
    onInvocation?: InvocationRecorder;
  },
): Promise<RunningEventSource[]> {
  const queueNames = queueNamesFromUrls(infra.resources.queueUrls);
  const sources: RunningEventSource[] = [];
  for (const worker of workers) {
    const logger = deps.logger(worker.agentType);
    // As lambdaWorker() does on AWS: the agent type registers itself and heartbeats per batch.
    const presence = lambdaAgentPresence(worker, {
      registry: infra.registry,
      store: infra.store,
      config: deps.config,
      logger,
    });
    const batchHandler = createLambdaWorkerHandler(worker, {
      store: infra.store,
      queue: infra.queue,
      config: deps.config,
      logger,
      queueNames,
      agentId: presence.agentId,
    });
    const handler: typeof batchHandler = (event, context) =>
      meteredInvocation(`worker:${worker.agentType}`, deps.onInvocation, async () => {
        await presence.touch();
        return batchHandler(event, context);
      });
    for (const capability of worker.capabilities) {
      const capabilityConfig = deps.config.capabilities.find((c) => c.name === capability);
      for (const logical of queuesForCapability(capability)) {
        const queueUrl = infra.resources.queueUrls[logical];
        if (!queueUrl) throw new Error(`no queue provisioned for ${logical}`);
        sources.push(
          await startSqsEventSource({
            sqs: infra.sqs,
            queueUrl,
            handler: (event) =>
              handler(event, {
                getRemainingTimeInMillis: () => (capabilityConfig?.workerTimeoutSeconds ?? 30) * 1000,
              }),
            logger,
            maxConcurrency: Math.min(capabilityConfig?.maxConcurrency ?? 2, 4),
          }),
        );
      }
    }
  }
  return sources;
}

/**
 * Runs the task table's stream consumer the way AWS does: its Lambda handler (the one
 * functions/aggregator.ts exports), fed by a poller over DynamoDB Local's stream.
 */
export async function startEmulatedTaskStream(
  infra: EmulatedInfrastructure,
  processor: TaskChangeProcessor,
  deps: { logger: Logger; onInvocation?: InvocationRecorder },
): Promise<RunningStreamPoller> {
  const handler = createTaskStreamHandler(processor);
  return startStreamPoller({
    dynamodb: infra.dynamodb,
    streams: infra.streams,
    tableName: infra.resources.tableName,
    logger: deps.logger,
    // As deployed (infra/constructs/aggregation.ts): batches of up to 100, a 1 s batching window.
    batchSize: 100,
    batchingWindowMs: 1_000,
    // On a data directory the stream outlives the process: keep the position with it, as Lambda's
    // event source keeps its checkpoint, so a restart does not read everything again.
    ...(infra.dataDir !== undefined
      ? { checkpoints: fileCheckpoints(join(infra.dataDir, "stream-checkpoints.json")) }
      : {}),
    handler: (event) => meteredInvocation("aggregator", deps.onInvocation, () => handler(event)),
  });
}
