import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { matchesEventPattern } from "#shared/adapters/memory/event-pattern";
import type { EventPattern } from "#shared/ports/event-bus";
import { isObject } from "./cfn.ts";

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
}

export interface EventBridgeStandIn {
  readonly url: string;
  /** Every event accepted by PutEvents, in order. */
  readonly accepted: readonly EventBridgeEvent[];
  readonly deliveries: readonly RuleDelivery[];
  /** Resolves once every delivery started so far has finished. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A tiny EventBridge for the local run: answers `AWSEvents.PutEvents` (awsJson1_1) with
 * `{ FailedEntryCount, Entries: [{ EventId }] }`, builds each entry into the event EventBridge would
 * deliver, matches it against every rule on its bus with the platform's own EventBridge matcher, and
 * invokes each matching target function asynchronously (as EventBridge invokes Lambda). An entry for
 * a bus the template does not declare fails, as on AWS. Other operations answer 400.
 *
 * @example
 * const bus = await startEventBridgeStandIn({ region, account, busArns, rules, invoke });
 */
export async function startEventBridgeStandIn(options: {
  region: string;
  account: string;
  /** Bus name or ARN → bus ARN, for the buses that exist. */
  busArns: ReadonlyMap<string, string>;
  rules: readonly FunctionRule[];
  /** Runs a target function; undefined when the target has no real handler. */
  invoke: (target: string, event: EventBridgeEvent) => Promise<unknown> | undefined;
}): Promise<EventBridgeStandIn> {
  const accepted: EventBridgeEvent[] = [];
  const deliveries: RuleDelivery[] = [];
  const inFlight = new Set<Promise<void>>();
  const sockets = new Set<Socket>();

  const route = (busArn: string, event: EventBridgeEvent) => {
    for (const rule of options.rules) {
      if (rule.busArn !== busArn || !matchesEventPattern(rule.pattern, event)) continue;
      for (const target of rule.targets) {
        const delivery: RuleDelivery = { ruleId: rule.ruleId, target, event, outcome: "pending" };
        deliveries.push(delivery);
        const running = options.invoke(target, event);
        if (running === undefined) {
          delivery.outcome = "skipped";
          continue;
        }
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
      }
    }
  };

  const putEvents = (input: Record<string, unknown>) => {
    const entries = Array.isArray(input.Entries) ? input.Entries : [];
    let failed = 0;
    const results = entries.map((raw: unknown) => {
      const entry = isObject(raw) ? raw : {};
      const busArn = options.busArns.get(
        typeof entry.EventBusName === "string" ? entry.EventBusName : "default",
      );
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
        failed++;
        return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." };
      }
      const event: EventBridgeEvent = {
        version: "0",
        id: randomUUID(),
        "detail-type": String(entry.DetailType),
        source: String(entry.Source),
        account: options.account,
        // awsJson1_1 sends timestamps as epoch seconds.
        time: new Date(typeof entry.Time === "number" ? entry.Time * 1000 : Date.now())
          .toISOString()
          .replace(/\.\d{3}Z$/, "Z"),
        region: options.region,
        resources: Array.isArray(entry.Resources) ? entry.Resources.map(String) : [],
        detail,
      };
      accepted.push(event);
      route(busArn, event);
      return { EventId: event.id };
    });
    return { FailedEntryCount: failed, Entries: results };
  };

  const server: Server = createServer((req, res) => {
    void readJson(req).then((input) => {
      const target = String(req.headers["x-amz-target"] ?? "");
      const [status, body] =
        target === "AWSEvents.PutEvents"
          ? [200, putEvents(input)]
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
    accepted,
    deliveries,
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
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
