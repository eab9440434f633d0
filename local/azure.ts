import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { ServiceBusEventBus } from "#shared/adapters/azure/service-bus-event-bus";
import { ServiceBusTaskQueue } from "#shared/adapters/azure/service-bus-task-queue";
import type { PlatformConfig } from "#shared/config/platform";
import { agentInboxQueue } from "#shared/core/routing";
import { type ServiceBusEntityPlan, serviceBusEntities } from "./servicebus/entities.ts";
import { type RunningServiceBusPeer, startServiceBusPeer } from "./servicebus/peer.ts";

const NODE_SUBSCRIPTION = "local";

export interface AzureInfrastructure {
  /** The local peer, when no AZURE_SERVICE_BUS_CONNECTION_STRING named a real namespace. */
  readonly peer: RunningServiceBusPeer | undefined;
  readonly plan: ServiceBusEntityPlan;
  readonly client: ServiceBusClient;
  readonly queue: ServiceBusTaskQueue;
  /** Agent messaging on the topic, through this node's subscription. */
  readonly messagingBus: ServiceBusEventBus;
  /** Creates the inbox queue of a registered poller (tasks routed to that agent only). */
  addAgentInbox(agentId: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The Service Bus side of `npm start -- --azure`: the local peer with the entities the platform config
 * needs (or the namespace of AZURE_SERVICE_BUS_CONNECTION_STRING, provisioned by
 * `npm run azure:provision`), and the Service Bus task queue and message bus on the real SDK.
 *
 * @example
 * const azure = await startAzureInfrastructure(config);
 * await azure.stop();
 */
export async function startAzureInfrastructure(
  config: PlatformConfig,
  options: { connectionString?: string | undefined } = {},
): Promise<AzureInfrastructure> {
  const plan = serviceBusEntities(config, { nodes: [NODE_SUBSCRIPTION] });
  const peer =
    options.connectionString === undefined
      ? await startServiceBusPeer({
          queues: plan.queues,
          topics: [{ ...plan.topic, subscriptions: plan.subscriptions }],
        })
      : undefined;
  const connectionString = options.connectionString ?? (peer as RunningServiceBusPeer).connectionString;
  const client = new ServiceBusClient(connectionString);
  const queue = new ServiceBusTaskQueue({
    client,
    queues: Object.fromEntries(plan.queues.map((q) => [q.logical, q.name])),
    maxDeliveryCount: config.maxReceiveCount,
    // The shortest lock of the queues: renewing a longer one early is harmless.
    lockDurationSeconds: Math.min(...plan.queues.map((q) => q.lockDurationSeconds)),
  });
  const messagingBus = new ServiceBusEventBus({
    client,
    topic: plan.topic.name,
    subscription: NODE_SUBSCRIPTION,
  });
  return {
    peer,
    plan,
    client,
    queue,
    messagingBus,
    async addAgentInbox(agentId) {
      const logical = agentInboxQueue(agentId);
      const name = `agentry-${logical}`.slice(0, 260);
      const settings = { maxDeliveryCount: config.maxReceiveCount, lockDurationSeconds: 60 };
      if (peer) peer.createQueue({ name, ...settings });
      else {
        // A real namespace: inboxes come and go with agents, so this node needs the Manage right.
        const admin = new ServiceBusAdministrationClient(connectionString);
        if (!(await admin.queueExists(name))) {
          await admin.createQueue(name, {
            maxDeliveryCount: settings.maxDeliveryCount,
            lockDuration: `PT${settings.lockDurationSeconds}S`,
            requiresDuplicateDetection: true,
            autoDeleteOnIdle: "PT1H",
          });
        }
      }
      queue.addQueue(logical, name);
    },
    async stop() {
      await messagingBus.close();
      await queue.close();
      await client.close();
      await peer?.stop();
    },
  };
}
