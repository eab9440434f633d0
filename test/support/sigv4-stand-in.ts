import { createHash, createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for an IAM-authorized API Gateway: it recomputes every request's SigV4 signature
 * from what arrived on the wire, with its own implementation of the documented algorithm (node:crypto
 * only, nothing shared with the signer under test), and answers 403 when it differs, names an
 * unknown key, a wrong scope, or a time more than 5 minutes off — as API Gateway does.
 */
export interface SigV4StandIn {
  readonly url: string;
  /** Every request that arrived, with the verdict. */
  readonly requests: readonly { method: string; path: string; verified: boolean; reason?: string }[];
  close(): Promise<void>;
}

export interface StandInOptions {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly region: string;
  /** @default "execute-api" */
  readonly service?: string;
  /** What a verified request gets. @default 200 `{ ok: true }` */
  readonly respond?: (request: { method: string; path: string; body: string }) => {
    status: number;
    body: unknown;
  };
}

export async function startSigV4StandIn(options: StandInOptions): Promise<SigV4StandIn> {
  const requests: { method: string; path: string; verified: boolean; reason?: string }[] = [];
  const server: Server = createServer((request, response) => {
    void (async () => {
      const body = await readBody(request);
      const rawPath = (request.url ?? "/").split("?")[0] ?? "/";
      const problem = verify(request, body, options);
      requests.push({
        method: request.method ?? "",
        path: request.url ?? "",
        verified: problem === undefined,
        ...(problem ? { reason: problem } : {}),
      });
      if (problem !== undefined) {
        response
          .writeHead(403, { "content-type": "application/json" })
          .end(JSON.stringify({ message: problem }));
        return;
      }
      const answer = options.respond?.({ method: request.method ?? "", path: rawPath, body }) ?? {
        status: 200,
        body: { ok: true },
      };
      response
        .writeHead(answer.status, { "content-type": "application/json" })
        .end(JSON.stringify(answer.body));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const sha256 = (data: string) => createHash("sha256").update(data, "utf8").digest("hex");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data, "utf8").digest();

/** RFC 3986 unreserved characters stay, everything else is %XX (upper case), as SigV4 requires. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Returns why the request's signature is not valid, or undefined when it is. */
export function verify(
  request: Pick<IncomingMessage, "method" | "url" | "headers">,
  body: string,
  options: Pick<StandInOptions, "accessKeyId" | "secretAccessKey" | "sessionToken" | "region" | "service">,
  now = new Date(),
): string | undefined {
  const authorization = String(request.headers.authorization ?? "");
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (!match) return "missing or malformed Authorization header";
  const [, keyId, day, region, service, signedHeaderList, signature] = match as unknown as string[];
  if (keyId !== options.accessKeyId) return "unknown access key";
  if (region !== options.region || service !== (options.service ?? "execute-api"))
    return "wrong credential scope";
  const amzDate = String(request.headers["x-amz-date"] ?? "");
  const at = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!at || amzDate.slice(0, 8) !== day) return "missing or inconsistent X-Amz-Date";
  const signedAt = Date.UTC(+at[1]!, +at[2]! - 1, +at[3]!, +at[4]!, +at[5]!, +at[6]!);
  if (Math.abs(now.getTime() - signedAt) > 5 * 60_000) return "signature expired";
  if (options.sessionToken !== undefined && request.headers["x-amz-security-token"] !== options.sessionToken)
    return "missing or wrong session token";
  const signedHeaders = (signedHeaderList ?? "").split(";");
  if (!signedHeaders.includes("host") || !signedHeaders.includes("x-amz-date"))
    return "host and x-amz-date must be signed";

  const [rawPath = "/", rawQuery = ""] = (request.url ?? "/").split(/\?(.*)/s);
  // Every service but S3: each path segment is URI-encoded once more on top of its wire form.
  const canonicalUri = rawPath
    .split("/")
    .map((segment) => uriEncode(segment))
    .join("/");
  const canonicalQuery = rawQuery
    .split("&")
    .filter((pair) => pair !== "")
    .map((pair) => {
      const [name = "", value = ""] = pair.split(/=(.*)/s);
      return [
        uriEncode(decodeURIComponent(name.replace(/\+/g, " "))),
        uriEncode(decodeURIComponent(value.replace(/\+/g, " "))),
      ];
    })
    .sort(([a = "", av = ""], [b = "", bv = ""]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
  const canonicalHeaders = signedHeaders
    .map((name) => {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value.join(",") : String(value ?? "");
      return `${name}:${text.trim().replace(/\s+/g, " ")}\n`;
    })
    .join("");
  const canonicalRequest = [
    request.method ?? "GET",
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedHeaderList,
    sha256(body),
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
  const key = hmac(
    hmac(hmac(hmac(`AWS4${options.secretAccessKey}`, day ?? ""), region ?? ""), service ?? ""),
    "aws4_request",
  );
  const expected = createHmac("sha256", key).update(stringToSign, "utf8").digest("hex");
  return expected === signature ? undefined : "signature does not match";
}
