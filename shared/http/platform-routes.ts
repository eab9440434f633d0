import { readFileSync } from "node:fs";
import * as z from "zod";
import { type ApiRoute, defineRoute, json } from "./route.ts";
import { HealthResponseSchema } from "./schemas.ts";

const tags = ["platform"];

/** The OpenAPI document as served: any JSON object (its own schema is the OpenAPI 3.1 specification). */
export const OpenApiDocumentSchema = z.record(z.string(), z.unknown());

/**
 * `GET /health` and `GET /openapi.json`. The document is generated from the route definitions at
 * build time (`npm run openapi` writes `shared/http/openapi.json`, a test keeps it current) and
 * served as a static file: generating it at run time would put the OpenAPI generator, and all of zod
 * with it, into the API's Lambda bundle, and even bundling the document would take 30 KiB of the
 * 500 KB budget. On Lambda the file sits next to the bundle (infra/constructs/supervisor-api.ts
 * copies it there), which is where `import.meta.url` resolves it in both places.
 *
 * @example
 * const app = createApiApp({ routes: platformRoutes(), logger });
 */
export function platformRoutes(): ApiRoute[] {
  let document: string | undefined;
  return [
    defineRoute(
      {
        method: "get",
        path: "/health",
        operationId: "getHealth",
        summary: "Liveness check",
        description:
          "Answers without touching any dependency, so it says the API is up, not that its stores are.",
        tags,
        responses: { 200: json("The API is up", HealthResponseSchema) },
      },
      (c) => c.json({ status: "ok" as const }, 200),
    ),
    defineRoute(
      {
        method: "get",
        path: "/openapi.json",
        operationId: "getOpenApiDocument",
        summary: "This OpenAPI 3.1 document",
        tags,
        responses: { 200: json("The OpenAPI document", OpenApiDocumentSchema) },
      },
      (c) => {
        // Read on first use: no other route's cold start pays for it.
        document ??= readFileSync(new URL("./openapi.json", import.meta.url), "utf8");
        return c.body(document, 200, { "content-type": "application/json" }) as never;
      },
    ),
  ];
}
