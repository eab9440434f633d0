import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { openSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleContainerEntry } from "../../infra/bundling/container-bundle.ts";
import { ESM_REQUIRE_BANNER } from "../../infra/constructs/agentry-function.ts";
import type { FaultSettings } from "./faults.ts";

/** The repository root: children run from here so `tsx` and the `#shared/*` imports resolve. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** What the runtime process prints on its `READY` line. */
export interface RuntimeInfo {
  readonly url: string;
  readonly dynamoEndpoint: string;
  readonly sqsEndpoint: string;
  readonly eventsEndpoint: string;
  readonly tableName: string;
  readonly queueUrls: Record<string, string>;
  readonly dlqUrls: Record<string, string>;
}

/**
 * The environment a child starts from: this one without AWS endpoint overrides (a test run sets them
 * for its own emulators), plus the fault injector's settings.
 */
function childEnv(faults: FaultSettings, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("AWS_") && !name.startsWith("VITEST") && value !== undefined) env[name] = value;
  }
  return { ...env, ...extra, CHAOS_FAULTS: JSON.stringify(faults), CHAOS_PARENT_PID: String(process.pid) };
}

function spawnNode(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  pipeStdout: boolean,
): ChildProcess {
  const log = openSync(logFile, "a");
  return spawn(process.execPath, args, {
    cwd: ROOT,
    env,
    stdio: ["ignore", pipeStdout ? "pipe" : log, log],
  });
}

/** Starts the runtime process on `dataDir` and resolves once it prints READY. */
export async function startRuntimeProcess(
  dataDir: string,
  faults: FaultSettings,
  logFile: string,
): Promise<{ child: ChildProcess; info: RuntimeInfo }> {
  const child = spawnNode(
    ["--import", "tsx", "--import", "./test/chaos/faults.ts", "test/chaos/runtime-process.ts"],
    childEnv(faults, { DATA_DIR: dataDir }),
    logFile,
    true,
  );
  let output = "";
  const info = await new Promise<RuntimeInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the runtime did not start:\n${output}`)), 120_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const ready = /READY (\{.*\})\n/.exec(output);
      if (ready?.[1]) {
        clearTimeout(timer);
        resolve(JSON.parse(ready[1]) as RuntimeInfo);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the runtime exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
  // Keep draining its stdout, or the child would block once the pipe fills.
  child.stdout?.resume();
  return { child, info };
}

/**
 * Bundles the worker process (test/chaos/worker-entry.ts: the fault injector, then the ECS entry
 * `functions/containers/worker.ts`) as the container image bundles it: workers are killed and started
 * every few seconds, and a bundle starts in a fraction of the time tsx needs to load the sources.
 */
export function bundleWorker(outdir: string): string {
  return bundleContainerEntry({
    entry: join(ROOT, "test/chaos/worker-entry.ts"),
    outdir,
    projectRoot: ROOT,
    banner: ESM_REQUIRE_BANNER,
  });
}

/**
 * Starts one container worker process from the bundle for the chaos capability, on the runtime
 * process's emulators and PutEvents receiver.
 */
export function startWorkerProcess(
  bundle: string,
  info: RuntimeInfo,
  settings: { capability: string; eventBus: string; config: unknown; shards: number; label: string },
  faults: FaultSettings,
  logFile: string,
): ChildProcess {
  const env = childEnv(faults, {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_ENDPOINT_URL_DYNAMODB: info.dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: info.sqsEndpoint,
    AWS_ENDPOINT_URL_EVENTBRIDGE: info.eventsEndpoint,
    TABLE_NAME: info.tableName,
    EVENT_BUS_NAME: settings.eventBus,
    QUEUE_URLS: JSON.stringify(info.queueUrls),
    DLQ_URLS: JSON.stringify(info.dlqUrls),
    STORE_SHARDS: String(settings.shards),
    PLATFORM_CONFIG: JSON.stringify(settings.config),
    CAPABILITIES: settings.capability,
    WORKER_CONCURRENCY: "8",
    POLL_WAIT_SECONDS: "1",
    DRAIN_SECONDS: "0",
    HEALTH_PORT: "0",
    AGENT_ID: settings.label,
    POWERTOOLS_SERVICE_NAME: settings.label,
    POWERTOOLS_LOG_LEVEL: "WARN",
  });
  return spawnNode([bundle], env, logFile, false);
}

/** Sends `signal` and resolves once the child has exited; SIGKILL after `graceMs`. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals,
  graceMs = 20_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
