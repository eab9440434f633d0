import { fileURLToPath } from "node:url";
import { measureBundles } from "./bundles.ts";

/**
 * `npm run bench`: the performance numbers the README reports. Timing lives here, never in tests.
 * Sections can be picked: `npm run bench -- bundles`.
 */
const root = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const args = process.argv.slice(2);
const json = args.includes("--json");
const wanted = new Set(args.filter((a) => !a.startsWith("--")));
const run = (name: string) => wanted.size === 0 || wanted.has(name);

if (run("bundles")) {
  console.log(
    "\n## Lambda bundles (esbuild, ESM, minified; init = import in a fresh Node process, median of 5)\n",
  );
  console.log("| function | bundle | init |");
  console.log("| --- | ---: | ---: |");
  for (const m of await measureBundles(root)) {
    console.log(`| ${m.entry} | ${(m.bytes / 1024).toFixed(0)} KiB | ${m.initMs.toFixed(0)} ms |`);
  }
}

if (run("cost")) {
  const { costTable, measureCost } = await import("./cost.ts");
  const { PRICES } = await import("./prices.ts");
  const results = await measureCost(200);
  if (json) {
    console.log(JSON.stringify(Object.fromEntries(results.map((r) => [r.workload, r]))));
  } else {
    console.log(
      `\n## Cost per task on AWS (emulated stack, ${results[0]?.tasks} noop tasks per column; ${PRICES.region} list prices of ${PRICES.asOf}, bench/prices.ts; API Gateway and logs excluded)\n`,
    );
    console.log(costTable(results));
  }
}

if (run("throughput")) {
  const { measureThroughput } = await import("./throughput.ts");
  console.log(
    "\n## Throughput of one process (2 cores), submit over HTTP in batches of 100 until every task finished\n",
  );
  console.log("| runtime | tasks | tasks/s | latency p50 | p95 | p99 |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const [mode, tasks] of [
    ["embedded", 5_000],
    ["emulated", 500],
  ] as const) {
    const t = await measureThroughput(mode, tasks);
    console.log(
      `| ${mode} | ${t.tasks} | ${t.tasksPerSecond.toFixed(0)} | ${t.latencyMs.p50} ms | ${t.latencyMs.p95} ms | ${t.latencyMs.p99} ms |`,
    );
  }
}
