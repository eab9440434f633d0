import { fileURLToPath } from "node:url";
import { measureBundles } from "./bundles.ts";

/**
 * `npm run bench`: the performance numbers the README reports. Timing lives here, never in tests.
 * Sections can be picked: `npm run bench -- bundles`.
 */
const root = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const wanted = new Set(process.argv.slice(2));
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
