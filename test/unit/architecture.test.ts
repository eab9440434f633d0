import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The dependency rule (README, "Architecture"), checked on the source: functions, local and infra → core →
 * ports → domain; adapters implement ports and never import each other or core; core imports no SDK.
 */
const root = fileURLToPath(new URL("../..", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1] ?? "");
}

function violations(dir: string, forbidden: (specifier: string) => boolean): string[] {
  return sourceFiles(dir).flatMap((file) =>
    importsOf(file)
      .filter(forbidden)
      .map((specifier) => `${relative(root, join(root, file))} imports ${specifier}`),
  );
}

const isSdk = (s: string) => s.startsWith("@aws-sdk/") || s.startsWith("@azure/") || s.startsWith("@smithy/");

describe("dependency rule", () => {
  it("keeps shared/core free of SDKs, adapters, HTTP and the worker SDK", () => {
    expect(
      violations(
        "shared/core",
        (s) =>
          isSdk(s) ||
          s.startsWith("#shared/adapters") ||
          s.startsWith("#shared/http") ||
          s.startsWith("#shared/worker"),
      ),
    ).toEqual([]);
  });

  it("keeps shared/ports and shared/domain free of core, adapters and SDKs", () => {
    const outward = (s: string) => isSdk(s) || /^#shared\/(core|adapters|http|worker)/.test(s);
    expect([...violations("shared/ports", outward), ...violations("shared/domain", outward)]).toEqual([]);
  });

  it("keeps adapters from importing core or each other", () => {
    expect([
      ...violations("shared/adapters/memory", (s) => /^#shared\/(core|adapters\/(aws|azure))/.test(s)),
      ...violations("shared/adapters/aws", (s) => /^#shared\/(core|adapters\/(memory|azure))/.test(s)),
      ...violations("shared/adapters/azure", (s) => /^#shared\/(core|adapters\/(memory|aws))/.test(s)),
    ]).toEqual([]);
  });

  it("keeps infra from importing runtime code other than the typed config and the worker registrations", () => {
    const allowed = new Set(["#shared/config/platform", "#shared/agents/workers"]);
    expect(violations("infra", (s) => s.startsWith("#shared/") && !allowed.has(s))).toEqual([]);
  });

  it("finds the imports it checks (the scan itself works)", () => {
    expect(importsOf("shared/core/supervisor.ts")).toContain("#shared/ports/task-store");
  });
});
