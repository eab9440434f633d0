/**
 * Amazon EventBridge event pattern matching for the embedded event bus, so a subscription made
 * locally selects exactly the events that the same pattern selects as an EventBridge rule on AWS.
 *
 * A pattern is compiled once into a tree of matchers (which is also how it is validated) and cached
 * per pattern object (so a pattern must not be mutated after first use), because the bus matches every
 * published event against every subscription.
 */
import type { ErrorDetail } from "#shared/domain/errors";
import { ValidationError } from "#shared/domain/errors";
import type { EventPattern } from "#shared/ports/event-bus";

type Scalar = string | number | boolean | null;
type ValueTest = (value: Scalar) => boolean;

interface LeafMatcher {
  readonly kind: "leaf";
  /** Value tests; the field matches when any present value passes any test. */
  readonly tests: readonly ValueTest[];
  /** `{"exists": true}` was among the alternatives. */
  readonly matchesPresent: boolean;
  /** `{"exists": false}` was among the alternatives. */
  readonly matchesAbsent: boolean;
}

interface ObjectMatcher {
  readonly kind: "object";
  readonly fields: readonly { readonly key: string; readonly matcher: LeafMatcher | ObjectMatcher }[];
  /** The sub-patterns of this level's `$or`; one of them must match as well as every field. */
  readonly alternatives: readonly ObjectMatcher[] | undefined;
}

type Operator = (typeof OPERATORS)[number];
const OPERATORS = [
  "prefix",
  "suffix",
  "equals-ignore-case",
  "wildcard",
  "anything-but",
  "numeric",
  "exists",
  "cidr",
] as const;
const OPERATOR_NAMES: ReadonlySet<string> = new Set<string>(OPERATORS);
const OR_KEY = "$or";

const compiled = new WeakMap<object, ObjectMatcher>();

/**
 * Whether `event` matches `pattern` under EventBridge semantics.
 *
 * Every field named in the pattern must match (AND); a leaf lists alternatives (OR); `$or` lists
 * alternative sub-patterns. An array in the event matches when any of its elements does. Fields the
 * pattern does not name are ignored.
 *
 * @param pattern - an EventBridge event pattern, e.g. `{ "detail-type": ["Task Completed"] }`.
 * @param event - the event as a JSON value in EventBridge's envelope shape.
 * @returns `false` for anything that is not a JSON object.
 * @throws ValidationError if the pattern is invalid (see {@link validateEventPattern}).
 *
 * @example
 * matchesEventPattern(
 *   { source: ["agentry"], detail: { attempt: [{ numeric: [">", 1] }] } },
 *   { source: "agentry", "detail-type": "Task Retrying", detail: { attempt: 2 } },
 * ); // true
 */
export function matchesEventPattern(pattern: EventPattern, event: unknown): boolean {
  let matcher = compiled.get(pattern);
  if (matcher === undefined) {
    matcher = compileObject(pattern, "", false);
    compiled.set(pattern, matcher);
  }
  return isJsonObject(event) && matchesFields(matcher, event);
}

/**
 * Checks that `pattern` is a valid EventBridge event pattern, as `PutRule` would, so that a bad
 * subscription fails when it is made rather than silently matching nothing.
 *
 * @throws ValidationError naming the offending path, e.g. a leaf that is not an array, an unknown
 * operator, an empty object or array, a malformed `numeric` range, `wildcard` or `cidr`, or a `$or`
 * with fewer than two sub-patterns.
 *
 * @example
 * validateEventPattern({ detail: { status: ["succeeded"] } }); // passes
 * validateEventPattern({ detail: { status: "succeeded" } }); // throws ValidationError
 */
export function validateEventPattern(pattern: unknown): asserts pattern is EventPattern {
  if (isJsonObject(pattern) && compiled.has(pattern)) return;
  const matcher = compileObject(pattern, "", false);
  if (isJsonObject(pattern)) compiled.set(pattern, matcher);
}

// ---------------------------------------------------------------------------------------------
// Matching

const NO_FIELDS: Readonly<Record<string, unknown>> = Object.freeze({});

function matchesFields(matcher: ObjectMatcher, object: Readonly<Record<string, unknown>>): boolean {
  for (const { key, matcher: field } of matcher.fields) {
    // Own properties only: a field named "constructor" must not find Object.prototype's.
    const value = Object.hasOwn(object, key) ? object[key] : undefined;
    const matched = field.kind === "leaf" ? matchesLeaf(field, value) : matchesObject(field, value);
    if (!matched) return false;
  }
  return matcher.alternatives === undefined || matcher.alternatives.some((alt) => matchesFields(alt, object));
}

function matchesObject(matcher: ObjectMatcher, value: unknown): boolean {
  // Each array element is tried as a whole, so two fields can never be satisfied by different
  // elements of one array (EventBridge's "array-consistent" matching).
  const candidates = Array.isArray(value) ? value.flat(Number.POSITIVE_INFINITY).filter(isJsonObject) : [];
  if (isJsonObject(value)) candidates.push(value);
  // A missing or non-object value has no sub-fields, but `{"exists": false}` below it still matches.
  if (candidates.length === 0) candidates.push(NO_FIELDS);
  return candidates.some((candidate) => matchesFields(matcher, candidate));
}

function matchesLeaf(matcher: LeafMatcher, value: unknown): boolean {
  // A leaf holds scalars; an object there is not a leaf, and an empty array holds no value, so in
  // both cases the field counts as absent (EventBridge: exists only applies to leaf nodes).
  const values = Array.isArray(value)
    ? value.flat(Number.POSITIVE_INFINITY).filter(isScalar)
    : isScalar(value)
      ? [value]
      : [];
  if (values.length === 0) return matcher.matchesAbsent;
  return matcher.matchesPresent || values.some((v) => matcher.tests.some((test) => test(v)));
}

// ---------------------------------------------------------------------------------------------
// Compilation (and validation)

function compileObject(raw: unknown, path: string, insideOr: boolean): ObjectMatcher {
  if (!isJsonObject(raw)) invalid(path, `must be a JSON object, got ${describe(raw)}`);
  const entries = Object.entries(raw);
  if (entries.length === 0) invalid(path, "must not be an empty object");
  const fields: { key: string; matcher: LeafMatcher | ObjectMatcher }[] = [];
  let alternatives: ObjectMatcher[] | undefined;
  for (const [key, value] of entries) {
    const fieldPath = path === "" ? key : `${path}.${key}`;
    if (key === OR_KEY) {
      alternatives = compileOr(value, fieldPath);
      continue;
    }
    // Inside `$or` an operator name as a field name is almost surely a misplaced operator, so
    // EventBridge rejects it there (outside `$or` it is a legitimate field name).
    if (insideOr && OPERATOR_NAMES.has(key)) {
      invalid(fieldPath, `"${key}" is an operator and cannot be used as a field name inside $or`);
    }
    if (Array.isArray(value)) fields.push({ key, matcher: compileLeaf(value, fieldPath) });
    else if (isJsonObject(value)) fields.push({ key, matcher: compileObject(value, fieldPath, insideOr) });
    else invalid(fieldPath, `must be an array of match values or a nested object, got ${describe(value)}`);
  }
  return { kind: "object", fields, alternatives };
}

function compileOr(raw: unknown, path: string): ObjectMatcher[] {
  if (!Array.isArray(raw)) invalid(path, `must be an array of sub-patterns, got ${describe(raw)}`);
  if (raw.length < 2) invalid(path, `must list at least 2 sub-patterns, got ${raw.length}`);
  return raw.map((item, index) => compileObject(item, `${path}[${index}]`, true));
}

function compileLeaf(raw: readonly unknown[], path: string): LeafMatcher {
  if (raw.length === 0) invalid(path, "must not be an empty array");
  const tests: ValueTest[] = [];
  let matchesPresent = false;
  let matchesAbsent = false;
  raw.forEach((item, index) => {
    const itemPath = `${path}[${index}]`;
    if (isScalar(item)) {
      // Strict equality is type-aware ("5" never matches 5) and numeric for numbers (5 matches 5.0).
      tests.push((value) => value === item);
    } else if (isJsonObject(item)) {
      const compiledOperator = compileOperator(item, itemPath);
      if (typeof compiledOperator === "function") tests.push(compiledOperator);
      else if (compiledOperator.exists) matchesPresent = true;
      else matchesAbsent = true;
    } else {
      invalid(itemPath, `must be a string, number, boolean, null or operator object, got ${describe(item)}`);
    }
  });
  return { kind: "leaf", tests, matchesPresent, matchesAbsent };
}

function compileOperator(
  raw: Readonly<Record<string, unknown>>,
  path: string,
): ValueTest | { exists: boolean } {
  const keys = Object.keys(raw);
  const [name] = keys;
  if (keys.length !== 1 || name === undefined) {
    invalid(path, `an operator object must have exactly one key, got ${keys.length}`);
  }
  if (!OPERATOR_NAMES.has(name)) {
    invalid(path, `unknown operator "${name}"; expected one of ${OPERATORS.join(", ")}`);
  }
  const operand = raw[name];
  const operandPath = `${path}.${name}`;
  switch (name as Operator) {
    case "prefix":
      return compileAffix(operand, operandPath, "prefix");
    case "suffix":
      return compileAffix(operand, operandPath, "suffix");
    case "equals-ignore-case": {
      const expected = foldCase(requireString(operand, operandPath));
      return (value) => typeof value === "string" && foldCase(value) === expected;
    }
    case "wildcard": {
      const matches = compileWildcard(requireString(operand, operandPath), operandPath);
      return (value) => typeof value === "string" && matches(value);
    }
    case "anything-but":
      return compileAnythingBut(operand, operandPath);
    case "numeric":
      return compileNumeric(operand, operandPath);
    case "exists":
      if (typeof operand !== "boolean")
        invalid(operandPath, `must be true or false, got ${describe(operand)}`);
      return { exists: operand };
    case "cidr":
      return compileCidr(operand, operandPath);
  }
}

/** `prefix`/`suffix`, given either a string or `{"equals-ignore-case": string}`. */
function compileAffix(operand: unknown, path: string, kind: "prefix" | "suffix"): ValueTest {
  const affixOf = (value: string, affix: string) =>
    kind === "prefix" ? value.startsWith(affix) : value.endsWith(affix);
  if (typeof operand === "string") {
    return (value) => typeof value === "string" && affixOf(value, operand);
  }
  if (isJsonObject(operand)) {
    const keys = Object.keys(operand);
    if (keys.length === 1 && keys[0] === "equals-ignore-case") {
      const affix = foldCase(requireString(operand["equals-ignore-case"], `${path}.equals-ignore-case`));
      return (value) => typeof value === "string" && affixOf(foldCase(value), affix);
    }
  }
  return invalid(path, `must be a string or {"equals-ignore-case": string}, got ${describe(operand)}`);
}

/**
 * `anything-but` matches any present value except the excluded ones. Exclusions only ever apply to
 * values of their own type, so e.g. `{"anything-but": "stopped"}` matches `5` and `null`.
 */
function compileAnythingBut(operand: unknown, path: string): ValueTest {
  if (typeof operand === "string" || typeof operand === "number") {
    return (value) => value !== operand;
  }
  if (Array.isArray(operand)) {
    if (operand.length === 0) invalid(path, "must not be an empty array");
    const allStrings = operand.every((item) => typeof item === "string");
    const allNumbers = operand.every((item) => typeof item === "number");
    if (!allStrings && !allNumbers) invalid(path, "a list must hold only strings or only numbers");
    const excluded = new Set<unknown>(operand);
    return (value) => !excluded.has(value);
  }
  if (!isJsonObject(operand)) {
    return invalid(
      path,
      `must be a string, a number, a list of either, or an operator object, got ${describe(operand)}`,
    );
  }
  const keys = Object.keys(operand);
  const [name] = keys;
  if (keys.length !== 1 || name === undefined) {
    return invalid(path, `an anything-but operator object must have exactly one key, got ${keys.length}`);
  }
  const inner = operand[name];
  const innerPath = `${path}.${name}`;
  switch (name) {
    case "prefix":
    case "suffix": {
      const affix = requireString(inner, innerPath);
      // An empty affix would exclude every string, which EventBridge rejects as a mistake.
      if (affix === "") invalid(innerPath, "must not be an empty string");
      return (value) =>
        typeof value !== "string" || !(name === "prefix" ? value.startsWith(affix) : value.endsWith(affix));
    }
    case "equals-ignore-case": {
      const excluded = new Set(requireStrings(inner, innerPath).map(foldCase));
      return (value) => typeof value !== "string" || !excluded.has(foldCase(value));
    }
    case "wildcard": {
      const matchers = requireStrings(inner, innerPath).map((p, i) =>
        compileWildcard(p, Array.isArray(inner) ? `${innerPath}[${i}]` : innerPath),
      );
      return (value) => typeof value !== "string" || !matchers.some((matches) => matches(value));
    }
    default:
      return invalid(
        path,
        `unsupported anything-but operator "${name}"; expected prefix, suffix, equals-ignore-case or wildcard`,
      );
  }
}

/** `numeric`: `["=", n]`, `[">" | ">=", n]`, `["<" | "<=", n]` or `[">" | ">=", low, "<" | "<=", high]`. */
function compileNumeric(operand: unknown, path: string): ValueTest {
  if (!Array.isArray(operand)) {
    return invalid(path, `must be an array such as [">", 0, "<=", 5], got ${describe(operand)}`);
  }
  const [operator, bound, upperOperator, upperBound, ...extra] = operand as readonly unknown[];
  if (operator !== "=" && operator !== "<" && operator !== "<=" && operator !== ">" && operator !== ">=") {
    return invalid(path, `unknown numeric operator ${describe(operator)}; expected =, <, <=, > or >=`);
  }
  const first = requireBound(operator, bound, path);
  const isRange = operand.length > 2;
  // Only a lower bound may be followed by an upper bound, and nothing may follow that.
  if (isRange && operator !== ">" && operator !== ">=") {
    invalid(path, `nothing may follow "${operator}" ${first}; a range starts with ">" or ">="`);
  }
  if (!isRange) return (value) => typeof value === "number" && compare(operator, value, first);
  if (upperOperator !== "<" && upperOperator !== "<=") {
    return invalid(path, `a range's upper bound needs "<" or "<=", got ${describe(upperOperator)}`);
  }
  const high = requireBound(upperOperator, upperBound, path);
  if (extra.length > 0) invalid(path, "has too many terms for a numeric range");
  if (first >= high) invalid(path, `the lower bound ${first} must be less than the upper bound ${high}`);
  return (value) =>
    typeof value === "number" && compare(operator, value, first) && compare(upperOperator, value, high);
}

function compare(operator: "=" | "<" | "<=" | ">" | ">=", value: number, bound: number): boolean {
  switch (operator) {
    case "=":
      return value === bound;
    case "<":
      return value < bound;
    case "<=":
      return value <= bound;
    case ">":
      return value > bound;
    case ">=":
      return value >= bound;
  }
}

function requireBound(operator: string, bound: unknown, path: string): number {
  if (typeof bound !== "number" || !Number.isFinite(bound)) {
    invalid(path, `the value after "${operator}" must be a number, got ${describe(bound)}`);
  }
  return bound;
}

/**
 * `wildcard`: `*` matches any run of characters, `\*` a literal asterisk and `\\` a backslash.
 * EventBridge rejects `**` and any other escape, so both are validation errors here too.
 */
function compileWildcard(pattern: string, path: string): (value: string) => boolean {
  const segments: string[] = [];
  let segment = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === "\\") {
      const next = pattern[i + 1];
      if (next !== "*" && next !== "\\") invalid(path, `"\\" may only escape "*" or "\\" (at index ${i})`);
      segment += next;
      i++;
    } else if (char === "*") {
      if (pattern[i + 1] === "*")
        invalid(path, `consecutive wildcard characters are not allowed (at index ${i})`);
      segments.push(segment);
      segment = "";
    } else {
      segment += char;
    }
  }
  segments.push(segment);
  return (value) => matchesWildcardSegments(segments, value);
}

/**
 * Literal segments separated by `*`: the first anchors the start, the last the end, and taking each
 * middle segment at its leftmost occurrence is optimal. No regular expression, so no backtracking
 * blow-up on long values.
 */
function matchesWildcardSegments(segments: readonly string[], value: string): boolean {
  const head = segments[0] ?? "";
  if (segments.length === 1) return value === head;
  const tail = segments[segments.length - 1] ?? "";
  if (value.length < head.length + tail.length || !value.startsWith(head) || !value.endsWith(tail))
    return false;
  const end = value.length - tail.length;
  let position = head.length;
  for (const middle of segments.slice(1, -1)) {
    const found = value.indexOf(middle, position);
    if (found === -1 || found + middle.length > end) return false;
    position = found + middle.length;
  }
  return true;
}

interface IpAddress {
  readonly bits: 32 | 128;
  readonly value: bigint;
}

/** `cidr`: an IPv4 or IPv6 block; matches string values holding an address of the same family inside it. */
function compileCidr(operand: unknown, path: string): ValueTest {
  const cidr = requireString(operand, path);
  const [address, length, ...extra] = cidr.split("/");
  const network = address === undefined ? undefined : parseIpAddress(address);
  if (network === undefined || length === undefined || extra.length > 0 || !/^\d{1,3}$/.test(length)) {
    return invalid(path, `must be an IP address block such as "10.0.0.0/24", got ${JSON.stringify(cidr)}`);
  }
  const prefixLength = Number(length);
  if (prefixLength > network.bits) {
    invalid(path, `prefix length ${prefixLength} exceeds ${network.bits} bits in ${JSON.stringify(cidr)}`);
  }
  const shift = BigInt(network.bits - prefixLength);
  const networkBits = network.value >> shift;
  return (value) => {
    if (typeof value !== "string") return false;
    const ip = parseIpAddress(value);
    return ip !== undefined && ip.bits === network.bits && ip.value >> shift === networkBits;
  };
}

function parseIpAddress(text: string): IpAddress | undefined {
  if (!text.includes(":")) {
    const value = parseIpv4(text);
    return value === undefined ? undefined : { bits: 32, value };
  }
  const value = parseIpv6(text);
  return value === undefined ? undefined : { bits: 128, value };
}

function parseIpv4(text: string): bigint | undefined {
  const octets = text.split(".");
  if (octets.length !== 4) return undefined;
  let value = 0n;
  for (const octet of octets) {
    if (!/^\d{1,3}$/.test(octet) || Number(octet) > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string | undefined): string[] =>
    part === undefined || part === "" ? [] : part.split(":");
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  // An embedded IPv4 address (e.g. "::ffff:10.0.0.1") stands for the last two groups.
  const last = halves.length === 2 ? tail : head;
  const lastGroup = last[last.length - 1];
  if (lastGroup?.includes(".")) {
    const ipv4 = parseIpv4(lastGroup);
    if (ipv4 === undefined) return undefined;
    last.splice(-1, 1, (ipv4 >> 16n).toString(16), (ipv4 & 0xffffn).toString(16));
  }
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  let value = 0n;
  for (const group of [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail]) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    value = (value << 16n) | BigInt(`0x${group}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Small shared pieces

function isJsonObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isScalar(value: unknown): value is Scalar {
  return (
    value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean"
  );
}

/** Case folding for equals-ignore-case; lower-casing both sides covers what EventBridge folds. */
function foldCase(text: string): string {
  return text.toLowerCase();
}

function requireString(value: unknown, path: string): string {
  if (typeof value !== "string") invalid(path, `must be a string, got ${describe(value)}`);
  return value;
}

function requireStrings(value: unknown, path: string): string[] {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === "string")) {
    invalid(path, `must be a string or a non-empty list of strings, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value) ?? String(value)}`;
}

function invalid(path: string, message: string): never {
  const detail: ErrorDetail = { path, message };
  throw new ValidationError(
    path === "" ? `invalid event pattern: ${message}` : `invalid event pattern at ${path}: ${message}`,
    [detail],
  );
}
