import { AsyncLocalStorage } from "node:async_hooks";
import type { MetadataBearer, MiddlewareStack } from "@smithy/types";

/**
 * The time one invocation spent waiting on AWS requests: the union of the intervals with a request in
 * flight (parallel requests overlap), and the requests themselves with their latency. Lets the cost
 * bench replace an emulator's latency by AWS's.
 */
export class IoTracker {
  ioMs = 0;
  readonly requests: { operation: string; ms: number }[] = [];
  private inFlight = 0;
  private busySince = 0;

  begin(): number {
    const now = performance.now();
    if (this.inFlight++ === 0) this.busySince = now;
    return now;
  }

  end(operation: string, startedAt: number): void {
    const now = performance.now();
    this.requests.push({ operation, ms: now - startedAt });
    if (--this.inFlight === 0) this.ioMs += now - this.busySince;
  }
}

/** The tracker of the invocation the current async context belongs to (set by the local runtime's meters). */
export const currentIo = new AsyncLocalStorage<IoTracker>();

export interface RequestCountSnapshot {
  /** Every request sent, each retry included (AWS bills each one). */
  readonly total: number;
  /** Service name → requests, e.g. `{ DynamoDB: 12, SQS: 3 }`. */
  readonly byService: Readonly<Record<string, number>>;
  /** `Service.Operation` → requests, e.g. `{ "DynamoDB.TransactWriteItems": 4 }`. */
  readonly byOperation: Readonly<Record<string, number>>;
}

/**
 * Counts AWS requests by service and operation, for the benchmark's cost model and for tests that
 * check how many calls a use case makes.
 *
 * @example
 * const counter = new RequestCounter();
 * attachRequestCounter(dynamoClient, counter);
 * await store.transition(request);
 * counter.snapshot().byOperation["DynamoDB.TransactWriteItems"]; // 1
 */
export class RequestCounter {
  private readonly counts = new Map<string, number>();

  record(service: string, operation: string): void {
    const key = `${service}.${operation}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  snapshot(): RequestCountSnapshot {
    const byOperation: Record<string, number> = {};
    const byService: Record<string, number> = {};
    let total = 0;
    for (const [key, count] of [...this.counts].sort(([a], [b]) => (a < b ? -1 : 1))) {
      byOperation[key] = count;
      const service = key.slice(0, key.indexOf("."));
      byService[service] = (byService[service] ?? 0) + count;
      total += count;
    }
    return { total, byService, byOperation };
  }

  reset(): void {
    this.counts.clear();
  }
}

const MIDDLEWARE_NAME = "agentryRequestCounter";

/**
 * Adds a middleware that records every attempt of every command sent through `client`. It sits in the
 * finalizeRequest step after the SDK's retry middleware, so each retry is one more request.
 *
 * @example
 * attachRequestCounter(new SQSClient({}), counter);
 */
export function attachRequestCounter<Input extends object, Output extends MetadataBearer>(
  client: { readonly middlewareStack: MiddlewareStack<Input, Output> },
  counter: RequestCounter,
): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const service = (context.clientName ?? "Unknown").replace(/Client$/, "");
      const operation = (context.commandName ?? "Unknown").replace(/Command$/, "");
      let empty = false;
      const io = currentIo.getStore();
      const startedAt = io?.begin() ?? 0;
      try {
        const result = await next(args);
        const messages = (result.output as { Messages?: unknown[] }).Messages;
        empty = operation === "ReceiveMessage" && (messages?.length ?? 0) === 0;
        return result;
      } finally {
        // An empty long poll is billed too, but its count depends on idle time, not on tasks.
        counter.record(service, empty ? "ReceiveMessage(empty)" : operation);
        io?.end(`${service}.${operation}`, startedAt);
      }
    },
    { step: "finalizeRequest", priority: "low", name: MIDDLEWARE_NAME, override: true },
  );
}

/** DynamoDB's item (data-plane) operations: the ones that accept `ReturnConsumedCapacity`. */
export const DYNAMODB_ITEM_OPERATIONS: ReadonlySet<string> = new Set([
  "GetItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "Query",
  "Scan",
  "BatchGetItem",
  "BatchWriteItem",
  "TransactWriteItems",
  "TransactGetItems",
]);

interface UnitsShape {
  readonly ReadCapacityUnits?: number;
  readonly WriteCapacityUnits?: number;
  readonly CapacityUnits?: number;
}

const READ_COMMANDS: ReadonlySet<string> = new Set([
  "GetItem",
  "Query",
  "Scan",
  "BatchGetItem",
  "TransactGetItems",
]);

interface CapacityShape {
  readonly TableName?: string;
  readonly ReadCapacityUnits?: number;
  readonly WriteCapacityUnits?: number;
  readonly CapacityUnits?: number;
  readonly Table?: UnitsShape;
  readonly GlobalSecondaryIndexes?: Readonly<Record<string, UnitsShape>>;
}

export interface CapacityReading {
  /** `Operation` → request units, as AWS bills them. */
  readonly wruByOperation: Readonly<Record<string, number>>;
  readonly rruByOperation: Readonly<Record<string, number>>;
  /** `table` or `index:<name>` → request units, as AWS bills them. */
  readonly wruByTarget: Readonly<Record<string, number>>;
  readonly rruByTarget: Readonly<Record<string, number>>;
  /** Write units exactly as the endpoint reported them (DynamoDB Local doubles index writes in transactions). */
  readonly reportedWru: number;
}

/**
 * Sums DynamoDB's ConsumedCapacity (asked for with `ReturnConsumedCapacity: "INDEXES"`) by operation
 * and by table or index. AWS bills a transaction's writes twice on the base table and once per index
 * entry; DynamoDB Local reports the index writes doubled too, so index write units of a
 * TransactWriteItems are halved here to give AWS's figure.
 *
 * @example
 * const meter = new CapacityMeter();
 * attachCapacityMeter(dynamoClient, meter);
 * meter.reading().wruByTarget.table;
 */
export class CapacityMeter {
  private readonly wruOp = new Map<string, number>();
  private readonly rruOp = new Map<string, number>();
  private readonly wruTarget = new Map<string, number>();
  private readonly rruTarget = new Map<string, number>();
  private reported = 0;

  record(operation: string, capacity: CapacityShape): void {
    const reads = READ_COMMANDS.has(operation);
    const transactional = operation === "TransactWriteItems";
    const units = (shape: UnitsShape | undefined) =>
      (reads ? shape?.ReadCapacityUnits : shape?.WriteCapacityUnits) ?? shape?.CapacityUnits ?? 0;
    const byOperation = reads ? this.rruOp : this.wruOp;
    const byTarget = reads ? this.rruTarget : this.wruTarget;
    const add = (map: Map<string, number>, key: string, value: number) => {
      if (value) map.set(key, (map.get(key) ?? 0) + value);
    };
    if (!reads) this.reported += units(capacity);
    // Without a per-table breakdown, the total is all there is.
    let total = capacity.Table === undefined ? units(capacity) : units(capacity.Table);
    add(byTarget, "table", total);
    for (const [index, indexCapacity] of Object.entries(capacity.GlobalSecondaryIndexes ?? {})) {
      const indexUnits = units(indexCapacity) / (transactional ? 2 : 1);
      total += indexUnits;
      add(byTarget, `index:${index}`, indexUnits);
    }
    add(byOperation, operation, total);
  }

  reading(): CapacityReading {
    return {
      wruByOperation: Object.fromEntries(this.wruOp),
      rruByOperation: Object.fromEntries(this.rruOp),
      wruByTarget: Object.fromEntries(this.wruTarget),
      rruByTarget: Object.fromEntries(this.rruTarget),
      reportedWru: this.reported,
    };
  }

  reset(): void {
    for (const map of [this.wruOp, this.rruOp, this.wruTarget, this.rruTarget]) map.clear();
    this.reported = 0;
  }
}

/**
 * Makes every capacity-reporting command sent through `client` ask for `ReturnConsumedCapacity:
 * "INDEXES"` and records what comes back in `meter` (the cost bench's input).
 *
 * @example
 * attachCapacityMeter(new DynamoDBClient({}), meter);
 */
export function attachCapacityMeter<Input extends object, Output extends MetadataBearer>(
  client: { readonly middlewareStack: MiddlewareStack<Input, Output> },
  meter: CapacityMeter,
): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context.commandName ?? "").replace(/Command$/, "");
      if (!DYNAMODB_ITEM_OPERATIONS.has(operation)) return next(args);
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = "INDEXES";
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: CapacityShape | CapacityShape[] })
        .ConsumedCapacity;
      for (const capacity of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
        meter.record(operation, capacity);
      }
      return result;
    },
    { step: "initialize", name: "agentryCapacityMeter", override: true },
  );
}
