import { fileURLToPath } from "node:url";
import { measureBundles } from "./bundles.ts";

/**
 * `npm run bench`: the performance numbers the README reports. Timing lives here, never in tests.
 * Sections can be picked: `npm run bench -- bundles` (bundles, cost, throughput); `-- cost --json`
 * prints the cost as one JSON object for scripts that track it.
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
  const { findRedisServer, measureBullmq, REDIS_INSTALL_HINT, startRedis } = await import("./bullmq-peer.ts");
  const tasks = 10_000;
  const runs = 5;
  const redisServer = findRedisServer();
  if (!redisServer)
    console.log(
      `\nBullMQ peer SKIPPED: redis-server is not installed (${REDIS_INSTALL_HINT}); the embedded runtime runs alone.`,
    );
  const redis = redisServer ? await startRedis(redisServer) : undefined;
  const embedded: Row[] = [];
  const bullmq: Row[] = [];
  try {
    // One unreported warm-up round each (JIT, connections), then interleaved runs, so a load spike on
    // the shared machine hits both sides alike.
    await measureThroughput("embedded", 2_000);
    if (redis) await measureBullmq(redis, 2_000, 8);
    for (let i = 0; i < runs; i++) {
      embedded.push(await measureThroughput("embedded", tasks));
      if (redis) bullmq.push(await measureBullmq(redis, tasks, 8));
    }
  } finally {
    await redis?.stop();
  }
  const emulated = await measureThroughput("emulated", 500);
  console.log(
    `\n## Throughput of one process (2 cores): ${tasks} echo tasks, submitted in batches of 100 until every one completed, worker concurrency 8; median of ${runs} interleaved runs after a warm-up round\n`,
  );
  console.log(
    "| runtime | tasks | tasks/s (median) | tasks/s (all runs) | CPU per task | latency p50 | p95 | p99 |",
  );
  console.log("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
  const line = (name: string, rows: Row[]) => {
    const m = median(rows);
    const all = rows.map((r) => r.tasksPerSecond.toFixed(0)).join(", ");
    console.log(
      `| ${name} | ${m.tasks} | ${m.tasksPerSecond.toFixed(0)} | ${all} | ${m.cpuMicrosPerTask.toFixed(0)} µs | ${m.latencyMs.p50} ms | ${m.latencyMs.p95} ms | ${m.latencyMs.p99} ms |`,
    );
  };
  line("embedded (`npm start`, over HTTP)", embedded);
  if (redis) line("BullMQ 5 + local redis-server (addBulk)", bullmq);
  else console.log("| BullMQ 5 | skipped: redis-server is not installed | | | | | | |");
  line("emulated (DynamoDB Local + fauxqs), 1 run", [emulated]);
  if (redis) {
    const ratio = median(embedded).tasksPerSecond / median(bullmq).tasksPerSecond;
    console.log(
      "\nCPU per task: the embedded runtime's one process (HTTP client, server, workers); BullMQ's Node process (client, worker) plus redis-server.",
    );
    console.log(
      `embedded / BullMQ (same run, medians): ${ratio.toFixed(2)}x (target >= 0.5x, stretch >= 1x)`,
    );
  }
}

interface Row {
  readonly tasks: number;
  readonly tasksPerSecond: number;
  readonly cpuMicrosPerTask: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
}

/** The run with the median throughput (its latencies come with it); a dash row when there is none. */
function median(rows: readonly Row[]): Row {
  const sorted = [...rows].sort((a, b) => a.tasksPerSecond - b.tasksPerSecond);
  return (
    sorted[Math.floor(sorted.length / 2)] ?? {
      tasks: 0,
      tasksPerSecond: Number.NaN,
      cpuMicrosPerTask: Number.NaN,
      latencyMs: { p50: 0, p95: 0, p99: 0 },
    }
  );
}
