import type { TestProject } from "vitest/node";
import { startEmulators } from "#local/emulators";
import { startServiceBusPeer } from "#local/servicebus/peer";

declare module "vitest" {
  export interface ProvidedContext {
    /** Endpoint of the Amazon DynamoDB Local started for this run. */
    dynamoEndpoint: string;
    /** Endpoint of the fauxqs SQS emulator started for this run. */
    sqsEndpoint: string;
    /** Connection string of the local Service Bus peer started for this run. */
    serviceBusConnectionString: string;
    /** Admin API of that peer (creates and inspects entities; test/support/servicebus.ts). */
    serviceBusAdminUrl: string;
  }
}

/**
 * Starts Amazon DynamoDB Local and the fauxqs SQS emulator once for the whole run, hands their
 * endpoints to the tests (`inject("dynamoEndpoint")` / `inject("sqsEndpoint")` and the SDK's
 * `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`), and stops both at the end. A missing Java is
 * a clear failure, never a skip. The local Service Bus peer (local/servicebus/peer.ts) runs in this
 * process for the Service Bus suites, and stops with the rest.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const emulators = await startEmulators();
  const serviceBus = await startServiceBusPeer().catch(async (error: unknown) => {
    await emulators.stop();
    throw error;
  });
  project.provide("serviceBusConnectionString", serviceBus.connectionString);
  project.provide("serviceBusAdminUrl", serviceBus.adminUrl);
  project.provide("dynamoEndpoint", emulators.dynamoEndpoint);
  project.provide("sqsEndpoint", emulators.sqsEndpoint);
  process.env.AWS_ENDPOINT_URL_DYNAMODB = emulators.dynamoEndpoint;
  process.env.AWS_ENDPOINT_URL_SQS = emulators.sqsEndpoint;
  return async () => {
    await Promise.allSettled([emulators.stop(), serviceBus.stop()]);
  };
}
