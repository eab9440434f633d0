import type { MetadataBearer, MiddlewareStack } from "@smithy/types";

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
      counter.record(service, operation);
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: MIDDLEWARE_NAME, override: true },
  );
}
