import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { platformConfig } from "#shared/agents/workers";
import { lambdaBundleAliases } from "../infra/bundling/aliases.ts";
import { ESBUILD_TARGET } from "../infra/node-runtime.ts";

/**
 * Every Lambda entry point, bundled the way the CDK stack bundles it (infra/constructs/agentry-function.ts):
 * the `.ts` files of `functions/` and `functions/workers/` (code the entries share lives in `functions/lib/`).
 */
export function lambdaEntries(root: string): string[] {
  const functions = join(root, "functions");
  const workers = join(functions, "workers");
  return [
    ...readdirSync(functions)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => join(functions, f)),
    ...readdirSync(workers)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => join(workers, f)),
  ].sort();
}

export interface BundleMeasurement {
  readonly entry: string;
  readonly bytes: number;
  /** Median time to import the bundle in a fresh Node process, module-scope init included. */
  readonly initMs: number;
  readonly initSamplesMs: readonly number[];
}

const REQUIRE_BANNER =
  "import { createRequire as __agentryCreateRequire } from 'node:module'; const require = __agentryCreateRequire(import.meta.url);";

/** Environment a deployed function gets, pointed at nothing: init must not call AWS. */
const DUMMY_ENV = {
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "bench",
  AWS_SECRET_ACCESS_KEY: "bench",
  TABLE_NAME: "agentry-bench",
  EVENT_BUS_NAME: "agentry",
  QUEUE_URLS: JSON.stringify({
    "text-analysis": "https://sqs.us-east-1.amazonaws.com/000000000000/ta",
    "text-analysis-high": "https://sqs.us-east-1.amazonaws.com/000000000000/ta-high",
    summarization: "https://sqs.us-east-1.amazonaws.com/000000000000/su",
    "summarization-high": "https://sqs.us-east-1.amazonaws.com/000000000000/su-high",
    diagnostics: "https://sqs.us-east-1.amazonaws.com/000000000000/di",
    "diagnostics-high": "https://sqs.us-east-1.amazonaws.com/000000000000/di-high",
  }),
  DLQ_URLS: "{}",
  POWERTOOLS_SERVICE_NAME: "bench",
  POWERTOOLS_METRICS_NAMESPACE: "Agentry",
  POWERTOOLS_DEV: "false",
  AWS_LAMBDA_FUNCTION_NAME: "bench",
  // As the stack sets them: the deployed configuration, and the worker entry's capability.
  PLATFORM_CONFIG: JSON.stringify(platformConfig),
  CAPABILITY: platformConfig.capabilities[0]?.name ?? "",
};

/** Bundles one entry as AgentryFunction does (infra/constructs/agentry-function.ts) and returns the file. */
export async function bundleLambdaEntry(root: string, entry: string, outdir: string): Promise<string> {
  const name = entry
    .slice(root.length + 1)
    .replace(/\.ts$/, "")
    .replaceAll("/", "-");
  const outfile = join(outdir, `${name}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: ESBUILD_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ["module", "main"],
    banner: { js: REQUIRE_BANNER },
    // As AgentryFunction bundles (infra/bundling/aliases.ts).
    alias: lambdaBundleAliases(root),
    logLevel: "error",
  });
  return outfile;
}

export async function measureBundles(root: string, samples = 5): Promise<BundleMeasurement[]> {
  const outdir = mkdtempSync(join(tmpdir(), "agentry-bench-"));
  const results: BundleMeasurement[] = [];
  for (const entry of lambdaEntries(root)) {
    const outfile = await bundleLambdaEntry(root, entry, outdir);
    const initSamplesMs: number[] = [];
    for (let i = 0; i < samples; i++) {
      const out = execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const t = performance.now(); await import(${JSON.stringify(outfile)}); console.log(performance.now() - t);`,
        ],
        { env: { ...DUMMY_ENV, PATH: process.env.PATH ?? "" }, encoding: "utf8" },
      );
      initSamplesMs.push(Number(out.trim().split("\n").at(-1)));
    }
    const sorted = [...initSamplesMs].sort((a, b) => a - b);
    results.push({
      entry: entry.slice(root.length + 1),
      bytes: statSync(outfile).size,
      initMs: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
      initSamplesMs,
    });
  }
  return results;
}
