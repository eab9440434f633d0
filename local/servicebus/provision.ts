import { parseArgs } from "node:util";
import { ServiceBusAdministrationClient } from "@azure/service-bus";
import { loadPlatformConfig } from "#shared/config/platform";
import { type ServiceBusEntityPlan, serviceBusEntities } from "./entities.ts";

/**
 * `npm run azure:provision [-- --prefix agentry --nodes node-1,node-2 --dry-run]`: creates (or brings
 * up to date) the Service Bus entities the platform config needs, in the namespace named by
 * AZURE_SERVICE_BUS_CONNECTION_STRING, with ServiceBusAdministrationClient. The connection string needs
 * the Manage right; the nodes then run with Send/Listen only (docs/azure.md).
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prefix: { type: "string", default: "agentry" },
      nodes: { type: "string", default: "node-1" },
      "dry-run": { type: "boolean", default: false },
    },
  });
  const plan = serviceBusEntities(loadPlatformConfig(process.env), {
    prefix: values.prefix,
    nodes: values.nodes
      .split(",")
      .map((n) => n.trim())
      .filter(Boolean),
  });
  if (values["dry-run"]) {
    console.log(JSON.stringify(plan, null, 2));
    return;
  }
  const connectionString = process.env.AZURE_SERVICE_BUS_CONNECTION_STRING;
  if (!connectionString) {
    throw new Error(
      "AZURE_SERVICE_BUS_CONNECTION_STRING is not set: give the connection string of a policy with the Manage right " +
        "(or pass --dry-run to print the entities without creating them)",
    );
  }
  await provision(new ServiceBusAdministrationClient(connectionString), plan, (line) => console.log(line));
}

/** Creates what is missing and updates the settings that can change; never deletes an entity. */
export async function provision(
  admin: ServiceBusAdministrationClient,
  plan: ServiceBusEntityPlan,
  log: (line: string) => void,
): Promise<void> {
  for (const queue of plan.queues) {
    const settings = {
      lockDuration: `PT${queue.lockDurationSeconds}S`,
      maxDeliveryCount: queue.maxDeliveryCount,
      deadLetteringOnMessageExpiration: false,
    };
    if (await admin.queueExists(queue.name)) {
      const resource = await admin.getQueue(queue.name);
      if (!resource.requiresDuplicateDetection) {
        log(`! ${queue.name}: duplicate detection is off and cannot be turned on; recreate the queue`);
      }
      await admin.updateQueue({ ...resource, ...settings });
      log(`updated queue ${queue.name}`);
    } else {
      await admin.createQueue(queue.name, {
        ...settings,
        requiresDuplicateDetection: true,
        duplicateDetectionHistoryTimeWindow: `PT${queue.duplicateDetectionWindowSeconds}S`,
      });
      log(`created queue ${queue.name}`);
    }
  }
  if (!(await admin.topicExists(plan.topic.name))) {
    await admin.createTopic(plan.topic.name, {
      requiresDuplicateDetection: true,
      duplicateDetectionHistoryTimeWindow: `PT${plan.topic.duplicateDetectionWindowSeconds}S`,
    });
    log(`created topic ${plan.topic.name}`);
  }
  for (const subscription of plan.subscriptions) {
    const settings = {
      lockDuration: `PT${subscription.lockDurationSeconds}S`,
      maxDeliveryCount: subscription.maxDeliveryCount,
    };
    if (await admin.subscriptionExists(plan.topic.name, subscription.name)) {
      const resource = await admin.getSubscription(plan.topic.name, subscription.name);
      await admin.updateSubscription({ ...resource, ...settings });
      log(`updated subscription ${plan.topic.name}/${subscription.name}`);
      continue;
    }
    await admin.createSubscription(plan.topic.name, subscription.name, settings);
    // No catch-all rule: the node adds one rule per agent inbox and message type it serves.
    if (await admin.ruleExists(plan.topic.name, subscription.name, "$Default")) {
      await admin.deleteRule(plan.topic.name, subscription.name, "$Default");
    }
    log(`created subscription ${plan.topic.name}/${subscription.name} (no default rule)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
