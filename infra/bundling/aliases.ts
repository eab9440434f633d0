import { join } from "node:path";

/**
 * The esbuild aliases of every Lambda bundle (AgentryFunction, and bench/bundles.ts which measures
 * the same bundles): SDK parts a Lambda function never runs, replaced by small modules with the same
 * exports, to keep each bundle under its 500 KB budget (docs/adr/0006-performance-budget.md). Each
 * module says why its package is dead weight on Lambda; the synthesized-app test runs the bundles
 * built with them against the emulators.
 *
 * @example
 * build({ entryPoints: [entry], bundle: true, alias: lambdaBundleAliases(root) });
 */
export function lambdaBundleAliases(root: string): Record<string, string> {
  const stand = (file: string) => join(root, "infra", "bundling", file);
  return {
    // ~120 KiB: the default credential chain (SSO, ini files, IMDS…); Lambda passes credentials in env.
    "@aws-sdk/credential-provider-node": stand("lambda-credentials.ts"),
    // ~15 KB: event-stream serde, loaded only by streaming operations, none of which Agentry calls.
    "@smithy/core/event-streams": stand("no-event-streams.ts"),
    // ~8 KB: DynamoDB endpoint discovery's cache, unused by every table operation.
    "@aws-sdk/middleware-endpoint-discovery": stand("no-endpoint-discovery.ts"),
  };
}
