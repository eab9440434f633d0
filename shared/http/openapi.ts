import * as z from "zod";
import { type ApiSchemaMeta, apiSchemas, ErrorResponseSchema } from "./schemas.ts";

/**
 * The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`. Paths come from the
 * routes themselves (each route carries its hand-written operation), and every schema in it is
 * generated from the zod schemas the router validates with, so the document cannot describe an API
 * other than the one that runs.
 */

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1) as plain data. */
export type JsonSchemaObject = Record<string, unknown>;

export interface ApiParameterDoc {
  readonly name: string;
  readonly in: "path" | "query" | "header";
  readonly required?: boolean;
  readonly description?: string;
  readonly schema: z.ZodType;
}

export interface ApiResponseDoc {
  readonly description: string;
  /** A schema registered in {@link apiSchemas}: it appears as a `$ref` to its component. */
  readonly schema?: z.ZodType;
  readonly headers?: Readonly<Record<string, { readonly description: string; readonly schema: z.ZodType }>>;
}

/**
 * What a route says about itself. Bodies are zod schemas registered in {@link apiSchemas}; path
 * parameters not listed in `parameters` are documented from the route's path template.
 *
 * @example
 * const operation: ApiOperation = {
 *   operationId: "getTask",
 *   summary: "Get a task",
 *   responses: { "200": { description: "The task", schema: TaskSchema }, ...errorResponses({ "404": "No such task" }) },
 * };
 */
export interface ApiOperation {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly parameters?: readonly ApiParameterDoc[];
  readonly requestBody?: { readonly description?: string; readonly schema: z.ZodType };
  readonly responses: Readonly<Record<string, ApiResponseDoc>>;
}

/** The part of a route the document needs (structural, so this module does not depend on the router). */
export interface DocumentedRoute {
  readonly method: string;
  readonly path: string;
  readonly operation: ApiOperation;
}

export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
}

export type OpenApiDocument = {
  readonly openapi: "3.1.0";
  readonly info: OpenApiInfo;
  readonly paths: Record<string, Record<string, unknown>>;
  readonly components: { readonly schemas: Record<string, JsonSchemaObject> };
};

export const DEFAULT_OPENAPI_INFO: OpenApiInfo = {
  title: "Agentry API",
  version: "1.0.0",
  description:
    "Submit tasks to the Agentry supervisor, follow them through their lifecycle and cancel them. " +
    'Errors are `{ "error": { "code", "message", "details"? } }`; a body that is not JSON is ' +
    "`400 invalid_json`, a body that is JSON but breaks the schema is `400 validation_error`.",
};

const COMPONENT_PREFIX = "#/components/schemas/";

/**
 * Error responses for an operation, all with the error envelope: `{ "404": "No such task" }`.
 *
 * @example
 * responses: { "200": { description: "The task", schema: TaskSchema }, ...errorResponses({ "404": "No such task" }) }
 */
export function errorResponses(
  descriptions: Readonly<Record<string, string>>,
): Record<string, ApiResponseDoc> {
  return Object.fromEntries(
    Object.entries(descriptions).map(([status, description]) => [
      status,
      { description, schema: ErrorResponseSchema },
    ]),
  );
}

/**
 * Query parameter docs from a zod object schema: one parameter per field, required unless optional,
 * described by the field's `.describe()` text.
 *
 * @example
 * parameters: queryParameters(ListTasksQuerySchema)
 */
export function queryParameters(schema: z.ZodObject): ApiParameterDoc[] {
  return Object.entries(schema.shape).map(([name, field]) => ({
    name,
    in: "query",
    required: !field.safeParse(undefined).success,
    ...(field.description !== undefined ? { description: field.description } : {}),
    schema: field,
  }));
}

/**
 * Builds the document for a set of routes. Throws when a body schema is not registered in
 * `registry`: an inline body would hide a shape that clients need to name.
 *
 * @example
 * const document = buildOpenApiDocument(router.routes);
 * document.paths["/tasks/{taskId}"]?.get; // the getTask operation
 */
export function buildOpenApiDocument(
  routes: readonly DocumentedRoute[],
  options: { info?: OpenApiInfo; registry?: z.core.$ZodRegistry<ApiSchemaMeta> } = {},
): OpenApiDocument {
  const registry = options.registry ?? apiSchemas;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    paths[route.path] = {
      ...paths[route.path],
      [route.method.toLowerCase()]: operationObject(route, registry),
    };
  }
  return {
    openapi: "3.1.0",
    info: options.info ?? DEFAULT_OPENAPI_INFO,
    paths,
    components: { schemas: componentSchemas(registry) },
  };
}

function operationObject(
  route: DocumentedRoute,
  registry: z.core.$ZodRegistry<ApiSchemaMeta>,
): JsonSchemaObject {
  const { operation } = route;
  const where = `${route.method} ${route.path}`;
  const listed = operation.parameters ?? [];
  const fromTemplate = [...route.path.matchAll(/\{([^}]+)\}/g)]
    .map((match) => match[1] ?? "")
    .filter((name) => !listed.some((p) => p.in === "path" && p.name === name))
    .map((name): ApiParameterDoc => ({ name, in: "path", required: true, schema: z.string() }));
  const parameters = [...fromTemplate, ...listed].map((p) => ({
    name: p.name,
    in: p.in,
    // OpenAPI requires path parameters to be required.
    required: p.in === "path" ? true : (p.required ?? false),
    ...(p.description !== undefined ? { description: p.description } : {}),
    schema: inlineSchema(p.schema),
  }));
  const responses = Object.fromEntries(
    Object.entries({
      ...operation.responses,
      ...(operation.responses["500"] === undefined ? errorResponses({ "500": "Internal error" }) : {}),
    }).map(([status, response]) => [
      status,
      {
        description: response.description,
        ...(response.headers !== undefined
          ? {
              headers: Object.fromEntries(
                Object.entries(response.headers).map(([name, header]) => [
                  name,
                  { description: header.description, schema: inlineSchema(header.schema) },
                ]),
              ),
            }
          : {}),
        ...(response.schema !== undefined
          ? { content: jsonContent(componentRef(response.schema, registry, `${where} response ${status}`)) }
          : {}),
      },
    ]),
  );
  return {
    operationId: operation.operationId,
    summary: operation.summary,
    ...(operation.description !== undefined ? { description: operation.description } : {}),
    ...(operation.tags !== undefined ? { tags: [...operation.tags] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(operation.requestBody !== undefined
      ? {
          requestBody: {
            required: true,
            ...(operation.requestBody.description !== undefined
              ? { description: operation.requestBody.description }
              : {}),
            content: jsonContent(
              componentRef(operation.requestBody.schema, registry, `${where} request body`),
            ),
          },
        }
      : {}),
    responses,
  };
}

function jsonContent(schema: JsonSchemaObject): JsonSchemaObject {
  return { "application/json": { schema } };
}

function componentRef(
  schema: z.ZodType,
  registry: z.core.$ZodRegistry<ApiSchemaMeta>,
  where: string,
): JsonSchemaObject {
  const id = registry.get(schema)?.id;
  if (id === undefined)
    throw new Error(`openapi: the schema of ${where} is not registered in the API schema registry`);
  return { $ref: `${COMPONENT_PREFIX}${id}` };
}

/** Parameter and header schemas are small scalars: inline, as the request sees them (before coercion). */
function inlineSchema(schema: z.ZodType): JsonSchemaObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    io: "input",
    override: dropSafeIntegerBounds,
  });
  return rest;
}

/**
 * Components for every registered schema, each generated on the side of the parse it documents.
 * zod puts schemas reached from several components (here: the recursive JSON value of `input` and
 * `output`) into a synthetic `__shared` entry that would be addressed as `__shared#/$defs/…`, which
 * OpenAPI tools do not resolve; those are hoisted into components of their own.
 */
function componentSchemas(registry: z.core.$ZodRegistry<ApiSchemaMeta>): Record<string, JsonSchemaObject> {
  const hoisted = new SharedDefinitions();
  const components: Record<string, JsonSchemaObject> = {};
  for (const io of ["input", "output"] as const) {
    const generated = z.toJSONSchema(registry, {
      io,
      uri: (id) => `${COMPONENT_PREFIX}${id}`,
      override: dropSafeIntegerBounds,
    }).schemas as Record<string, JsonSchemaObject>;
    const { __shared: shared, ...named } = generated;
    const renames = hoisted.add(shared);
    for (const [id, schema] of Object.entries(named)) {
      if ((metaById(registry, id)?.io ?? "output") !== io) continue;
      // `$id`/`$schema` belong to standalone documents; `io` is our metadata, copied over by zod.
      const { $schema: _dialect, $id: _id, io: _io, ...rest } = schema;
      components[id] = rewriteRefs(rest, renames) as JsonSchemaObject;
    }
  }
  return { ...components, ...hoisted.schemas };
}

function metaById(registry: z.core.$ZodRegistry<ApiSchemaMeta>, id: string): ApiSchemaMeta | undefined {
  // `_idmap` is how zod itself walks a registry for toJSONSchema; the registry has no public lookup by id.
  const schema = registry._idmap.get(id);
  return schema === undefined ? undefined : registry.get(schema);
}

/**
 * Collects the shared definitions of both generation passes under stable component names. Identical
 * definitions (zod emits one per occurrence of `z.json()`) collapse into one; the JSON value schema
 * is named `JsonValue`, anything else `Shared<n>`.
 */
class SharedDefinitions {
  readonly schemas: Record<string, JsonSchemaObject> = {};
  private readonly byContent = new Map<string, string>();

  /** Returns, for each `$ref` into this pass's `__shared`, the component ref that replaces it. */
  add(shared: JsonSchemaObject | undefined): Map<string, string> {
    const defs = (shared?.$defs ?? {}) as Record<string, JsonSchemaObject>;
    const toShared = (key: string) => `${COMPONENT_PREFIX}__shared#/$defs/${key}`;
    const renames = new Map<string, string>();
    // Compare with self-references neutralized: each z.json() is its own definition, alike but for its name.
    const contents = new Map(
      Object.entries(defs).map(([key, def]) => {
        const placeholders = new Map(
          Object.keys(defs).map((other) => [toShared(other), other === key ? "#self" : `#${other}`]),
        );
        return [key, JSON.stringify(rewriteRefs(def, placeholders))];
      }),
    );
    for (const [key, content] of contents) {
      let name = this.byContent.get(content);
      if (name === undefined) {
        const def = JSON.parse(content) as JsonSchemaObject;
        name =
          isJsonValueSchema(def) && !("JsonValue" in this.schemas)
            ? "JsonValue"
            : `Shared${this.byContent.size}`;
        this.byContent.set(content, name);
      }
      renames.set(toShared(key), `${COMPONENT_PREFIX}${name}`);
    }
    for (const [key, def] of Object.entries(defs)) {
      const name = renames.get(toShared(key))?.slice(COMPONENT_PREFIX.length);
      if (name !== undefined && !(name in this.schemas))
        this.schemas[name] = rewriteRefs(def, renames) as JsonSchemaObject;
    }
    return renames;
  }
}

function isJsonValueSchema(schema: JsonSchemaObject): boolean {
  const anyOf = schema.anyOf;
  if (!Array.isArray(anyOf)) return false;
  const types = anyOf.map((branch: JsonSchemaObject) => branch.type);
  return ["string", "number", "boolean", "null", "array", "object"].every((type) => types.includes(type));
}

function rewriteRefs(value: unknown, renames: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((item) => rewriteRefs(item, renames));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      key === "$ref" && typeof inner === "string"
        ? (renames.get(inner) ?? inner)
        : rewriteRefs(inner, renames),
    ]),
  );
}

/** `z.int()` means "a safe integer"; its ±2^53 bounds are noise to a reader of the document. */
function dropSafeIntegerBounds(context: { jsonSchema: z.core.JSONSchema.BaseSchema }): void {
  const { jsonSchema } = context;
  if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
  if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
}
