import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";

/** A request about to be sent, as the client and the dashboard proxy hold it. */
export interface SignableRequest {
  readonly method: string;
  /** The absolute URL, query included, exactly as it will be sent. */
  readonly url: string;
  /** Header names in any case; `host` is derived from the URL. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
}

export interface SigV4Options {
  /** e.g. `eu-west-1`; for an `execute-api` URL, `executeApiRegion(url)` reads it from the host. */
  readonly region: string;
  /** @default "execute-api" */
  readonly service?: string;
  /** Fixed credentials, or a provider (`fromNodeProviderChain()`) asked before every signature. */
  readonly credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
}

/** Signs a request; returns the headers to send (the given ones plus `host`, `x-amz-date`, `authorization`…). */
export type RequestSigner = (
  request: SignableRequest,
  options?: { readonly signingDate?: Date },
) => Promise<Record<string, string>>;

/**
 * AWS Signature Version 4 for calls to an API Gateway API with IAM authorization, with the SDK's
 * own signer (`@smithy/signature-v4`). The path is signed as sent, URI-encoded once more by the
 * signer, which is what every service but S3 expects; no `x-amz-content-sha256` header is added
 * (API Gateway does not ask for one, and the AWS test vectors are computed without it).
 *
 * @example
 * const sign = createSigV4Signer({ region: "eu-west-1", credentials: fromNodeProviderChain() });
 * const headers = await sign({ method: "GET", url: "https://abc.execute-api.eu-west-1.amazonaws.com/tasks", headers: {} });
 * await fetch(url, { headers });
 */
export function createSigV4Signer(options: SigV4Options): RequestSigner {
  const signer = new SignatureV4({
    region: options.region,
    service: options.service ?? "execute-api",
    credentials: options.credentials,
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: false,
    uriEscapePath: true,
  });
  return async (request, signOptions = {}) => {
    const url = new URL(request.url);
    const query: Record<string, string | string[]> = {};
    for (const [name, value] of url.searchParams) {
      const previous = query[name];
      query[name] =
        previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
    headers.host = url.host;
    const signed = await signer.sign(
      new HttpRequest({
        method: request.method.toUpperCase(),
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port === "" ? {} : { port: Number(url.port) }),
        path: url.pathname,
        query,
        headers,
        ...(request.body === undefined ? {} : { body: request.body }),
      }),
      signOptions.signingDate === undefined ? {} : { signingDate: signOptions.signingDate },
    );
    return { ...(signed.headers as Record<string, string>) };
  };
}

/** `https://{api-id}.execute-api.{region}.amazonaws.com[.cn]/…` → the region; undefined for other URLs. */
export function executeApiRegion(url: string): string | undefined {
  const host = new URL(url).hostname;
  return /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1];
}

/**
 * The default AWS credential provider chain (environment, shared config and SSO profiles, web
 * identity, container and instance metadata), loaded on first use so that a client that never
 * signs does not load it at all.
 *
 * @example
 * const sign = createSigV4Signer({ region, credentials: defaultCredentialProvider() });
 */
export function defaultCredentialProvider(): AwsCredentialIdentityProvider {
  let provider: Promise<AwsCredentialIdentityProvider> | undefined;
  return async () => {
    provider ??= import("@aws-sdk/credential-providers").then(({ fromNodeProviderChain }) =>
      fromNodeProviderChain(),
    );
    return (await provider)();
  };
}
