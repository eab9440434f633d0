import { BUILT_IN_REDUCERS, type JsonValue } from "#shared/domain/job";
import { JobStepError } from "./errors.ts";

/** What a reducer knows besides the outputs. */
export interface ReducerContext {
  readonly jobId: string;
  readonly step: number;
  /** The tasks whose outputs are reduced, aligned with `outputs`. */
  readonly taskIds: readonly string[];
}

/**
 * Turns a step's successful outputs (in submission order, at least one) into the step's result. It
 * must be deterministic: a step may be reduced more than once when aggregators race, and either
 * result may be the one stored. Throwing fails the job with `reducer_failed`.
 */
export type ReducerFunction = (outputs: readonly JsonValue[], context: ReducerContext) => unknown;

export interface ReducerDefinition {
  readonly name: string;
  readonly reduce: ReducerFunction;
}

const REDUCER_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Declares a custom reducer, the way `defineWorker` declares a worker: give the definitions to
 * {@link createReducerRegistry}, and the same registry to the job service (which refuses unknown
 * reducer names at submission) and to the aggregator (which runs them).
 *
 * @example
 * export const sumReducer = defineReducer("sum", (outputs) =>
 *   outputs.reduce<number>((total, output) => total + Number((output as { value: number }).value), 0),
 * );
 * const reducers = createReducerRegistry([sumReducer]);
 */
export function defineReducer(name: string, reduce: ReducerFunction): ReducerDefinition {
  if (!REDUCER_NAME.test(name)) {
    throw new TypeError(
      `reducer name "${name}" must be 1-128 of A-Z a-z 0-9 . _ : - starting with a letter or digit`,
    );
  }
  if (typeof reduce !== "function") throw new TypeError(`reducer "${name}" needs a function`);
  return { name, reduce };
}

/**
 * JSON with object keys sorted at every level, so two deeply equal values have one spelling. `vote`
 * compares outputs by it.
 *
 * @example
 * canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }); // '{"a":[{"c":3,"d":2}],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

function isPlainObject(value: unknown): value is Record<string, JsonValue> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `collect`: the outputs as a list, in submission order. */
export const collectReducer = defineReducer("collect", (outputs) => [...outputs]);

/** `merge`: a shallow merge of object outputs in submission order (a later task's field wins). */
export const mergeReducer = defineReducer("merge", (outputs, { taskIds }) =>
  outputs.reduce<Record<string, JsonValue>>((merged, output, i) => {
    if (!isPlainObject(output))
      throw new TypeError(`merge needs objects; task ${taskIds[i]} returned ${describe(output)}`);
    return Object.assign(merged, output);
  }, {}),
);

/** `concat`: array outputs concatenated in submission order. */
export const concatReducer = defineReducer("concat", (outputs, { taskIds }) =>
  outputs.flatMap((output, i) => {
    if (!Array.isArray(output))
      throw new TypeError(`concat needs arrays; task ${taskIds[i]} returned ${describe(output)}`);
    return output;
  }),
);

/**
 * `vote`: the most frequent output, outputs being equal when their canonical JSON is; a tie goes to the
 * value that appeared first in submission order.
 */
export const voteReducer = defineReducer("vote", (outputs) => {
  const tally = new Map<string, { count: number; first: number; value: JsonValue }>();
  outputs.forEach((value, index) => {
    const key = canonicalJson(value);
    const entry = tally.get(key);
    if (entry) entry.count++;
    else tally.set(key, { count: 1, first: index, value });
  });
  let winner: { count: number; first: number; value: JsonValue } | undefined;
  for (const entry of tally.values()) {
    if (!winner || entry.count > winner.count || (entry.count === winner.count && entry.first < winner.first))
      winner = entry;
  }
  return winner?.value ?? null;
});

const BUILT_INS: readonly ReducerDefinition[] = [collectReducer, mergeReducer, concatReducer, voteReducer];

/**
 * The reducers a deployment knows: the built-ins plus its custom ones. An object handed to the job
 * service and the aggregator, not a global, so tests and runtimes each have their own.
 *
 * @example
 * const reducers = createReducerRegistry([defineReducer("sum", sum)]);
 * reducers.has("sum"); // true
 */
export class ReducerRegistry {
  private readonly reducers = new Map<string, ReducerFunction>();

  constructor(custom: readonly ReducerDefinition[] = []) {
    for (const definition of [...BUILT_INS, ...custom]) {
      if (this.reducers.has(definition.name)) {
        throw new TypeError(
          (BUILT_IN_REDUCERS as readonly string[]).includes(definition.name)
            ? `reducer "${definition.name}" is built in and cannot be redefined`
            : `reducer "${definition.name}" is defined twice`,
        );
      }
      this.reducers.set(definition.name, definition.reduce);
    }
  }

  has(name: string): boolean {
    return this.reducers.has(name);
  }

  names(): string[] {
    return [...this.reducers.keys()];
  }

  /**
   * Runs a reducer. The result goes through JSON, so what is stored is exactly what clients read;
   * anything that fails (unknown name, a throw, a value JSON cannot hold) is a `reducer_failed`.
   */
  reduce(name: string, outputs: readonly JsonValue[], context: ReducerContext): JsonValue {
    const reduce = this.reducers.get(name);
    if (!reduce) throw new JobStepError("reducer_failed", `no reducer named "${name}" is registered`);
    let value: unknown;
    try {
      value = reduce(outputs, context);
    } catch (error) {
      throw new JobStepError(
        "reducer_failed",
        `reducer "${name}" failed: ${error instanceof Error ? error.message : "it threw a value that is not an Error"}`,
        error,
      );
    }
    if (value instanceof Promise)
      throw new JobStepError("reducer_failed", `reducer "${name}" must not be async`);
    try {
      return JSON.parse(JSON.stringify(value ?? null)) as JsonValue;
    } catch (error) {
      throw new JobStepError("reducer_failed", `reducer "${name}" returned a value that is not JSON`, error);
    }
  }
}

/** The built-in reducers plus `custom`. */
export function createReducerRegistry(custom: readonly ReducerDefinition[] = []): ReducerRegistry {
  return new ReducerRegistry(custom);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
