/**
 * The slice of CloudFormation the local run of the synthesized app understands: the template's
 * shape, the physical resources the harness stands in for, and a resolver for the intrinsic
 * functions the stack uses. Anything else fails loudly, so a new intrinsic or resource kind in the
 * stack cannot be silently mis-resolved into a passing run.
 */

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, TemplateResource>;
}

/** What `Ref` and `Fn::GetAtt` of one logical id resolve to. */
export interface PhysicalResource {
  readonly type: string;
  readonly ref: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** Every resource of one type, by logical id. */
export function resourcesOfType(template: CfnTemplate, type: string): [string, TemplateResource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

export function propertiesOf(resource: TemplateResource): Record<string, unknown> {
  return resource.Properties ?? {};
}

/** The logical id a `{ Ref }` or `{ "Fn::GetAtt": [id, attr] }` points to, or undefined. */
export function referencedLogicalId(value: unknown): string | undefined {
  if (!isObject(value)) return undefined;
  if (typeof value.Ref === "string") return value.Ref;
  const getAtt = value["Fn::GetAtt"];
  if (Array.isArray(getAtt) && typeof getAtt[0] === "string") return getAtt[0];
  if (typeof getAtt === "string") return getAtt.split(".")[0];
  return undefined;
}

const INTRINSIC_KEY = /^(Ref|Fn::.+|Condition)$/;

/**
 * Resolves `Ref`, `Fn::GetAtt`, `Fn::Join` and `Fn::Sub` (with pseudo parameters) against the
 * resources the harness created. Throws, naming the place, on any other intrinsic and on a reference
 * to a resource the harness does not stand in for.
 *
 * @example
 * const resolver = new IntrinsicResolver(resources, { "AWS::Region": "us-east-1" });
 * resolver.resolveString(fn.Properties.Environment.Variables.TABLE_NAME, "TABLE_NAME");
 */
export class IntrinsicResolver {
  constructor(
    private readonly resources: ReadonlyMap<string, PhysicalResource>,
    private readonly pseudoParameters: Readonly<Record<string, string>>,
  ) {}

  resolve(value: unknown, where: string): unknown {
    if (Array.isArray(value)) return value.map((item, i) => this.resolve(item, `${where}[${i}]`));
    if (!isObject(value)) return value;
    const keys = Object.keys(value);
    const [only] = keys;
    if (keys.length === 1 && only !== undefined && INTRINSIC_KEY.test(only)) {
      return this.intrinsic(only, value[only], where);
    }
    return Object.fromEntries(keys.map((key) => [key, this.resolve(value[key], `${where}.${key}`)]));
  }

  resolveString(value: unknown, where: string): string {
    const resolved = this.resolve(value, where);
    if (typeof resolved !== "string") {
      throw new Error(`${where}: expected a string, got ${JSON.stringify(resolved)}`);
    }
    return resolved;
  }

  /** The logical id behind a physical value (a name, URL or ARN) the harness created. */
  logicalIdOf(physical: string): string | undefined {
    for (const [id, resource] of this.resources) {
      if (resource.ref === physical || Object.values(resource.attributes).includes(physical)) return id;
    }
    return undefined;
  }

  physical(logicalId: string, where: string): PhysicalResource {
    const resource = this.resources.get(logicalId);
    if (!resource) {
      throw new Error(
        `${where}: references ${logicalId}, which the local run does not stand in for (known: ${[...this.resources.keys()].join(", ")})`,
      );
    }
    return resource;
  }

  private intrinsic(name: string, argument: unknown, where: string): string {
    switch (name) {
      case "Ref":
        return this.ref(String(argument), where);
      case "Fn::GetAtt": {
        const [id, attribute] = Array.isArray(argument)
          ? (argument as unknown[]).map(String)
          : String(argument).split(/\.(.*)/s);
        return this.getAtt(String(id), String(attribute), where);
      }
      case "Fn::Join": {
        if (!Array.isArray(argument) || argument.length !== 2 || !Array.isArray(argument[1])) {
          throw new Error(`${where}: malformed Fn::Join ${JSON.stringify(argument)}`);
        }
        const [separator, parts] = argument as [unknown, unknown[]];
        return parts
          .map((part, i) => this.resolveString(part, `${where}.Fn::Join[${i}]`))
          .join(String(separator));
      }
      case "Fn::Sub":
        return this.sub(argument, where);
      default:
        throw new Error(
          `${where}: the local run does not know the intrinsic ${name} (${JSON.stringify(argument)})`,
        );
    }
  }

  private ref(target: string, where: string): string {
    const pseudo = this.pseudoParameters[target];
    if (pseudo !== undefined) return pseudo;
    if (target.startsWith("AWS::")) throw new Error(`${where}: unknown pseudo parameter ${target}`);
    return this.physical(target, where).ref;
  }

  private getAtt(id: string, attribute: string, where: string): string {
    const resource = this.physical(id, where);
    const value = resource.attributes[attribute];
    if (value === undefined) {
      throw new Error(
        `${where}: ${id} (${resource.type}) has no attribute ${attribute} in the local run (known: ${Object.keys(resource.attributes).join(", ")})`,
      );
    }
    return value;
  }

  private sub(argument: unknown, where: string): string {
    const [text, variables] = Array.isArray(argument) ? argument : [argument, {}];
    if (typeof text !== "string" || !isObject(variables)) {
      throw new Error(`${where}: malformed Fn::Sub ${JSON.stringify(argument)}`);
    }
    return text.replace(/\$\{(!?)([^}]*)\}/g, (_match, literal: string, name: string) => {
      // `${!Name}` is the literal text `${Name}`.
      if (literal === "!") return `\${${name}}`;
      if (Object.hasOwn(variables, name))
        return this.resolveString(variables[name], `${where}.Fn::Sub.${name}`);
      const dot = name.indexOf(".");
      if (dot > 0 && !name.startsWith("AWS::"))
        return this.getAtt(name.slice(0, dot), name.slice(dot + 1), where);
      return this.ref(name, where);
    });
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
