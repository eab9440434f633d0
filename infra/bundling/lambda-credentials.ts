import { fromEnv } from "@aws-sdk/credential-provider-env";

/**
 * Stands in for `@aws-sdk/credential-provider-node` in Lambda bundles (an esbuild alias set by
 * AgentryFunction and by bench/bundles.ts). Lambda always hands a function its role's credentials
 * in environment variables, so the rest of the default chain — SSO, shared ini files, process, web
 * identity, IMDS, with the STS and SSO clients they pull in — never runs there. Same exports as the
 * package, so the SDK's runtime configuration links against it unchanged.
 */
export const defaultProvider = (init: Parameters<typeof fromEnv>[0] = {}) => fromEnv(init);
export const credentialsTreatedAsExpired = (): boolean => false;
export const credentialsWillNeedRefresh = (): boolean => false;
