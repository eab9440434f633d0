import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoAgentRegistry } from "#shared/adapters/aws/dynamo-agent-registry";
import { EventBridgePublisher } from "#shared/adapters/aws/eventbridge-bus";
import { MessagingService } from "#shared/core/agents/messaging-service";
import type { AgentMessage } from "#shared/domain/message";
import { createTestTable, localDynamoClient } from "#test/support/aws";
import {
  type EventBridgeStandIn,
  eventBusArns,
  startEventBridgeStandIn,
} from "#test/support/eventbridge-stand-in";
import { describeMessagingContract, type MessagingParts } from "./messaging.contract.ts";

// Messaging as deployed on AWS: MessagingService publishes through EventBridgePublisher (the real SDK
// client, the real PutEvents wire format) to EventBridge, whose rules — the patterns MessagingService
// builds — deliver; recipients are resolved against DynamoAgentRegistry on DynamoDB Local. Nothing
// emulates EventBridge, so the stand-in answers PutEvents and runs the rules with our matcher.

const EVENT_BUS = "agentry-messaging";
const dynamodb = localDynamoClient();

interface EventBridgeMessaging extends MessagingParts {
  readonly registry: DynamoAgentRegistry;
  readonly standIn: EventBridgeStandIn;
  readonly client: EventBridgeClient;
}

async function startEventBridgeMessaging(): Promise<EventBridgeMessaging> {
  const standIn = await startEventBridgeStandIn({
    busArns: eventBusArns([EVENT_BUS]),
    subscriptionBus: EVENT_BUS,
  });
  const client = new EventBridgeClient({
    endpoint: standIn.url,
    region: standIn.region,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  return {
    publisher: new EventBridgePublisher({ client, eventBusName: EVENT_BUS }),
    subscriber: standIn,
    registry: new DynamoAgentRegistry({ client: dynamodb, tableName: await createTestTable(dynamodb) }),
    standIn,
    client,
  };
}

async function stopEventBridgeMessaging(system: EventBridgeMessaging): Promise<void> {
  await system.standIn.idle();
  system.client.destroy();
  await system.standIn.close();
}

describeMessagingContract("EventBridgePublisher → EventBridge rules, DynamoAgentRegistry", {
  create: startEventBridgeMessaging,
  settle: (system) => system.standIn.idle(),
  destroy: stopEventBridgeMessaging,
});

describe("EventBridgePublisher → EventBridge rules (PutEvents limits)", () => {
  let system: EventBridgeMessaging;

  beforeAll(async () => {
    system = await startEventBridgeMessaging();
  });

  afterAll(async () => {
    if (system) await stopEventBridgeMessaging(system);
  });

  it("refuses a PutEvents request of more than 10 entries, as EventBridge does (the limit the publisher must respect)", async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({
      EventBusName: EVENT_BUS,
      Source: "agentry",
      DetailType: "Agent Message",
      Detail: JSON.stringify({ i }),
    }));

    await expect(system.client.send(new PutEventsCommand({ Entries: entries }))).rejects.toMatchObject({
      name: "ValidationException",
    });
    expect(system.standIn.accepted).toEqual([]);
  });

  it("delivers a broadcast to 25 recipients, sent in PutEvents requests of at most 10 entries", async () => {
    const messaging = new MessagingService({
      registry: system.registry,
      publisher: system.publisher,
      subscriber: system.subscriber,
    });
    const now = new Date().toISOString();
    const recipients = Array.from({ length: 25 }, (_, i) => `crowd-${String(i).padStart(2, "0")}`);
    for (const agentId of [...recipients, "announcer"]) {
      await system.registry.register({
        agentId,
        agentType: "crowd",
        status: "available",
        capabilities: { supportedTools: [], supportedIntents: [], maxConcurrentTasks: 1, metadata: {} },
        lastHeartbeat: now,
        currentTaskCount: 0,
        registeredAt: now,
      });
    }
    const received = new Map<string, AgentMessage[]>(recipients.map((id) => [id, []]));
    for (const agentId of recipients) {
      messaging.subscribe(agentId, (message) => {
        received.get(agentId)?.push(message);
      });
    }
    const requestsBefore = system.standIn.requests.length;

    const sent = await messaging.broadcast({
      fromAgentId: "announcer",
      messageType: "announcement",
      payload: { text: "hello, crowd" },
      audience: { agentType: "crowd" },
    });
    await system.standIn.idle();

    const requests = system.standIn.requests.slice(requestsBefore);
    expect([...sent.recipients].sort()).toEqual(recipients);
    expect(requests.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(requests.map((r) => r.entries.length).sort((a, b) => a - b)).toEqual([5, 10, 10]);
    expect(requests.every((r) => r.failedEntryCount === 0)).toBe(true);
    // Every entry as the publisher put it on the wire: one per recipient, each addressed to it alone.
    const addressed = requests
      .flatMap((r) => r.entries)
      .map((entry) => {
        expect(entry).toMatchObject({
          EventBusName: EVENT_BUS,
          Source: "agentry",
          DetailType: "Agent Message",
        });
        return (JSON.parse(String(entry.Detail)) as AgentMessage).toAgentId;
      });
    expect(addressed.sort()).toEqual(recipients);
    expect([...received].map(([id, messages]) => [id, messages.map((m) => m.messageId)])).toEqual(
      recipients.map((id) => [id, [sent.message.messageId]]),
    );
    for (const [agentId, [message]] of received) expect(message?.toAgentId).toBe(agentId);
    // Delivered in EventBridge's envelope: its own event id, time in whole seconds, the parsed detail.
    const delivery = system.standIn.deliveries.find((d) => d.event.id === system.standIn.accepted.at(-1)?.id);
    expect(delivery).toMatchObject({ outcome: "succeeded", attempts: 1 });
    expect(delivery?.event).toMatchObject({
      version: "0",
      source: "agentry",
      "detail-type": "Agent Message",
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      resources: [],
      detail: { messageId: sent.message.messageId, messageType: "announcement" },
    });
  });
});
