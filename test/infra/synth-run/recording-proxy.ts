import { Agent, createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { isObject } from "./cfn.ts";

/** One IAM authorization a request needs: the action IAM evaluates and the resource it evaluates it on. */
export interface Authorization {
  readonly action: string;
  readonly resource: string;
}

export interface RecordedCall {
  /** Who made the call: the function (its service name) whose role signs it on AWS. */
  readonly caller: string;
  /** The API operation from `X-Amz-Target`, e.g. `DynamoDB_20120810.TransactWriteItems`. */
  readonly target: string;
  readonly authorizations: readonly Authorization[];
  /** The emulator's HTTP status; 0 while unanswered (or when the caller gave up first). */
  status: number;
  /** For an error answer (status ≥ 400), what the emulator said, once its body has been read. */
  error?: RecordedError;
}

export interface RecordedError {
  /** The error's `__type` without its namespace, e.g. `ConditionalCheckFailedException`. */
  readonly type: string;
  /** A canceled transaction's reason codes, one per item (`ConditionalCheckFailed`, `None`, …). */
  readonly cancellationReasons?: readonly string[];
}

/**
 * Whether an error answer is a DynamoDB condition that did not hold: a guarded write that lost a race
 * or found its work already done (a ConditionalCheckFailed item, or a transaction canceled only by
 * such items). The request was authorized and the guard did its job; the caller handles the outcome.
 */
export function isConditionNotMet(call: RecordedCall): boolean {
  const { error } = call;
  if (call.status !== 400 || error === undefined) return false;
  if (error.type === "ConditionalCheckFailedException") return true;
  const reasons = error.cancellationReasons ?? [];
  return (
    error.type === "TransactionCanceledException" &&
    reasons.includes("ConditionalCheckFailed") &&
    reasons.every((code) => code === "ConditionalCheckFailed" || code === "None")
  );
}

/** Turns names, URLs and ARNs found in request bodies into the ARNs IAM evaluates. */
export interface ResourceArns {
  readonly tableArns: ReadonlyMap<string, string>;
  readonly queueArns: ReadonlyMap<string, string>;
  readonly busArns: ReadonlyMap<string, string>;
  /** Table stream ARNs the harness knows (each maps to itself). */
  readonly streamArns: ReadonlyMap<string, string>;
}

/**
 * The IAM authorizations one API request needs, from its `X-Amz-Target` and JSON body. An operation
 * is authorized by the action of the same name except where AWS documents otherwise:
 *
 * - DynamoDB TransactWriteItems has no action of its own: "Permissions for Put, Update, Delete, and
 *   Get actions are governed by the permissions used for the underlying PutItem, UpdateItem,
 *   DeleteItem, and GetItem operations. For the ConditionCheck action, you can use the
 *   dynamodb:ConditionCheckItem permission" (DynamoDB Developer Guide, "Using IAM with DynamoDB
 *   transactions"). So each item is one authorization, on its own table. TransactGetItems likewise.
 * - DynamoDB BatchWriteItem / BatchGetItem are authorized by dynamodb:BatchWriteItem /
 *   dynamodb:BatchGetItem on each table named in RequestItems (Service Authorization Reference).
 * - DynamoDB Query and Scan with IndexName are evaluated on `<table ARN>/index/<name>`.
 * - SQS: "You cannot set permissions explicitly for SendMessageBatch, DeleteMessageBatch, or
 *   ChangeMessageVisibilityBatch. Instead, setting permissions for SendMessage, DeleteMessage, or
 *   ChangeMessageVisibility sets permissions for the corresponding batch versions" (SQS Developer
 *   Guide, "Amazon SQS batch actions").
 * - EventBridge PutEvents is evaluated on the bus of each entry (the default bus when none is named).
 * - DynamoDB Streams operations (`DynamoDBStreams_20120810.*`) are authorized by the `dynamodb:`
 *   action of the same name: DescribeStream and GetShardIterator on the stream ARN they name
 *   (`arn:aws:dynamodb:…:table/NAME/stream/LABEL`), GetRecords on the stream its shard iterator was
 *   issued for, ListStreams on `*` (it has no resource type; Service Authorization Reference). A shard
 *   iterator is the stream ARN, `|`, then an opaque rest (the GetShardIterator API reference's example
 *   answer, and DynamoDB Local's), so the stream is read from it.
 *
 * A name the harness did not create resolves to `unknown:<kind>/<name>`, which no policy allows.
 */
export function authorizationsOf(target: string, body: unknown, arns: ResourceArns): Authorization[] {
  const dot = target.indexOf(".");
  const prefix = target.slice(0, dot);
  const operation = target.slice(dot + 1);
  const input = isObject(body) ? body : {};
  const table = (name: unknown) => arns.tableArns.get(String(name)) ?? `unknown:table/${String(name)}`;
  switch (prefix) {
    case "DynamoDB_20120810": {
      const on = (action: string, resource: string): Authorization => ({
        action: `dynamodb:${action}`,
        resource,
      });
      switch (operation) {
        case "TransactWriteItems":
        case "TransactGetItems":
          return (Array.isArray(input.TransactItems) ? input.TransactItems : []).flatMap((item: unknown) => {
            if (!isObject(item)) return [];
            return Object.entries(item).map(([kind, detail]) => {
              const action = TRANSACT_ITEM_ACTIONS[kind];
              if (action === undefined) throw new Error(`unknown ${operation} item kind ${kind}`);
              return on(action, table(isObject(detail) ? detail.TableName : undefined));
            });
          });
        case "BatchWriteItem":
        case "BatchGetItem":
          return Object.keys(isObject(input.RequestItems) ? input.RequestItems : {}).map((name) =>
            on(operation, table(name)),
          );
        case "Query":
        case "Scan":
          return [
            on(
              operation,
              input.IndexName === undefined
                ? table(input.TableName)
                : `${table(input.TableName)}/index/${String(input.IndexName)}`,
            ),
          ];
        default:
          return [on(operation, input.TableName === undefined ? "*" : table(input.TableName))];
      }
    }
    case "AmazonSQS": {
      const action = `sqs:${SQS_BATCH_ACTIONS[operation] ?? operation}`;
      const queue =
        typeof input.QueueUrl === "string"
          ? (arns.queueArns.get(input.QueueUrl) ??
            arns.queueArns.get(input.QueueUrl.slice(input.QueueUrl.lastIndexOf("/") + 1)) ??
            `unknown:queue/${input.QueueUrl}`)
          : typeof input.QueueName === "string"
            ? (arns.queueArns.get(input.QueueName) ?? `unknown:queue/${input.QueueName}`)
            : "*";
      return [{ action, resource: queue }];
    }
    case "DynamoDBStreams_20120810": {
      const stream = (value: unknown) =>
        arns.streamArns.get(String(value)) ?? `unknown:stream/${String(value)}`;
      const action = `dynamodb:${operation}`;
      switch (operation) {
        case "ListStreams":
          return [{ action, resource: "*" }];
        case "GetRecords":
          return [{ action, resource: stream(String(input.ShardIterator).split("|")[0]) }];
        default:
          return [{ action, resource: stream(input.StreamArn) }];
      }
    }
    case "AWSEvents": {
      if (operation !== "PutEvents") return [{ action: `events:${operation}`, resource: "*" }];
      const entries = Array.isArray(input.Entries) ? input.Entries : [];
      return entries.map((entry: unknown) => {
        const bus =
          isObject(entry) && typeof entry.EventBusName === "string" ? entry.EventBusName : "default";
        return { action: "events:PutEvents", resource: arns.busArns.get(bus) ?? `unknown:event-bus/${bus}` };
      });
    }
    default:
      return [{ action: `unknown:${target}`, resource: "*" }];
  }
}

const TRANSACT_ITEM_ACTIONS: Readonly<Record<string, string>> = {
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  ConditionCheck: "ConditionCheckItem",
  Get: "GetItem",
};

const SQS_BATCH_ACTIONS: Readonly<Record<string, string>> = {
  SendMessageBatch: "SendMessage",
  DeleteMessageBatch: "DeleteMessage",
  ChangeMessageVisibilityBatch: "ChangeMessageVisibility",
};

export interface RecordingProxy {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of one emulator, for one caller: forwards every request unchanged and
 * records, from `X-Amz-Target` and the JSON body, the operation and the IAM authorizations it needs.
 * A request without `X-Amz-Target` (a protocol the recorder cannot read) is recorded as `unknown`,
 * which no policy allows, rather than passed silently.
 *
 * @example
 * const proxy = await startRecordingProxy({ caller: "sweeper", upstream: dynamoEndpoint, arns, record });
 * env.AWS_ENDPOINT_URL_DYNAMODB = proxy.url;
 */
export async function startRecordingProxy(options: {
  caller: string;
  upstream: string;
  arns: ResourceArns;
  record: (call: RecordedCall) => void;
}): Promise<RecordingProxy> {
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    void readBody(req).then(
      (body) => {
        const target = String(req.headers["x-amz-target"] ?? "unknown.unknown");
        // Recorded when sent, as IAM evaluates it, whether or not the caller waits for the answer.
        const call: RecordedCall = {
          caller: options.caller,
          target,
          authorizations: authorizationsOf(target, parseJson(body), options.arns),
          status: 0,
        };
        options.record(call);
        const forward = request(
          {
            protocol: upstream.protocol,
            hostname: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
            agent,
          },
          (upstreamResponse) => {
            call.status = upstreamResponse.statusCode ?? 0;
            if (call.status >= 400) {
              // Read alongside the pipe: the caller gets the same bytes, unchanged.
              const chunks: Buffer[] = [];
              upstreamResponse.on("data", (chunk: Buffer) => chunks.push(chunk));
              upstreamResponse.on("end", () => {
                call.error = errorOf(Buffer.concat(chunks));
              });
            }
            res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
            upstreamResponse.pipe(res);
          },
        );
        // A caller that gives up (an aborted long poll) must not leave the upstream request hanging.
        res.on("close", () => {
          if (!res.writableFinished) forward.destroy();
        });
        forward.on("error", () => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
        forward.end(body);
      },
      () => res.destroy(),
    );
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** The error an awsJson answer carries: `{ "__type": "<namespace>#<Name>", CancellationReasons? }`. */
function errorOf(body: Buffer): RecordedError {
  const parsed = parseJson(body);
  const raw = isObject(parsed) ? (parsed.__type ?? parsed.code ?? parsed.Code) : undefined;
  const type = typeof raw === "string" ? raw.slice(raw.lastIndexOf("#") + 1) : "unknown";
  const reasons = isObject(parsed) ? parsed.CancellationReasons : undefined;
  return Array.isArray(reasons)
    ? {
        type,
        cancellationReasons: reasons.map((reason: unknown) =>
          isObject(reason) && typeof reason.Code === "string" ? reason.Code : "unknown",
        ),
      }
    : { type };
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}
