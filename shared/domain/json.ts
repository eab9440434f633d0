import * as z from "zod";

/**
 * The one rule for JSON values the platform accepts and stores (task inputs and outputs, metadata,
 * message payloads, job templates): what the strictest backend can store unchanged. DynamoDB is the
 * strictest one: documents nest at most 32 levels, numbers carry at most 38 digits within
 * 1E-130..9.99E+125 (and the SDK refuses integers JavaScript cannot hold exactly), map keys are
 * non-empty attribute names, strings are UTF-8. A value that breaks it is refused at the edge with a
 * 400 naming where, instead of failing later inside a store (see docs/adr/0012-hostile-input-and-recovery.md).
 */

/**
 * Deepest nesting of a stored value (a scalar is depth 0, `{}` and `[]` depth 1). DynamoDB allows 32
 * levels per item; the record keeps the value under a few levels of its own (`result.output`, a job's
 * collected outputs), so values get 24 and the wrappers the rest.
 */
export const MAX_JSON_DEPTH = 24;
/**
 * Deepest nesting of a whole request body. Bodies wrap values (`steps[].tasks[].input`), so they get a
 * margin on top of {@link MAX_JSON_DEPTH}; anything deeper is refused before any recursive code
 * (validation, stringify) walks it.
 */
export const MAX_REQUEST_DEPTH = MAX_JSON_DEPTH + 16;
/** DynamoDB's number range: magnitudes below this are refused (0 excepted). */
export const MIN_NUMBER_MAGNITUDE = 1e-130;
/**
 * DynamoDB's number range: magnitudes at or above this are refused. (Every double above 2^53 is an
 * integer the SDK refuses as imprecise anyway, so in practice the integer bound is the upper one.)
 */
export const MAX_NUMBER_MAGNITUDE = 1e126;
/** Longest object key, in UTF-8 bytes (a DynamoDB attribute name). */
export const MAX_KEY_BYTES = 65_535;

/** In `u` mode a surrogate pair is one code point, so this matches only unpaired halves. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Where a JSON value breaks the rule and why. `path` uses dots: `tasks.0.input.a.b`. */
export interface JsonProblem {
  readonly path: string;
  /** The same place as path segments (keys may contain dots). */
  readonly segments: readonly (string | number)[];
  readonly message: string;
}

export interface JsonRuleOptions {
  /** @default MAX_JSON_DEPTH */
  readonly maxDepth?: number;
  /** Prefix of every reported path. */
  readonly path?: readonly (string | number)[];
  /**
   * Only check nesting (for a whole request body, whose values are checked by their own schema).
   * @default false
   */
  readonly depthOnly?: boolean;
}

/**
 * The first place where `value` breaks the JSON acceptance rule, or undefined when it is storable.
 * Iterative, so a value nested 100,000 levels deep is reported, never a stack overflow.
 *
 * @example
 * findJsonProblem({ n: 9007199254740993 }); // { path: "n", message: "integer beyond ±9007199254740991 …" }
 * findJsonProblem({ "": 1 });               // { path: "", message: "object keys must not be empty" }
 */
export function findJsonProblem(value: unknown, options: JsonRuleOptions = {}): JsonProblem | undefined {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const stack: { value: unknown; path: (string | number)[]; depth: number }[] = [
    { value, path: [...(options.path ?? [])], depth: 0 },
  ];
  while (stack.length > 0) {
    const { value: current, path, depth } = stack.pop() as (typeof stack)[number];
    if (current === null || typeof current === "boolean") continue;
    if (typeof current === "number") {
      if (options.depthOnly) continue;
      const problem = numberProblem(current);
      if (problem) return problemAt(path, problem);
      continue;
    }
    if (typeof current === "string") {
      if (!options.depthOnly && LONE_SURROGATE.test(current))
        return problemAt(path, "strings must be valid Unicode (no lone surrogates)");
      continue;
    }
    if (typeof current !== "object") {
      return problemAt(path, `${typeof current} is not a JSON value`);
    }
    if (depth + 1 > maxDepth) {
      return problemAt(path, `nested deeper than ${maxDepth} levels`);
    }
    if (Array.isArray(current)) {
      for (let index = current.length - 1; index >= 0; index--) {
        stack.push({ value: current[index], path: [...path, index], depth: depth + 1 });
      }
      continue;
    }
    const entries = Object.entries(current);
    for (let index = entries.length - 1; index >= 0; index--) {
      const [key, child] = entries[index] as [string, unknown];
      if (!options.depthOnly) {
        const problem = keyProblem(key);
        if (problem) return problemAt([...path, key], problem);
      }
      stack.push({ value: child, path: [...path, key], depth: depth + 1 });
    }
  }
  return undefined;
}

function problemAt(segments: (string | number)[], message: string): JsonProblem {
  return { path: segments.join("."), segments, message };
}

function numberProblem(n: number): string | undefined {
  if (!Number.isFinite(n)) return "numbers must be finite";
  const magnitude = Math.abs(n);
  if (Number.isInteger(n) && magnitude > Number.MAX_SAFE_INTEGER)
    return `integer beyond ±${Number.MAX_SAFE_INTEGER} cannot be stored exactly; send it as a string`;
  if (magnitude !== 0 && (magnitude < MIN_NUMBER_MAGNITUDE || magnitude >= MAX_NUMBER_MAGNITUDE))
    return "number outside the storable range 1e-130 to 1e126; send it as a string";
  return undefined;
}

function keyProblem(key: string): string | undefined {
  if (key === "") return "object keys must not be empty";
  if (LONE_SURROGATE.test(key)) return "object keys must be valid Unicode (no lone surrogates)";
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) return `object keys are at most ${MAX_KEY_BYTES} bytes`;
  return undefined;
}

/**
 * Any JSON value, unchecked: what is read back (a stored task's input, a handler's output, a job's
 * result), which passed {@link StorableJsonSchema} or the store on its way in. One schema instance, so
 * the OpenAPI document names it once (`JsonValue`) instead of expanding the recursive shape at every use.
 */
export const JsonValueSchema = z.json();
export type JsonValue = z.output<typeof JsonValueSchema>;

/**
 * Any JSON value that passes the acceptance rule. Use it instead of `z.json()` for anything stored.
 *
 * @example
 * const TaskInputSchema = z.strictObject({ input: StorableJsonSchema });
 */
// Built on JsonValueSchema, so its recursion is that one named instance (`JsonValue` in OpenAPI).
export const StorableJsonSchema = JsonValueSchema.check((ctx) => {
  const problem = findJsonProblem(ctx.value);
  if (problem === undefined) return;
  ctx.issues.push({
    code: "custom",
    input: ctx.value,
    // Reported relative to the field; zod prefixes the field's own path.
    path: [...problem.segments],
    message: problem.message,
  });
});
