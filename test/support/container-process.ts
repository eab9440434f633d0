import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface ContainerProcess {
  readonly child: ChildProcess;
  /** The agent id the worker registered under (from its start-up log line). */
  readonly agentId: string;
  readonly healthUrl: string;
  /** Every JSON log line so far; non-JSON lines as `{ raw }`. */
  readonly logs: readonly Record<string, unknown>[];
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal; resolves when the process has exited. */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs a bundled container worker (`node index.mjs`) as a child process with exactly `env`, as ECS
 * would run the image, and waits for its start-up log line.
 *
 * @example
 * const worker = await startContainerProcess(bundleFile, env);
 * await worker.stop("SIGTERM"); // { code: 0, signal: null }
 */
export async function startContainerProcess(
  file: string,
  env: Readonly<Record<string, string>>,
  startTimeoutMs = 30_000,
): Promise<ContainerProcess> {
  const child = spawn(process.execPath, [file], { env: { ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let started: ((line: Record<string, unknown>) => void) | undefined;
  const startLine = new Promise<Record<string, unknown>>((resolve) => {
    started = resolve;
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        entry = { raw: line };
      }
      logs.push(entry);
      if (entry.message === "container worker started") started?.(entry);
    });
  }
  let timer: NodeJS.Timeout | undefined;
  const line = await Promise.race([
    startLine,
    exited.then(({ code }) => {
      throw new Error(`the container worker exited (${code}) before starting: ${JSON.stringify(logs)}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`the container worker did not start in ${startTimeoutMs} ms: ${JSON.stringify(logs)}`),
          ),
        startTimeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  return {
    child,
    agentId: String(line.agentId),
    healthUrl: `http://127.0.0.1:${String(line.port)}/health`,
    logs,
    exited,
    stop(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
