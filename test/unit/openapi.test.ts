import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { buildOpenApiDocument, documentedRoutes } from "#shared/http/openapi";

const committed = JSON.parse(
  readFileSync(new URL("shared/http/openapi.json", new URL("../../", import.meta.url)), "utf8"),
) as Record<string, any>;

describe("the OpenAPI document", () => {
  it("is the one the route definitions generate (run `npm run openapi` after changing a route)", () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(committed));
    expect(validator.version).toBe("3.1");
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("lists every route with its request and response schemas", () => {
    const missing: string[] = [];
    for (const { route } of documentedRoutes()) {
      const where = `${route.method.toUpperCase()} ${route.path}`;
      const operation = committed.paths?.[route.path]?.[route.method];
      if (operation === undefined) {
        missing.push(`${where}: not documented`);
        continue;
      }
      const request = route.request ?? {};
      if (
        request.body !== undefined &&
        operation.requestBody?.content?.["application/json"]?.schema === undefined
      )
        missing.push(`${where}: no request body schema`);
      for (const part of ["params", "query", "headers"] as const) {
        if (request[part] === undefined) continue;
        const location = { params: "path", query: "query", headers: "header" }[part];
        if (!operation.parameters?.some((p: { in: string }) => p.in === location))
          missing.push(`${where}: no ${location} parameters`);
      }
      for (const [status, response] of Object.entries(route.responses)) {
        const documented = operation.responses?.[status];
        if (documented === undefined) missing.push(`${where}: no ${status} response`);
        else if (
          "content" in (response as object) &&
          documented.content?.["application/json"]?.schema === undefined
        )
          missing.push(`${where}: no ${status} response schema`);
      }
    }
    expect(missing).toEqual([]);
    // 16 of tasks, jobs, agents and the platform, plus /stats/queues, /dlq and /dlq/redrive.
    expect(Object.keys(committed.paths)).toHaveLength(19);
    expect(Object.keys(committed.paths)).toEqual(
      expect.arrayContaining(["/stats/queues", "/dlq", "/dlq/redrive"]),
    );
  });

  it("names shared shapes as components, every $ref resolving to one", () => {
    const text = JSON.stringify(committed);
    const refs = new Set(
      [...text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1] ?? ""),
    );
    expect([...refs].filter((name) => !(name in committed.components.schemas))).toEqual([]);
    expect(
      committed.paths["/tasks/{taskId}"].get.responses["200"].content["application/json"].schema,
    ).toEqual({
      $ref: "#/components/schemas/Task",
    });
    expect(refs).toContain("JsonValue");
  });
});
