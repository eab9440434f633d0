import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { SQSClient } from "@aws-sdk/client-sqs";
import * as z from "zod";
import { DynamoAgentRegistry } from "#shared/adapters/aws/dynamo-agent-registry";
import { DynamoJobStore } from "#shared/adapters/aws/dynamo-job-store";
import { DynamoTaskStore } from "#shared/adapters/aws/dynamo-task-store";
import { EventBridgePublisher } from "#shared/adapters/aws/eventbridge-bus";
import { SqsTaskQueue } from "#shared/adapters/aws/sqs-task-queue";
import { AgentryError } from "#shared/domain/errors";
import type { Clock } from "#shared/ports/clock";

type Env = Readonly<Record<string, string | undefined>>;

const urlMap = (name: string) =>
  z
    .string({ error: `${name} is required: a JSON object of logical queue name → queue URL` })
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: `${name} is not valid JSON` });
        return z.NEVER;
      }
    })
    .pipe(z.record(z.string().min(1), z.url({ error: `${name} values must be URLs` })));

/**
 * The environment contract of every function that uses the AWS adapters. Endpoints are not part of
 * it: the SDK reads `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS` (or `AWS_ENDPOINT_URL`) itself.
 */
export const AwsAdapterEnvironmentSchema = z.object({
  AWS_REGION: z.string({ error: "AWS_REGION is required" }).min(1, "AWS_REGION is required"),
  TABLE_NAME: z
    .string({ error: "TABLE_NAME is required" })
    .regex(
      /^[A-Za-z0-9_.-]{3,255}$/,
      "TABLE_NAME must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)",
    ),
  EVENT_BUS_NAME: z.string({ error: "EVENT_BUS_NAME is required" }).min(1, "EVENT_BUS_NAME is required"),
  QUEUE_URLS: urlMap("QUEUE_URLS"),
  DLQ_URLS: urlMap("DLQ_URLS"),
  /** Shards of counters and task listings; the same in every function. */
  STORE_SHARDS: z.coerce.number().int().min(1).max(1000).default(16),
});
export type AwsAdapterEnvironment = z.infer<typeof AwsAdapterEnvironmentSchema>;

/** The environment is missing or malformed: the function cannot start. */
export class ConfigurationError extends AgentryError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: "configuration_error", statusCode: 500, cause });
    this.name = "ConfigurationError";
  }
}

/**
 * Reads and validates the environment contract; throws a ConfigurationError listing every problem.
 *
 * @example
 * const env = readAwsAdapterEnvironment(process.env);
 */
export function readAwsAdapterEnvironment(env: Env = process.env): AwsAdapterEnvironment {
  const parsed = AwsAdapterEnvironmentSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigurationError(
      `invalid environment for the AWS adapters:\n${z.prettifyError(parsed.error)}`,
      parsed.error,
    );
  }
  return parsed.data;
}

export interface AwsClients {
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly eventBridge: EventBridgeClient;
}

/**
 * Builds the SDK clients for a region. Endpoint overrides come from the SDK's own environment
 * variables; with one set for SQS, queue URLs no longer pick the endpoint (emulators hand out queue
 * URLs whose host does not resolve).
 *
 * @example
 * const clients = createAwsClients({ region: "eu-west-1" });
 */
export function createAwsClients(options: { region: string; env?: Env }): AwsClients {
  const env = options.env ?? process.env;
  const sqsEndpointOverridden = Boolean(env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL);
  return {
    dynamodb: new DynamoDBClient({ region: options.region }),
    sqs: new SQSClient({
      region: options.region,
      ...(sqsEndpointOverridden ? { useQueueUrlAsEndpoint: false } : {}),
    }),
    eventBridge: new EventBridgeClient({ region: options.region }),
  };
}

export interface AwsAdapters {
  readonly clients: AwsClients;
  readonly environment: AwsAdapterEnvironment;
  readonly taskStore: DynamoTaskStore;
  readonly agentRegistry: DynamoAgentRegistry;
  readonly jobStore: DynamoJobStore;
  readonly taskQueue: SqsTaskQueue;
  readonly eventPublisher: EventBridgePublisher;
}

/**
 * Every AWS adapter from the validated environment: environment → clients → adapters (the job
 * store included), ready for `createPlatform` (shared/core/platform.ts). Call it at module
 * scope so a warm Lambda reuses the clients.
 *
 * @example
 * const { taskStore, taskQueue, eventPublisher } = createAwsAdapters();
 */
export function createAwsAdapters(
  options: { env?: Env; clients?: AwsClients; clock?: Clock } = {},
): AwsAdapters {
  const env = options.env ?? process.env;
  const environment = readAwsAdapterEnvironment(env);
  const clients = options.clients ?? createAwsClients({ region: environment.AWS_REGION, env });
  const clock = options.clock ? { clock: options.clock } : {};
  return {
    clients,
    environment,
    taskStore: new DynamoTaskStore({
      client: clients.dynamodb,
      tableName: environment.TABLE_NAME,
      shards: environment.STORE_SHARDS,
      ...clock,
    }),
    agentRegistry: new DynamoAgentRegistry({ client: clients.dynamodb, tableName: environment.TABLE_NAME }),
    jobStore: new DynamoJobStore({
      client: clients.dynamodb,
      tableName: environment.TABLE_NAME,
      shards: environment.STORE_SHARDS,
    }),
    taskQueue: new SqsTaskQueue({
      client: clients.sqs,
      queueUrls: environment.QUEUE_URLS,
      dlqUrls: environment.DLQ_URLS,
    }),
    eventPublisher: new EventBridgePublisher({
      client: clients.eventBridge,
      eventBusName: environment.EVENT_BUS_NAME,
    }),
  };
}
