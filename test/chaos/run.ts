import { parseArgs } from "node:util";
import { formatReport, runChaos } from "./chaos.ts";

/**
 * `npm run chaos [-- --tasks N] [--seed S] [--data-dir DIR]`: the bounded chaos run (test/chaos/chaos.ts);
 * prints its report and exits 1 on any invariant violation.
 */
const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "2000" },
    seed: { type: "string" },
    workers: { type: "string" },
    "data-dir": { type: "string" },
    quiet: { type: "boolean", default: false },
  },
});
const number = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return value;
};
const tasks = number("tasks", values.tasks);
const seed = number("seed", values.seed);
const workers = number("workers", values.workers);
const report = await runChaos({
  ...(tasks === undefined ? {} : { tasks }),
  ...(seed === undefined ? {} : { seed }),
  ...(workers === undefined ? {} : { workers }),
  ...(values["data-dir"] === undefined ? {} : { dataDir: values["data-dir"] }),
  ...(values.quiet ? {} : { progress: (line: string) => console.error(`[chaos] ${line}`) }),
});
console.log(formatReport(report));
if (report.violations.length > 0) {
  console.error(`kept the data and logs in ${report.dataDir}`);
  process.exit(1);
}
