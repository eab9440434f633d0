import { parseLogLevel } from "./logger.ts";
import { startLocalRuntime } from "./runtime.ts";

/** `npm start`: the whole platform on this machine, on the embedded adapters. */
async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`PORT must be an integer from 0 to 65535, got "${process.env.PORT}"`);
  }
  const emulated = process.argv.includes("--emulated");
  const azure = process.argv.includes("--azure");
  if (emulated && azure) throw new Error("choose one of --emulated and --azure");
  const realNamespace = Boolean(process.env.AZURE_SERVICE_BUS_CONNECTION_STRING);
  const dataDirAt = process.argv.indexOf("--data-dir");
  const dataDir = dataDirAt >= 0 ? process.argv[dataDirAt + 1] : undefined;
  if (dataDirAt >= 0 && (dataDir === undefined || dataDir.startsWith("--") || !emulated)) {
    throw new Error(
      "--data-dir <dir> needs a directory and --emulated (the embedded mode keeps nothing on disk)",
    );
  }
  if (emulated) console.log("Starting Amazon DynamoDB Local and the SQS emulator…");
  if (azure && !realNamespace) console.log("Starting the local Service Bus peer…");
  const runtime = await startLocalRuntime({
    port,
    logLevel: parseLogLevel(process.env.LOG_LEVEL),
    mode: emulated ? "emulated" : azure ? "azure" : "embedded",
    ...(dataDir !== undefined ? { dataDir } : {}),
  });
  const adapters = emulated
    ? "AWS adapters on DynamoDB Local + SQS emulator, Lambda workers"
    : azure
      ? `Azure Service Bus ${realNamespace ? "namespace" : "local peer"} for tasks and messages, poller workers`
      : "embedded adapters";
  console.log(`
  Agentry is running at ${runtime.url}  (${adapters}; Ctrl-C stops)

  Submit a task:
    curl -s -X POST ${runtime.url}/tasks -H 'content-type: application/json' \\
      -d '{"taskType":"analyze_text","input":{"text":"Agents talk. Workers work."}}'
  Then read it:
    curl -s ${runtime.url}/tasks/<taskId>
  API description: ${runtime.url}/openapi.json
  Dashboard: ${runtime.url}/   CLI: npx agentry --help
`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping (running tasks finish first)…`);
    await runtime.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
