/**
 * Starts the local services the test run needs and stops them when it ends.
 * (Owned by the AWS adapters work: DynamoDB Local and fauxqs are added here.)
 */
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
