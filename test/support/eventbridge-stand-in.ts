import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { matchesEventPattern, validateEventPattern } from "#shared/adapters/memory/event-pattern";
import type { BusEvent } from "#shared/domain/events";
import type { EventHandler, EventPattern, EventSubscriber } from "#shared/ports/event-bus";

/** An event as EventBridge hands it to a target. */
export interface EventBridgeEvent {
  readonly version: "0";
  readonly id: string;
  readonly "detail-type": string;
  readonly source: string;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: unknown;
}

/** One AWS::Events::Rule with a function target, resolved. */
export interface FunctionRule {
  readonly ruleId: string;
  /** The bus ARN the rule is on. */
  readonly busArn: string;
  readonly pattern: EventPattern;
  /** Logical ids of the functions it targets. */
  readonly targets: readonly string[];
}

export interface RuleDelivery {
  readonly ruleId: string;
  readonly target: string;
  readonly event: EventBridgeEvent;
  /** `skipped` when the target has no handler to run (a placeholder bundle). */
  outcome: "pending" | "succeeded" | "failed" | "skipped";
  error?: string;
  /** Times the target was run (a subscription's failed runs are retried). */
  attempts: number;
}

/** One PutEvents call as the stand-in received it. */
export interface PutEventsRecord {
  /** The request's entries, as sent on the wire (awsJson1_1: `Time` in epoch seconds). */
  readonly entries: readonly Readonly<Record<string, unknown>>[];
  /** The HTTP status answered: 400 for a request EventBridge refuses as a whole. */
  readonly status: number;
  /** Entries answered with an error code (the request succeeded, those entries did not). */
  readonly failedEntryCount: number;
}

export interface EventBridgeStandIn extends EventSubscriber {
  readonly url: string;
  readonly region: string;
  readonly account: string;
  /** Every event accepted by PutEvents, in order. */
  readonly accepted: readonly EventBridgeEvent[];
  /** Every PutEvents request, in order of arrival, refused ones included. */
  readonly requests: readonly PutEventsRecord[];
  readonly deliveries: readonly RuleDelivery[];
  /**
   * Puts a rule with `pattern` on the subscription bus (validated as PutRule would) whose target is
   * `handler`: each matching event is delivered asynchronously, after the PutEvents answer, in
   * EventBridge's envelope with the detail parsed from the entry's `Detail` JSON. A handler that throws
   * is run again with backoff, as EventBridge retries a failed target. Returns the rule's removal.
   */
  subscribe(pattern: EventPattern, handler: EventHandler): () => void;
  /** Resolves once every delivery started so far (and any it caused) has finished. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface EventBridgeStandInOptions {
  /** @default "us-east-1" */
  readonly region?: string;
  /** @default "000000000000" */
  readonly account?: string;
  /** Bus name or ARN → bus ARN, for the buses that exist. @default the account's default bus only */
  readonly busArns?: ReadonlyMap<string, string>;
  /** The bus `subscribe` puts its rules on: a name or ARN of `busArns`. @default "default" */
  readonly subscriptionBus?: string;
  /** Rules from a template, with function targets run by `invoke`. @default none */
  readonly rules?: readonly FunctionRule[];
  /** Runs a target function of `rules`; undefined when the target has no real handler. */
  readonly invoke?: (target: string, event: EventBridgeEvent) => Promise<unknown> | undefined;
  /** Runs of a subscription's handler before its delivery counts as failed. @default 3 */
  readonly maxDeliveryAttempts?: number;
}

/** PutEvents takes 1 to 10 entries; EventBridge refuses any other request as a whole. */
const MAX_ENTRIES = 10;

/**
 * Name and ARN → ARN for each named bus and the account's default bus, the `busArns` of a stand-in.
 *
 * @example
 * eventBusArns(["agentry"]); // "agentry" and "arn:aws:events:us-east-1:000000000000:event-bus/agentry" → that ARN, "default" → …/default
 */
export function eventBusArns(
  names: readonly string[],
  { region = "us-east-1", account = "000000000000" }: { region?: string; account?: string } = {},
): Map<string, string> {
  const arns = new Map<string, string>();
  for (const name of [...names, "default"]) {
    const arn = `arn:aws:events:${region}:${account}:event-bus/${name}`;
    arns.set(name, arn);
    arns.set(arn, arn);
  }
  return arns;
}

/**
 * A tiny EventBridge: answers `AWSEvents.PutEvents` (awsJson1_1) with
 * `{ FailedEntryCount, Entries: [{ EventId }] }`, builds each entry into the event EventBridge would
 * deliver, matches it against every rule on its bus with the platform's own EventBridge matcher, and
 * runs each matching target asynchronously: a template's function targets through `invoke` (as
 * EventBridge invokes Lambda), and the handlers of `subscribe`. An entry for a bus that does not exist,
 * or whose Detail is not a JSON object, fails as on AWS; a request with no entries or more than 10 is
 * refused with a ValidationException. Other operations answer 400.
 *
 * @example
 * const bus = await startEventBridgeStandIn({ busArns: eventBusArns(["agentry"]), subscriptionBus: "agentry" });
 * bus.subscribe({ source: ["agentry"] }, (event) => console.log(event.detail));
 * const client = new EventBridgeClient({ endpoint: bus.url, region: bus.region, credentials });
 */
export async function startEventBridgeStandIn(
  options: EventBridgeStandInOptions = {},
): Promise<EventBridgeStandIn> {
  const region = options.region ?? "us-east-1";
  const account = options.account ?? "000000000000";
  const busArns = options.busArns ?? eventBusArns([], { region, account });
  const maxDeliveryAttempts = Math.max(1, options.maxDeliveryAttempts ?? 3);
  const rules = options.rules ?? [];
  const accepted: EventBridgeEvent[] = [];
  const requests: PutEventsRecord[] = [];
  const deliveries: RuleDelivery[] = [];
  const subscriptions = new Set<{
    ruleId: string;
    busArn: string;
    pattern: EventPattern;
    handler: EventHandler;
  }>();
  const inFlight = new Set<Promise<void>>();
  const sockets = new Set<Socket>();
  let subscriptionCount = 0;

  const track = (delivery: RuleDelivery, running: Promise<unknown>) => {
    const settled = running.then(
      () => {
        delivery.outcome = "succeeded";
      },
      (error: unknown) => {
        delivery.outcome = "failed";
        delivery.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
      },
    );
    inFlight.add(settled);
    void settled.finally(() => inFlight.delete(settled));
  };

  const runSubscription = async (delivery: RuleDelivery, handler: EventHandler): Promise<void> => {
    // After the PutEvents answer, never inside it: EventBridge delivers asynchronously.
    await new Promise((resolve) => setImmediate(resolve));
    for (;;) {
      delivery.attempts++;
      try {
        // Each target gets its own copy, as separate invocations would. The detail was checked to be
        // an object at PutEvents, so the envelope is a BusEvent.
        await handler(structuredClone(delivery.event) as BusEvent);
        return;
      } catch (error) {
        if (delivery.attempts >= maxDeliveryAttempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** delivery.attempts));
      }
    }
  };

  const route = (busArn: string, event: EventBridgeEvent) => {
    for (const rule of rules) {
      if (rule.busArn !== busArn || !matchesEventPattern(rule.pattern, event)) continue;
      for (const target of rule.targets) {
        const delivery: RuleDelivery = {
          ruleId: rule.ruleId,
          target,
          event,
          outcome: "pending",
          attempts: 0,
        };
        deliveries.push(delivery);
        if (options.invoke === undefined) throw new Error(`rule ${rule.ruleId} has a target but no invoke`);
        delivery.attempts++;
        const running = options.invoke(target, event);
        if (running === undefined) {
          delivery.outcome = "skipped";
          continue;
        }
        track(delivery, running);
      }
    }
    for (const subscription of subscriptions) {
      if (subscription.busArn !== busArn || !matchesEventPattern(subscription.pattern, event)) continue;
      const delivery: RuleDelivery = {
        ruleId: subscription.ruleId,
        target: subscription.ruleId,
        event,
        outcome: "pending",
        attempts: 0,
      };
      deliveries.push(delivery);
      track(delivery, runSubscription(delivery, subscription.handler));
    }
  };

  const putEvents = (input: Record<string, unknown>): [number, unknown] => {
    const entries = (Array.isArray(input.Entries) ? input.Entries : []).map((raw: unknown) =>
      isObject(raw) ? raw : {},
    );
    if (entries.length < 1 || entries.length > MAX_ENTRIES) {
      requests.push({ entries, status: 400, failedEntryCount: 0 });
      return [
        400,
        {
          __type: "ValidationException",
          message: `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to ${MAX_ENTRIES} and greater than or equal to 1 (got ${entries.length})`,
        },
      ];
    }
    let failed = 0;
    const results = entries.map((entry) => {
      const busArn = busArns.get(typeof entry.EventBusName === "string" ? entry.EventBusName : "default");
      if (busArn === undefined) {
        failed++;
        return {
          ErrorCode: "ResourceNotFoundException",
          ErrorMessage: `Event bus ${String(entry.EventBusName)} does not exist.`,
        };
      }
      let detail: unknown;
      try {
        detail = JSON.parse(String(entry.Detail ?? "{}"));
      } catch {
        detail = undefined;
      }
      // EventBridge takes only a JSON object as Detail.
      if (!isObject(detail)) {
        failed++;
        return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." };
      }
      const event: EventBridgeEvent = {
        version: "0",
        id: randomUUID(),
        "detail-type": String(entry.DetailType),
        source: String(entry.Source),
        account,
        // awsJson1_1 sends timestamps as epoch seconds; EventBridge keeps whole seconds.
        time: new Date(typeof entry.Time === "number" ? entry.Time * 1000 : Date.now())
          .toISOString()
          .replace(/\.\d{3}Z$/, "Z"),
        region,
        resources: Array.isArray(entry.Resources) ? entry.Resources.map(String) : [],
        detail,
      };
      accepted.push(event);
      route(busArn, event);
      return { EventId: event.id };
    });
    requests.push({ entries, status: 200, failedEntryCount: failed });
    return [200, { FailedEntryCount: failed, Entries: results }];
  };

  const server: Server = createServer((req, res) => {
    void readJson(req).then((input) => {
      const target = String(req.headers["x-amz-target"] ?? "");
      const [status, body] =
        target === "AWSEvents.PutEvents"
          ? putEvents(input)
          : [
              400,
              {
                __type: "UnknownOperationException",
                message: `the stand-in only serves PutEvents, got ${target}`,
              },
            ];
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify(body));
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    region,
    account,
    accepted,
    requests,
    deliveries,
    subscribe(pattern, handler) {
      validateEventPattern(pattern);
      const bus = options.subscriptionBus ?? "default";
      const busArn = busArns.get(bus);
      if (busArn === undefined) throw new Error(`the stand-in has no event bus ${bus}`);
      subscriptionCount++;
      const subscription = { ruleId: `subscription-${subscriptionCount}`, busArn, pattern, handler };
      subscriptions.add(subscription);
      // Like DeleteRule: later events no longer match; deliveries already started finish.
      return () => subscriptions.delete(subscription);
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async close() {
      subscriptions.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        resolve(isObject(parsed) ? parsed : {});
      } catch {
        resolve({});
      }
    });
    req.on("error", () => resolve({}));
  });
}
