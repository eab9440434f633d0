import { fileURLToPath } from "node:url";
import { cruise, type ICruiseResult } from "dependency-cruiser";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";
import { beforeAll, describe, expect, it } from "vitest";

/**
 * No import circle anywhere in the source, checked with dependency-cruiser on the real module graph
 * (`#shared/*` subpath imports resolved through package.json `imports`, type-only imports included:
 * a circle of types is still a circle a reader has to untangle).
 */
const root = fileURLToPath(new URL("../..", import.meta.url));
const SOURCE = ["shared", "functions", "local", "infra", "scripts", "bench"];

describe("import graph", () => {
  let result: ICruiseResult;

  beforeAll(async () => {
    const previous = process.cwd();
    process.chdir(root);
    try {
      const reported = await cruise(
        SOURCE,
        {
          tsPreCompilationDeps: true,
          doNotFollow: { path: "node_modules" },
          exclude: { path: "(^|/)(node_modules|cdk\\.out)/" },
          validate: true,
          ruleSet: {
            forbidden: [{ name: "no-circular", severity: "error", from: {}, to: { circular: true } }],
          },
        },
        {
          conditionNames: ["import", "node", "default"],
          exportsFields: ["exports"],
          mainFields: ["module", "main"],
        },
        { tsConfig: extractTSConfig("tsconfig.json") },
      );
      result = reported.output as ICruiseResult;
    } finally {
      process.chdir(previous);
    }
  }, 120_000);

  it("resolves the subpath imports it has to follow (the check itself works)", () => {
    const api = result.modules.find((m) => m.source === "functions/supervisor-api.ts");
    expect(api?.dependencies.map((d) => d.resolved)).toContain("shared/core/platform.ts");
    expect(
      result.modules
        .flatMap((m) => m.dependencies)
        .filter((d) => d.couldNotResolve && d.module.startsWith("#")),
    ).toEqual([]);
  });

  it("has no circular imports", () => {
    const circles = result.summary.violations
      .filter((v) => v.rule.name === "no-circular")
      .map((v) => [v.from, ...(v.cycle ?? []).map((step) => step.name)].join(" → "));
    expect(circles).toEqual([]);
  });
});
