/**
 * AWS list prices the cost bench multiplies by, us-east-1, in USD. One file, so a price change is one
 * edit and the date says how old the figures are. Sources: the public pricing pages named below;
 * DynamoDB on-demand as reduced on 2024-11-01. Not re-read online from the bench machine (it has no
 * internet access): check them against the pages before quoting a figure.
 */
export const PRICES = {
  asOf: "2024-11-01",
  region: "us-east-1",
  sources: [
    "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "https://aws.amazon.com/sqs/pricing/",
    "https://aws.amazon.com/eventbridge/pricing/",
    "https://aws.amazon.com/lambda/pricing/",
  ],
  dynamodb: {
    /** Per write request unit (1 KB; transactional writes count 2 on the base table). */
    writeRequestUnit: 0.625 / 1e6,
    /** Per read request unit (4 KB strongly consistent; eventually consistent counts half). */
    readRequestUnit: 0.125 / 1e6,
    /** GetRecords made by a Lambda event source mapping on a table's stream are not billed. */
    streamReadByLambda: 0,
  },
  sqs: {
    /** Standard queue, per request; every 64 KB chunk of a request's payload is one request. */
    request: 0.4 / 1e6,
  },
  eventbridge: {
    /** Custom events, per event; every 64 KB chunk is one event. PutEvents batching saves nothing. */
    customEvent: 1.0 / 1e6,
  },
  lambda: {
    /** Per invocation. */
    request: 0.2 / 1e6,
    /** Per GB-second on arm64 (the stack's architecture), first pricing tier; billed per 1 ms. */
    gbSecondArm64: 0.0000133334,
  },
} as const;

/**
 * Memory each function is deployed with (MB), from the stack's defaults: supervisor-api 1024
 * (infra/constructs/supervisor-api.ts), aggregator 512 (infra/constructs/aggregation.ts), workers
 * 512 (infra/constructs/agentry-function.ts, LambdaWorker passes none).
 */
export const FUNCTION_MEMORY_MB: Readonly<Record<string, number>> = {
  "supervisor-api": 1024,
  aggregator: 512,
  worker: 512,
};

/**
 * Typical in-region latency of one request on AWS (ms), which replaces the emulators' latency in a
 * Lambda invocation's billed duration: DynamoDB Local (a JVM) and fauxqs on a shared 2-core machine
 * answer in tens of milliseconds, AWS in single digits. Assumptions, not measurements.
 */
export const ASSUMED_AWS_LATENCY_MS: Readonly<Record<string, number>> = {
  "DynamoDB.TransactWriteItems": 12,
  "DynamoDB.BatchWriteItem": 10,
  "DynamoDB.BatchGetItem": 8,
  "DynamoDB.Query": 8,
  DynamoDB: 6,
  SQS: 12,
  DynamoDBStreams: 10,
};

export function assumedLatencyMs(operation: string): number {
  return (
    ASSUMED_AWS_LATENCY_MS[operation] ??
    ASSUMED_AWS_LATENCY_MS[operation.slice(0, operation.indexOf("."))] ??
    10
  );
}
