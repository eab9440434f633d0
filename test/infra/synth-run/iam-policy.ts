import {
  type CfnTemplate,
  type IntrinsicResolver,
  isObject,
  propertiesOf,
  referencedLogicalId,
  resourcesOfType,
} from "./cfn.ts";

export interface PolicyStatement {
  readonly effect: "Allow" | "Deny";
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  /** Where it comes from, for messages. */
  readonly source: string;
}

/**
 * Every identity-policy statement that applies to a role: the AWS::IAM::Policy resources attached to
 * it and its inline policies, with resources resolved to the emulator resources' ARNs. Elements the
 * check cannot evaluate (managed policies, NotAction, NotResource, Condition) fail loudly instead of
 * being ignored.
 *
 * @example
 * const statements = statementsOfRole(template, "PlatformApiHandlerRole69834FD1", resolver);
 */
export function statementsOfRole(
  template: CfnTemplate,
  roleLogicalId: string,
  resolver: IntrinsicResolver,
): PolicyStatement[] {
  const role = template.Resources[roleLogicalId];
  if (role?.Type !== "AWS::IAM::Role") throw new Error(`${roleLogicalId} is not an AWS::IAM::Role`);
  const roleProperties = propertiesOf(role);
  if (Array.isArray(roleProperties.ManagedPolicyArns) && roleProperties.ManagedPolicyArns.length > 0) {
    throw new Error(`${roleLogicalId} has managed policies, which the check cannot read`);
  }
  const documents: { source: string; document: unknown }[] = [];
  for (const [index, policy] of (Array.isArray(roleProperties.Policies)
    ? roleProperties.Policies
    : []
  ).entries()) {
    documents.push({
      source: `${roleLogicalId}.Policies[${index}]`,
      document: isObject(policy) ? policy.PolicyDocument : undefined,
    });
  }
  for (const [policyId, policy] of resourcesOfType(template, "AWS::IAM::Policy")) {
    const properties = propertiesOf(policy);
    const roles = Array.isArray(properties.Roles) ? properties.Roles.map(referencedLogicalId) : [];
    if (roles.includes(roleLogicalId))
      documents.push({ source: policyId, document: properties.PolicyDocument });
  }
  for (const [policyId, policy] of resourcesOfType(template, "AWS::IAM::ManagedPolicy")) {
    const roles = propertiesOf(policy).Roles;
    if (Array.isArray(roles) && roles.map(referencedLogicalId).includes(roleLogicalId)) {
      throw new Error(
        `${policyId} (a managed policy) is attached to ${roleLogicalId}; the check cannot read it`,
      );
    }
  }

  return documents.flatMap(({ source, document }) => {
    const raw = isObject(document) ? document.Statement : undefined;
    const statements = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    return statements.map((statement: unknown, index) => {
      const where = `${source}.Statement[${index}]`;
      if (!isObject(statement)) throw new Error(`${where} is not an object`);
      for (const unsupported of ["NotAction", "NotResource", "Condition", "NotPrincipal"]) {
        if (statement[unsupported] !== undefined)
          throw new Error(`${where} has ${unsupported}, which the check cannot evaluate`);
      }
      const effect = statement.Effect;
      if (effect !== "Allow" && effect !== "Deny") throw new Error(`${where} has Effect ${String(effect)}`);
      const list = (value: unknown) => (Array.isArray(value) ? value : value === undefined ? [] : [value]);
      return {
        effect,
        actions: list(statement.Action).map(String),
        resources: list(statement.Resource).map((resource, i) =>
          resolver.resolveString(resource, `${where}.Resource[${i}]`),
        ),
        source: where,
      };
    });
  });
}

/**
 * IAM's evaluation for one request within one account and identity policies only: an explicit Deny
 * wins, else some Allow must match both the action (case-insensitive, `*` and `?` wildcards) and the
 * resource (case-sensitive, same wildcards).
 */
export function isAllowed(statements: readonly PolicyStatement[], action: string, resource: string): boolean {
  const matching = statements.filter(
    (s) =>
      s.actions.some((a) => wildcardMatch(a, action, true)) &&
      s.resources.some((r) => wildcardMatch(r, resource, false)),
  );
  return !matching.some((s) => s.effect === "Deny") && matching.some((s) => s.effect === "Allow");
}

/** The action patterns the Allow statements grant. */
export function grantedActions(statements: readonly PolicyStatement[]): string[] {
  return [...new Set(statements.filter((s) => s.effect === "Allow").flatMap((s) => s.actions))].sort();
}

const compiledPatterns = new Map<string, RegExp>();

/** IAM's wildcards: `*` any run of characters, `?` one character; everything else literal. */
export function wildcardMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const key = `${ignoreCase ? "i" : "s"}:${pattern}`;
  let regex = compiledPatterns.get(key);
  if (regex === undefined) {
    const source = pattern
      .split("")
      .map((char) => (char === "*" ? ".*" : char === "?" ? "." : char.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
      .join("");
    regex = new RegExp(`^${source}$`, ignoreCase ? "is" : "s");
    compiledPatterns.set(key, regex);
  }
  return regex.test(value);
}
