import { randomUUID } from "node:crypto";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { inject } from "vitest";
import type { EntityState, QueueSpec, TopicSpec } from "#local/servicebus/peer";

/**
 * Helpers for the Service Bus tests: the namespace they run on — the local AMQP peer started by
 * global-setup.ts, or a real namespace when AZURE_SERVICE_BUS_CONNECTION_STRING is set (never in CI;
 * see docs/azure.md) — fresh entities per test, and readers that look at them around the adapters.
 */

/** Set to run the Service Bus suites against a real namespace instead of the local peer. */
export const REAL_NAMESPACE = process.env.AZURE_SERVICE_BUS_CONNECTION_STRING;

export function serviceBusConnectionString(): string {
  return REAL_NAMESPACE ?? inject("serviceBusConnectionString");
}

export function serviceBusClient(): ServiceBusClient {
  return new ServiceBusClient(serviceBusConnectionString());
}

/** A unique entity name (letters, digits, hyphens). */
export function uniqueEntityName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 13)}`;
}

/** Creates a queue with the settings Agentry provisions (docs/azure.md), on the peer or the namespace. */
export async function createTestQueue(spec: QueueSpec): Promise<void> {
  if (REAL_NAMESPACE) {
    await admin().createQueue(spec.name, {
      lockDuration: `PT${spec.lockDurationSeconds ?? 60}S`,
      maxDeliveryCount: spec.maxDeliveryCount ?? 10,
      requiresDuplicateDetection: true,
      duplicateDetectionHistoryTimeWindow: `PT${spec.duplicateDetectionWindowSeconds ?? 600}S`,
      deadLetteringOnMessageExpiration: spec.deadLetteringOnMessageExpiration ?? false,
    });
    return;
  }
  await adminRequest("PUT", `/queues/${encodeURIComponent(spec.name)}`, spec);
}

/** Creates a topic and its subscriptions (no default rule: rules come from the adapter or the spec). */
export async function createTestTopic(spec: TopicSpec): Promise<void> {
  if (REAL_NAMESPACE) {
    const client = admin();
    await client.createTopic(spec.name, {
      requiresDuplicateDetection: true,
      duplicateDetectionHistoryTimeWindow: `PT${spec.duplicateDetectionWindowSeconds ?? 600}S`,
    });
    for (const sub of spec.subscriptions ?? []) {
      await client.createSubscription(spec.name, sub.name, {
        lockDuration: `PT${sub.lockDurationSeconds ?? 60}S`,
        maxDeliveryCount: sub.maxDeliveryCount ?? 10,
        deadLetteringOnMessageExpiration: sub.deadLetteringOnMessageExpiration ?? false,
      });
      await client.deleteRule(spec.name, sub.name, "$Default");
      for (const rule of sub.rules ?? []) {
        const filter =
          "sql" in rule.filter
            ? { sqlExpression: rule.filter.sql }
            : "correlation" in rule.filter
              ? rule.filter.correlation
              : { sqlExpression: "1=1" };
        await client.createRule(spec.name, sub.name, rule.name, filter);
      }
    }
    return;
  }
  await adminRequest("PUT", `/topics/${encodeURIComponent(spec.name)}`, spec);
}

/**
 * What an entity (a queue, or `topic/Subscriptions/name`) holds. On a real namespace the counts come
 * from the runtime properties (which do not tell locked from active messages: both count as active)
 * and the dead letters from peeking the dead-letter sub-queue.
 */
export async function inspectEntity(path: string): Promise<EntityState> {
  if (!REAL_NAMESPACE) return (await adminRequest("GET", `/entities/${path}`)) as EntityState;
  const client = admin();
  const [topic, , subscription] = path.split("/");
  const properties =
    subscription !== undefined && topic !== undefined
      ? await client.getSubscriptionRuntimeProperties(topic, subscription)
      : await client.getQueueRuntimeProperties(path);
  const sb = new ServiceBusClient(REAL_NAMESPACE);
  try {
    const receiver =
      subscription !== undefined && topic !== undefined
        ? sb.createReceiver(topic, subscription, { subQueueType: "deadLetter" })
        : sb.createReceiver(path, { subQueueType: "deadLetter" });
    const dead = await receiver.peekMessages(100);
    return {
      active: properties.activeMessageCount,
      locked: 0,
      scheduled: "scheduledMessageCount" in properties ? Number(properties.scheduledMessageCount) : 0,
      deferred: 0,
      expired: 0,
      deadLettered: dead.map((m) => ({
        body: typeof m.body === "string" ? m.body : JSON.stringify(m.body),
        ...(m.deadLetterReason !== undefined ? { reason: m.deadLetterReason } : {}),
        ...(m.deadLetterErrorDescription !== undefined ? { description: m.deadLetterErrorDescription } : {}),
        applicationProperties: m.applicationProperties ?? {},
      })),
    };
  } finally {
    await sb.close();
  }
}

function admin(): ServiceBusAdministrationClient {
  return new ServiceBusAdministrationClient(REAL_NAMESPACE ?? "");
}

async function adminRequest(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${inject("serviceBusAdminUrl")}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  const json: unknown = await response.json();
  if (!response.ok)
    throw new Error(`peer admin ${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}
