import type { TestProject } from "vitest/node";
import { startEmulators } from "#local/emulators";

declare module "vitest" {
  export interface ProvidedContext {
    /** Endpoint of the Amazon DynamoDB Local started for this run. */
    dynamoEndpoint: string;
    /** Endpoint of the fauxqs SQS emulator started for this run. */
    sqsEndpoint: string;
  }
}

/**
 * Starts Amazon DynamoDB Local and the fauxqs SQS emulator once for the whole run, hands their
 * endpoints to the tests (`inject("dynamoEndpoint")` / `inject("sqsEndpoint")` and the SDK's
 * `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`), and stops both at the end. A missing Java is
 * a clear failure, never a skip.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const emulators = await startEmulators();
  project.provide("dynamoEndpoint", emulators.dynamoEndpoint);
  project.provide("sqsEndpoint", emulators.sqsEndpoint);
  process.env.AWS_ENDPOINT_URL_DYNAMODB = emulators.dynamoEndpoint;
  process.env.AWS_ENDPOINT_URL_SQS = emulators.sqsEndpoint;
  return () => emulators.stop();
}
