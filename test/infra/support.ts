import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Template } from "aws-cdk-lib/assertions";

/** The context `cdk synth` runs with (feature flags from cdk.json), so tests synthesize the same template. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(new URL("../../cdk.json", import.meta.url), "utf8")) as {
    context?: Record<string, unknown>;
  };
  return { ...cdkJson.context };
}

/** A fresh cloud assembly directory; the caller removes it when done. */
export function temporaryOutdir(): string {
  return mkdtempSync(join(tmpdir(), "agentry-infra-test-"));
}

/** Context that skips asset bundling, for tests that only inspect the construct tree or IAM. */
export function withoutBundling(context: Record<string, unknown>): Record<string, unknown> {
  return { ...context, "aws:cdk:bundling-stacks": [] };
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
}

/** Every resource of one CloudFormation type, by logical id. */
export function resourcesOfType(template: Template, type: string): Record<string, CfnResource> {
  return template.findResources(type) as Record<string, CfnResource>;
}

/** The logical id a `{ Ref }` or `{ "Fn::GetAtt": [id, attr] }` points to. */
export function referencedId(value: unknown): string {
  if (typeof value === "object" && value !== null) {
    if ("Ref" in value && typeof value.Ref === "string") {
      return value.Ref;
    }
    if (
      "Fn::GetAtt" in value &&
      Array.isArray(value["Fn::GetAtt"]) &&
      typeof value["Fn::GetAtt"][0] === "string"
    ) {
      return value["Fn::GetAtt"][0];
    }
  }
  throw new Error(`expected a Ref or Fn::GetAtt, got ${JSON.stringify(value)}`);
}

/**
 * Renders a string property that may be an `Fn::Join` of literals and references, with each
 * reference shown as `<LogicalId>` — enough to parse the JSON the runtime will receive.
 */
export function renderJoin(value: unknown): string {
  if (typeof value === "string") {
    return value;
  }
  if (
    typeof value === "object" &&
    value !== null &&
    "Fn::Join" in value &&
    Array.isArray(value["Fn::Join"])
  ) {
    const [separator, parts] = value["Fn::Join"] as [string, unknown[]];
    return parts.map((part) => (typeof part === "string" ? part : `<${referencedId(part)}>`)).join(separator);
  }
  return `<${referencedId(value)}>`;
}

/** The statements of an IAM policy document, whether one statement or a list. */
export function statementsOf(document: unknown): Array<Record<string, unknown>> {
  const statement = (document as { Statement?: unknown }).Statement;
  if (statement === undefined) {
    return [];
  }
  return (Array.isArray(statement) ? statement : [statement]) as Array<Record<string, unknown>>;
}

/** A statement's actions as a list. */
export function actionsOf(statement: Record<string, unknown>): string[] {
  const action = statement.Action;
  if (action === undefined) {
    return [];
  }
  return (Array.isArray(action) ? action : [action]).map(String);
}
