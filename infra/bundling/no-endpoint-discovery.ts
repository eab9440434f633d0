/**
 * Stands in for `@aws-sdk/middleware-endpoint-discovery` in Lambda bundles (an esbuild alias, see
 * `infra/bundling/aliases.ts`). The DynamoDB client uses it only to give its config an endpoint cache
 * (an LRU from mnemonist, ~8 KB bundled) for endpoint discovery, which no DynamoDB operation requires,
 * which is off unless `AWS_ENDPOINT_DISCOVERY_ENABLED` is set (Agentry never sets it) and which no
 * command of this client version installs a middleware for. Same exports as the package uses there.
 */
interface EndpointDiscoveryInput {
  readonly endpointDiscoveryEnabled?: boolean;
}

export const NODE_ENDPOINT_DISCOVERY_CONFIG_OPTIONS = {
  environmentVariableSelector: (): undefined => undefined,
  configFileSelector: (): undefined => undefined,
  default: undefined,
};

export const resolveEndpointDiscoveryConfig = <T extends EndpointDiscoveryInput>(
  input: T,
  { endpointDiscoveryCommandCtor }: { endpointDiscoveryCommandCtor: unknown },
) =>
  Object.assign(input, {
    endpointDiscoveryCommandCtor,
    endpointDiscoveryEnabled: () => Promise.resolve(false),
    isClientEndpointDiscoveryEnabled: false,
  });
