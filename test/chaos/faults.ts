import { appendFileSync } from "node:fs";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DYNAMODB_ITEM_OPERATIONS } from "#shared/adapters/aws/request-accounting";

/**
 * The chaos run's fault injector, preloaded into the runtime and worker processes it starts
 * (`node --import tsx --import ./test/chaos/faults.ts …`) and configured by `CHAOS_FAULTS` (JSON,
 * {@link FaultSettings}). It adds one middleware to every AWS SDK client the process builds, below the
 * SDK's retry middleware, so the SDK's own retries run first and what gets past them reaches the
 * platform's handling. Nothing of it is in a production code path: without the preload, nothing changes.
 *
 * Each injected fault is appended to `log` at once (one line `kind service operation`), so the counts
 * survive a SIGKILL of the process.
 */
export interface FaultSettings {
  readonly seed: number;
  /** Names the process in the log and seeds its own random sequence. */
  readonly label: string;
  /** File each injected fault is appended to. */
  readonly log: string;
  /** Share of data-plane requests refused with a throttling error before they are sent. */
  readonly throttle: number;
  /** Share refused with a 5xx before they are sent. */
  readonly serverError: number;
  /** Share answered with a 5xx after the service applied them: the caller cannot know it did. */
  readonly serverErrorAfterApply: number;
  /** Share of non-empty SQS receives one of whose messages is delivered again while in flight. */
  readonly redelivery: number;
  /** Share of SQS sends sent twice (two messages for the task). */
  readonly duplicateSend: number;
}

export type FaultKind = "throttle" | "5xx" | "5xx-after-apply" | "redelivery" | "duplicate-send";

/** Data-plane operations only: control-plane calls (CreateTable, CreateQueue…) run at start-up. */
const FAULTABLE: Readonly<Record<string, ReadonlySet<string>>> = {
  DynamoDB: DYNAMODB_ITEM_OPERATIONS,
  SQS: new Set([
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
  ]),
  EventBridge: new Set(["PutEvents"]),
};

/** mulberry32: a small seeded generator, so a run's fault decisions can be replayed per process. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function hashLabel(label: string): number {
  let hash = 2_166_136_261;
  for (const char of label) hash = Math.imul(hash ^ char.charCodeAt(0), 16_777_619);
  return hash >>> 0;
}

/** An error shaped as the service answers it, which the SDK's retry strategy classifies as it would. */
function serviceError(kind: "throttle" | "5xx", service: string): Error {
  const throttle = kind === "throttle";
  const name = throttle
    ? service === "DynamoDB"
      ? "ProvisionedThroughputExceededException"
      : "ThrottlingException"
    : service === "DynamoDB"
      ? "InternalServerError"
      : "InternalFailure";
  const error = new Error(`chaos: injected ${name}`);
  error.name = name;
  const statusCode = throttle ? 400 : 500;
  Object.assign(error, {
    $fault: throttle ? "client" : "server",
    $metadata: { httpStatusCode: statusCode, attempts: 1, totalRetryDelay: 0 },
    ...(throttle ? { $retryable: { throttling: true } } : {}),
  });
  return error;
}

type Handler = (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>;

function installFaults(settings: FaultSettings): void {
  const random = seededRandom(settings.seed ^ hashLabel(settings.label));
  const record = (kind: FaultKind, service: string, operation: string) =>
    appendFileSync(settings.log, `${kind} ${service} ${operation} ${settings.label}\n`);
  const clients: Array<[string, { prototype: object }]> = [
    ["DynamoDB", DynamoDBClient],
    ["SQS", SQSClient],
    ["EventBridge", EventBridgeClient],
  ];
  const base = Object.getPrototypeOf(DynamoDBClient.prototype) as {
    send: (this: { middlewareStack: Stack; config?: unknown }, ...args: unknown[]) => unknown;
  };
  for (const [, client] of clients) {
    if (Object.getPrototypeOf(client.prototype) !== base) {
      throw new Error(
        "chaos: the AWS SDK clients do not share one smithy Client class; cannot inject faults",
      );
    }
  }
  const serviceOf = (client: object): string | undefined => {
    for (const [service, type] of clients) if (client instanceof (type as never)) return service;
    // The DynamoDB document client wraps a DynamoDBClient and shares its middleware stack.
    return client.constructor.name.startsWith("DynamoDBDocument") ? "DynamoDB" : undefined;
  };
  const installed = new WeakSet<object>();
  const original = base.send;
  base.send = function send(this: { middlewareStack: Stack }, ...args: unknown[]) {
    const service = serviceOf(this);
    if (service !== undefined && !installed.has(this.middlewareStack)) {
      installed.add(this.middlewareStack);
      this.middlewareStack.add(faultMiddleware(service, this as unknown as SQSClient), {
        step: "finalizeRequest",
        priority: "low",
        name: "chaosFaults",
      });
    }
    return original.apply(this, args);
  };

  const faultMiddleware =
    (service: string, client: SQSClient) =>
    (next: Handler, context: { commandName?: string }): Handler =>
    async (args) => {
      const operation = (context.commandName ?? "").replace(/Command$/, "");
      if (!FAULTABLE[service]?.has(operation)) return next(args);
      const roll = random();
      if (roll < settings.throttle) {
        record("throttle", service, operation);
        throw serviceError("throttle", service);
      }
      if (roll < settings.throttle + settings.serverError) {
        record("5xx", service, operation);
        throw serviceError("5xx", service);
      }
      const result = await next(args);
      if (random() < settings.serverErrorAfterApply) {
        record("5xx-after-apply", service, operation);
        throw serviceError("5xx", service);
      }
      if (service === "SQS" && operation.startsWith("SendMessage") && random() < settings.duplicateSend) {
        await next(args);
        record("duplicate-send", service, operation);
      }
      const messages = result.output.Messages;
      const queueUrl = args.input.QueueUrl;
      if (
        operation === "ReceiveMessage" &&
        Array.isArray(messages) &&
        messages.length > 0 &&
        random() < settings.redelivery
      ) {
        // SQS delivers at least once: the message becomes visible again while this delivery is in
        // flight (as when its visibility timeout runs out), so another receive gets it with a new
        // receipt handle and this one's handle goes stale.
        const again = messages[Math.floor(random() * messages.length)] as { ReceiptHandle?: string };
        const delay = Math.floor(random() * 500);
        setTimeout(() => {
          client
            .send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: String(queueUrl),
                ReceiptHandle: String(again.ReceiptHandle),
                VisibilityTimeout: 0,
              }),
            )
            .then(
              () => record("redelivery", service, operation),
              () => undefined,
            );
        }, delay).unref();
      }
      return result;
    };
}

interface Stack {
  add(middleware: unknown, options: { step: string; priority: string; name: string }): void;
}

const raw = process.env.CHAOS_FAULTS;
if (raw !== undefined && raw !== "") installFaults(JSON.parse(raw) as FaultSettings);

// A chaos child outlives no orchestrator: if the run is cut short (a test timeout, Ctrl-C), each
// process notices its parent is gone within a second and exits (the runtime's exit stops DynamoDB Local).
const parent = Number(process.env.CHAOS_PARENT_PID);
if (Number.isInteger(parent) && parent > 0) {
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(1);
    }
  }, 1_000).unref();
}
