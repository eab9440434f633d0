/**
 * The subset of the Service Bus SQL filter grammar the local peer evaluates: property references
 * (`name`, `user.name`, `sys.Label`-style system properties), string and number literals, `=`, `<>`,
 * `!=`, `IN (…)`, `NOT IN (…)`, `IS NULL`, `IS NOT NULL`, `AND`, `OR`, `NOT`, parentheses, `1=1`.
 * Anything else is refused when the rule is added, never silently mis-evaluated.
 */
export type SqlValue = string | number | boolean | null | undefined;

/** Reads a property: `user` properties are the application properties; `sys` the system ones. */
export type PropertyReader = (scope: "user" | "sys", name: string) => SqlValue;

export class SqlFilterSyntaxError extends Error {
  constructor(expression: string, reason: string) {
    super(`unsupported or invalid SQL filter "${expression}": ${reason}`);
    this.name = "SqlFilterSyntaxError";
  }
}

type Token =
  | { kind: "ident"; value: string }
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "op"; value: string };

type Node =
  | { kind: "and" | "or"; left: Node; right: Node }
  | { kind: "not"; operand: Node }
  | { kind: "compare"; op: "=" | "<>"; left: Operand; right: Operand }
  | { kind: "in"; negated: boolean; operand: Operand; values: Operand[] }
  | { kind: "null"; negated: boolean; operand: Operand };

type Operand =
  | { kind: "property"; scope: "user" | "sys"; name: string }
  | { kind: "literal"; value: SqlValue };

const KEYWORDS = new Set(["AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"]);

/** Parses once (when the rule is added); the returned predicate runs per message. */
export function compileSqlFilter(expression: string): (read: PropertyReader) => boolean {
  const tokens = tokenize(expression);
  let position = 0;
  const fail = (reason: string): never => {
    throw new SqlFilterSyntaxError(expression, reason);
  };
  const peek = () => tokens[position];
  const keyword = (word: string) => {
    const token = peek();
    if (token?.kind === "ident" && token.value.toUpperCase() === word) {
      position++;
      return true;
    }
    return false;
  };
  const op = (value: string) => {
    const token = peek();
    if (token?.kind === "op" && token.value === value) {
      position++;
      return true;
    }
    return false;
  };

  const operand = (): Operand => {
    const token = tokens[position++];
    if (token === undefined) return fail("unexpected end of expression");
    if (token.kind === "string" || token.kind === "number") return { kind: "literal", value: token.value };
    if (token.kind === "ident") {
      const upper = token.value.toUpperCase();
      if (upper === "NULL") return { kind: "literal", value: null };
      if (upper === "TRUE" || upper === "FALSE") return { kind: "literal", value: upper === "TRUE" };
      if (KEYWORDS.has(upper)) return fail(`unexpected keyword ${token.value}`);
      const dot = token.value.indexOf(".");
      const prefix = dot > 0 ? token.value.slice(0, dot).toLowerCase() : "";
      if (prefix === "sys" || prefix === "user") {
        return { kind: "property", scope: prefix, name: token.value.slice(dot + 1) };
      }
      return { kind: "property", scope: "user", name: token.value };
    }
    return fail(`unexpected "${token.value}"`);
  };

  const primary = (): Node => {
    if (keyword("NOT")) return { kind: "not", operand: primary() };
    if (op("(")) {
      const inner = disjunction();
      if (!op(")")) fail("missing )");
      return inner;
    }
    const left = operand();
    if (keyword("IS")) {
      const negated = keyword("NOT");
      if (!keyword("NULL")) fail("expected NULL after IS");
      return { kind: "null", negated, operand: left };
    }
    const negatedIn = keyword("NOT");
    if (keyword("IN")) {
      if (!op("(")) fail("expected ( after IN");
      const values: Operand[] = [operand()];
      while (op(",")) values.push(operand());
      if (!op(")")) fail("missing ) after IN list");
      return { kind: "in", negated: negatedIn, operand: left, values };
    }
    if (negatedIn) fail("expected IN after NOT");
    if (op("=")) return { kind: "compare", op: "=", left, right: operand() };
    if (op("<>") || op("!=")) return { kind: "compare", op: "<>", left, right: operand() };
    return fail("expected a comparison (=, <>, IN, IS NULL); other operators are not supported");
  };
  const conjunction = (): Node => {
    let node = primary();
    while (keyword("AND")) node = { kind: "and", left: node, right: primary() };
    return node;
  };
  const disjunction = (): Node => {
    let node = conjunction();
    while (keyword("OR")) node = { kind: "or", left: node, right: conjunction() };
    return node;
  };

  const tree = disjunction();
  if (position < tokens.length) fail(`unexpected "${String(tokens[position]?.value)}"`);
  return (read) => evaluate(tree, read) === true;
}

/** Three-valued logic as in SQL: a comparison with a missing property is unknown (undefined). */
function evaluate(node: Node, read: PropertyReader): boolean | undefined {
  const value = (o: Operand): SqlValue => (o.kind === "literal" ? o.value : read(o.scope, o.name));
  switch (node.kind) {
    case "and": {
      const l = evaluate(node.left, read);
      const r = evaluate(node.right, read);
      if (l === false || r === false) return false;
      return l === true && r === true ? true : undefined;
    }
    case "or": {
      const l = evaluate(node.left, read);
      const r = evaluate(node.right, read);
      if (l === true || r === true) return true;
      return l === false && r === false ? false : undefined;
    }
    case "not": {
      const inner = evaluate(node.operand, read);
      return inner === undefined ? undefined : !inner;
    }
    case "compare": {
      const l = value(node.left);
      const r = value(node.right);
      if (l === null || l === undefined || r === null || r === undefined) return undefined;
      return node.op === "=" ? l === r : l !== r;
    }
    case "in": {
      const v = value(node.operand);
      if (v === null || v === undefined) return undefined;
      const found = node.values.some((candidate) => value(candidate) === v);
      return node.negated ? !found : found;
    }
    case "null": {
      const v = value(node.operand);
      const isNull = v === null || v === undefined;
      return node.negated ? !isNull : isNull;
    }
  }
}

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expression.length) {
    const c = expression[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let text = "";
      i++;
      for (;;) {
        if (i >= expression.length) throw new SqlFilterSyntaxError(expression, "unterminated string");
        if (expression[i] === "'") {
          if (expression[i + 1] === "'") {
            text += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += expression[i];
        i++;
      }
      tokens.push({ kind: "string", value: text });
    } else if (/[0-9]/.test(c)) {
      const match = /^[0-9]+(\.[0-9]+)?/.exec(expression.slice(i));
      const text = match?.[0] ?? c;
      tokens.push({ kind: "number", value: Number(text) });
      i += text.length;
    } else if (/[A-Za-z_$]/.test(c)) {
      const match = /^[A-Za-z_$][A-Za-z0-9_.$-]*/.exec(expression.slice(i));
      const text = match?.[0] ?? c;
      tokens.push({ kind: "ident", value: text });
      i += text.length;
    } else if (c === "[") {
      const end = expression.indexOf("]", i);
      if (end < 0) throw new SqlFilterSyntaxError(expression, "missing ]");
      tokens.push({ kind: "ident", value: expression.slice(i + 1, end) });
      i = end + 1;
    } else if (expression.startsWith("<>", i) || expression.startsWith("!=", i)) {
      tokens.push({ kind: "op", value: expression.slice(i, i + 2) });
      i += 2;
    } else if ("=(),".includes(c)) {
      tokens.push({ kind: "op", value: c });
      i++;
    } else {
      throw new SqlFilterSyntaxError(expression, `unsupported character "${c}"`);
    }
  }
  return tokens;
}
