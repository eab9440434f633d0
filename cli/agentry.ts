import { readFile } from "node:fs/promises";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { AgentryClient, type AgentryClient as Client, type ClientAuth } from "#shared/client/client";
import { AgentryApiError, ApiUnreachableError, WaitTimeoutError } from "#shared/client/errors";
import { AGENT_STATUSES } from "#shared/domain/agent";
import { TASK_STATUSES } from "#shared/domain/task";
import { startDashboardProxy } from "./dashboard-proxy.ts";
import { ago, duration, pretty, progressLine, table } from "./format.ts";

/**
 * `agentry`: the command line for the Agentry API, on the typed client. Exit codes:
 * 0 done; 1 the task or job ended failed, canceled or rejected; 2 bad usage or input;
 * 3 the API answered with an error; 4 the API could not be reached; 5 `--wait`/`--watch` timed out.
 */
export const EXIT = { ok: 0, unsuccessful: 1, usage: 2, api: 3, unreachable: 4, timeout: 5 } as const;

export const DEFAULT_API_URL = "http://127.0.0.1:3000";

/** Output streams and exit, injectable so the program can run inside a test or another tool. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
}

interface GlobalOptions {
  readonly api: string;
  readonly auth: "auto" | "none" | "sigv4" | "bearer";
  readonly region?: string;
  readonly token?: string;
  readonly json?: boolean;
}

/** A problem with what the user typed (input JSON, a file): exit 2, nothing sent. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Ends a command with an exit code after it has printed what it had to say. */
class ExitCodeError extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = "ExitCodeError";
  }
}

const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  the task or job ended failed, canceled or rejected (--wait, --watch)
  2  bad usage or input (nothing was sent)
  3  the API answered with an error (its code and message are printed)
  4  the API could not be reached
  5  --wait or --watch gave up before the end (the task or job goes on)

Environment:
  AGENTRY_API_URL  the API (default ${DEFAULT_API_URL}, the local runtime of npm start)
  AGENTRY_TOKEN    bearer token for a stack deployed with the JWT authorizer
  AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID…  credentials for SigV4 (default AWS provider chain)`;

/**
 * Builds the program. `run` parses and executes, returning the exit code instead of exiting, so
 * the bin can `process.exit` with it and tests can call it in-process.
 *
 * @example
 * const code = await runCli(["submit", "analyze_text", "--input", '{"text":"Hi."}', "--wait"]);
 */
export async function runCli(argv: readonly string[], io: CliIo = process): Promise<number> {
  const out = (text: string) => io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  const err = (text: string) => io.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
  const program = new Command("agentry")
    .description("Submit, watch and inspect Agentry tasks, jobs and agents.")
    .addOption(
      new Option("--api <url>", "base URL of the Agentry API")
        .env("AGENTRY_API_URL")
        .default(DEFAULT_API_URL),
    )
    .addOption(
      new Option("--auth <mode>", "auto: SigV4 for an execute-api URL, none otherwise")
        .choices(["auto", "none", "sigv4", "bearer"])
        .default("auto"),
    )
    .addOption(
      new Option("--region <region>", "SigV4 region when the URL does not name one").env("AWS_REGION"),
    )
    .addOption(new Option("--token <token>", "bearer token (--auth bearer)").env("AGENTRY_TOKEN"))
    .option("--json", "machine-readable JSON on stdout")
    .showHelpAfterError("(add --help for usage)")
    .addHelpText("after", EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

  const globals = (command: Command) => command.optsWithGlobals<GlobalOptions>();
  const clientOf = (command: Command) => createClient(globals(command));
  const json = (command: Command) => globals(command).json === true;

  program
    .command("submit")
    .description("submit a task; with --wait, print its result")
    .argument("<taskType>", "the task type, e.g. analyze_text")
    .requiredOption("--input <json|@file>", "the task input: JSON, or @path to a JSON file")
    .option("--capability <name>", "route to this capability instead of the task type's")
    .option("--priority <n>", "-100 to 100; 5 and up use the high tier", integer)
    .option("--idempotency-key <key>", "makes the submission safe to repeat")
    .option("--timeout <seconds>", "per-attempt timeout", integer)
    .option("--max-attempts <n>", "attempts before the task fails", integer)
    .option("--wait", "wait for the end; exit 1 unless it completed")
    .option("--wait-timeout <seconds>", "give up waiting after this long (exit 5)", integer, 300)
    .action(async (taskType: string, options, command: Command) => {
      const client = clientOf(command);
      const input = await readJsonArgument(options.input, "--input");
      const submitted = await client.submitTask(
        {
          taskType,
          input: input as never,
          ...(options.capability !== undefined ? { requiredCapability: options.capability } : {}),
          ...(options.priority !== undefined ? { priority: options.priority } : {}),
          ...(options.timeout !== undefined ? { timeoutSeconds: options.timeout } : {}),
          ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
        },
        options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {},
      );
      if (!options.wait) {
        out(json(command) ? pretty(submitted) : `${submitted.taskId}  ${submitted.status}`);
        return;
      }
      if (!json(command)) err(`task ${submitted.taskId} ${submitted.status}; waiting…`);
      const task = await client.waitForTask(submitted.taskId, { timeoutMs: options.waitTimeout * 1000 });
      if (json(command)) out(pretty(task));
      const took = task.result?.executionTimeMs;
      if (task.status === "completed") {
        if (!json(command)) {
          err(
            `task ${task.taskId} completed${took === undefined ? "" : ` in ${duration(took)}`} (attempt ${task.attempts})`,
          );
          out(pretty(task.result?.output ?? null));
        }
        return;
      }
      err(
        `task ${task.taskId} ${task.status}${task.error ? `: ${task.error.code}: ${task.error.message}` : ""}`,
      );
      throw new ExitCodeError(EXIT.unsuccessful);
    });

  program
    .command("task")
    .description("show a task: status, input, result or error, attempts, timeline")
    .argument("<taskId>")
    .action(async (taskId: string, _options, command: Command) => {
      const task = await clientOf(command).getTask(taskId);
      if (json(command)) return void out(pretty(task));
      const rows: [string, string][] = [
        ["task", task.taskId],
        ["type", task.taskType],
        [
          "status",
          task.status + (task.cancelRequested && task.status === "working" ? " (cancel requested)" : ""),
        ],
        ["capability", task.requiredCapability],
        ["priority", String(task.priority)],
        ["attempts", `${task.attempts} of ${task.maxAttempts}`],
        ...(task.workerAgentId ? [["worker", task.workerAgentId] as [string, string]] : []),
        ...(task.jobId ? [["job", task.jobId] as [string, string]] : []),
        ["created", task.createdAt],
        ...(task.startedAt ? [["started", task.startedAt] as [string, string]] : []),
        ...(task.completedAt ? [["ended", task.completedAt] as [string, string]] : []),
        ["input", JSON.stringify(task.input)],
        ...(task.result ? [["result", JSON.stringify(task.result.output ?? null)] as [string, string]] : []),
        ...(task.error ? [["error", `${task.error.code}: ${task.error.message}`] as [string, string]] : []),
      ];
      out(rows.map(([name, value]) => `${name.padEnd(10)}  ${value}`).join("\n"));
    });

  program
    .command("tasks")
    .description("list tasks, newest first")
    .addOption(new Option("--status <status>", "only tasks in this status").choices(TASK_STATUSES))
    .option("--type <taskType>", "only tasks of this type")
    .option("--limit <n>", "at most this many (1-100)", integer, 20)
    .option("--cursor <cursor>", "the next page (printed after a full page)")
    .action(async (options, command: Command) => {
      const page = await clientOf(command).listTasks({
        limit: options.limit,
        ...(options.status !== undefined ? { status: options.status } : {}),
        ...(options.type !== undefined ? { taskType: options.type } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      });
      if (json(command)) return void out(pretty(page));
      out(
        table(
          ["TASK", "TYPE", "STATUS", "ATTEMPTS", "CREATED"],
          page.items.map((task) => [
            task.taskId,
            task.taskType,
            task.status,
            String(task.attempts),
            ago(task.createdAt),
          ]),
        ),
      );
      if (page.nextCursor !== undefined) err(`more: --cursor ${page.nextCursor}`);
    });

  program
    .command("cancel")
    .description("cancel a task (a working task stops cooperatively)")
    .argument("<taskId>")
    .action(async (taskId: string, _options, command: Command) => {
      const task = await clientOf(command).cancelTask(taskId);
      if (json(command)) return void out(pretty(task));
      out(
        `${task.taskId}  ${task.status}${task.cancelRequested && task.status !== "canceled" ? " (cancel requested)" : ""}`,
      );
    });

  const job = program.command("job").description("submit, watch, show or cancel a job");
  job
    .command("submit")
    .description("submit a job from a JSON file; with --watch, show progress and the result")
    .argument("<file>", "the job: @path or path to JSON ({ tasks, aggregation } or { steps })")
    .option("--watch", "show progress until the job ends; exit 1 unless it completed")
    .option("--wait-timeout <seconds>", "give up watching after this long (exit 5)", integer, 3600)
    .action(async (file: string, options, command: Command) => {
      const client = clientOf(command);
      const body = await readJsonArgument(file.startsWith("@") ? file : `@${file}`, "job file");
      const submitted = await client.submitJob(body as never);
      if (!options.watch) {
        out(
          json(command)
            ? pretty(submitted)
            : `${submitted.jobId}  ${submitted.taskIds.length} tasks submitted`,
        );
        return;
      }
      err(`job ${submitted.jobId}: ${submitted.taskIds.length} tasks submitted`);
      const view = await watchJob(client, submitted.jobId, options.waitTimeout * 1000, io);
      await reportJob(view, json(command), out, err);
    });
  job
    .command("show", { isDefault: true })
    .description("show a job (the default: agentry job <jobId>)")
    .argument("<jobId>")
    .option("--watch", "show progress until the job ends")
    .option("--wait-timeout <seconds>", "give up watching after this long (exit 5)", integer, 3600)
    .action(async (jobId: string, options, command: Command) => {
      const client = clientOf(command);
      const view = options.watch
        ? await watchJob(client, jobId, options.waitTimeout * 1000, io)
        : await client.getJob(jobId);
      if (view.status === "working") {
        if (json(command)) return void out(pretty(view));
        out(`job ${view.jobId}  working\n${progressLine(view, Date.now() - Date.parse(view.createdAt))}`);
        return;
      }
      await reportJob(view, json(command), out, err);
    });
  job
    .command("cancel")
    .description("cancel a job and its remaining tasks")
    .argument("<jobId>")
    .action(async (jobId: string, _options, command: Command) => {
      const view = await clientOf(command).cancelJob(jobId);
      out(json(command) ? pretty(view) : `${view.jobId}  ${view.status}`);
    });

  program
    .command("agents")
    .description("list registered agents with their status and last heartbeat")
    .option("--capability <name>", "only agents serving this capability")
    .addOption(new Option("--status <status>", "only agents in this status").choices(AGENT_STATUSES))
    .action(async (options, command: Command) => {
      const agents = await clientOf(command).listAgents({
        ...(options.capability !== undefined ? { capability: options.capability } : {}),
        ...(options.status !== undefined ? { status: options.status } : {}),
      });
      if (json(command)) return void out(pretty(agents));
      out(
        table(
          ["AGENT", "TYPE", "STATUS", "TASKS", "LAST HEARTBEAT", "CAPABILITIES"],
          agents.map((agent) => [
            agent.agentId,
            agent.agentType,
            agent.status,
            `${agent.currentTaskCount}/${agent.capabilities.maxConcurrentTasks}`,
            ago(agent.lastHeartbeat),
            [...agent.capabilities.supportedTools, ...agent.capabilities.supportedIntents].join(","),
          ]),
        ),
      );
    });

  program
    .command("stats")
    .description("task and job counts, queue depth and dead letters per capability")
    .action(async (_options, command: Command) => {
      const client = clientOf(command);
      const [tasks, jobs, queues] = await Promise.all([
        client.statistics(),
        client.jobStatistics(),
        client.queueStatistics().catch((error: unknown) => {
          // A stack whose API predates GET /stats/queues: show the rest.
          if (error instanceof AgentryApiError && error.status === 404) return undefined;
          throw error;
        }),
      ]);
      if (json(command)) return void out(pretty({ tasks, jobs, ...(queues ? { queues } : {}) }));
      out(
        table(
          ["TASKS", "COUNT"],
          [
            ["submitted (total)", String(tasks.totalTasksSubmitted)],
            ["pending", String(tasks.tasksPending)],
            ["in progress", String(tasks.tasksInProgress)],
            ["completed", String(tasks.tasksCompleted)],
            ["failed", String(tasks.tasksFailed)],
            ["canceled", String(tasks.tasksCanceled)],
            ["rejected", String(tasks.tasksRejected)],
            ["avg execution", duration(tasks.averageExecutionTimeMs)],
          ],
        ),
      );
      out(
        `\n${table(
          ["JOBS", "COUNT"],
          Object.entries(jobs.jobs).map(([name, count]) => [name, String(count)]),
        )}`,
      );
      if (queues) {
        out(
          `\n${table(
            ["CAPABILITY", "AVAILABLE", "IN FLIGHT", "DELAYED", "DEAD LETTERS"],
            queues.capabilities.map((q) => [
              q.capability,
              String(q.available),
              String(q.inFlight),
              String(q.delayed),
              String(q.deadLettered),
            ]),
          )}`,
        );
      }
    });

  const dlq = program
    .command("dlq")
    .description("dead-lettered tasks per capability (GET /dlq)")
    .option("--capability <name>", "only this capability")
    .action(async (options, command: Command) => {
      const letters = await clientOf(command).deadLetters(
        options.capability !== undefined ? { capability: options.capability } : {},
      );
      out(pretty(letters));
    });
  dlq
    .command("redrive")
    .description("send dead-lettered tasks back for a fresh attempt (POST /dlq/redrive)")
    .option("--capability <name>", "only this capability")
    .option("--task <taskId...>", "only these tasks")
    .action(async (options, command: Command) => {
      const result = await clientOf(command).redriveDeadLetters({
        ...(options.capability !== undefined ? { capability: options.capability } : {}),
        ...(options.task !== undefined ? { taskIds: options.task } : {}),
      });
      out(pretty(result));
    });

  program
    .command("dashboard")
    .description(
      "serve the dashboard on localhost for --api, signing its API calls (no credentials in the browser)",
    )
    .option("--port <port>", "local port (0 picks a free one)", integer, 4000)
    .option("--host <host>", "local address", "127.0.0.1")
    .action(async (options, command: Command) => {
      const g = globals(command);
      const proxy = await startDashboardProxy({
        target: g.api,
        auth: clientAuth(g),
        port: options.port,
        host: options.host,
      });
      out(`Agentry dashboard for ${g.api} at ${proxy.url}/  (Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        const stop = () => void proxy.close().then(resolve);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });

  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT.ok;
  } catch (error) {
    return exitCodeOf(error, err);
  }
}

function exitCodeOf(error: unknown, err: (text: string) => void): number {
  if (error instanceof ExitCodeError) return error.exitCode;
  if (error instanceof CommanderError) {
    // --help and --version end here too, with code 0; commander already printed its message.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof UsageError) {
    err(`agentry: ${error.message}`);
    return EXIT.usage;
  }
  if (error instanceof AgentryApiError) {
    const details = Array.isArray(error.details)
      ? error.details
          .map((d: { path: string; message: string }) => `\n  ${d.path || "body"}: ${d.message}`)
          .join("")
      : "";
    err(`agentry: ${error.status} ${error.code}: ${error.message}${details}`);
    return EXIT.api;
  }
  if (error instanceof ApiUnreachableError) {
    err(`agentry: ${error.message} (is the API running? set --api or AGENTRY_API_URL)`);
    return EXIT.unreachable;
  }
  if (error instanceof WaitTimeoutError) {
    err(`agentry: ${error.message}; it was not canceled`);
    return EXIT.timeout;
  }
  err(`agentry: ${error instanceof Error ? error.message : String(error)}`);
  return EXIT.unreachable;
}

function clientAuth(options: GlobalOptions): ClientAuth | undefined {
  switch (options.auth) {
    case "auto":
      return undefined;
    case "none":
      return { type: "none" };
    case "bearer":
      if (options.token === undefined) throw new UsageError("--auth bearer needs --token or AGENTRY_TOKEN");
      return { type: "bearer", token: options.token };
    case "sigv4":
      return { type: "sigv4", ...(options.region !== undefined ? { region: options.region } : {}) };
  }
}

function createClient(options: GlobalOptions): Client {
  let url: URL;
  try {
    url = new URL(options.api);
  } catch {
    throw new UsageError(`--api ${options.api} is not a URL`);
  }
  const auth = clientAuth(options);
  try {
    return new AgentryClient({ baseUrl: url.toString(), ...(auth !== undefined ? { auth } : {}) });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** `'{"a":1}'` or `@file.json` → the parsed JSON; anything unreadable is a usage error naming `what`. */
async function readJsonArgument(value: string, what: string): Promise<unknown> {
  let text = value;
  if (value.startsWith("@")) {
    try {
      text = await readFile(value.slice(1), "utf8");
    } catch (error) {
      throw new UsageError(
        `${what}: cannot read ${value.slice(1)}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      );
    }
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not valid JSON: ${error instanceof Error ? error.message : error}`);
  }
}

function integer(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new InvalidArgumentError("not an integer");
  return parsed;
}

/**
 * Polls the job and draws its progress on stderr: redrawn in place on a terminal, one line per change
 * otherwise (logs, CI, tests).
 */
async function watchJob(client: Client, jobId: string, timeoutMs: number, io: CliIo) {
  const started = Date.now();
  let previous = "";
  const view = await client.waitForJob(jobId, {
    timeoutMs,
    intervalMs: 300,
    onProgress: (job) => {
      const counts = `${job.completed}/${job.failed}/${job.canceled}/${job.total}`;
      if (counts === previous && io.stderr.isTTY !== true) return;
      previous = counts;
      const line = progressLine(job, Date.now() - started);
      io.stderr.write(io.stderr.isTTY === true ? `\r${line}` : `${line}\n`);
    },
  });
  if (io.stderr.isTTY === true) io.stderr.write("\n");
  return view;
}

async function reportJob(
  view: Awaited<ReturnType<Client["getJob"]>>,
  asJson: boolean,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<void> {
  const took = view.completedAt
    ? ` in ${duration(Date.parse(view.completedAt) - Date.parse(view.createdAt))}`
    : "";
  if (asJson) out(pretty(view));
  if (view.status === "completed") {
    err(`job ${view.jobId} completed${took}: ${view.completed} of ${view.total} tasks succeeded`);
    if (!asJson) out(pretty(view.result?.output ?? null));
    return;
  }
  err(
    `job ${view.jobId} ${view.status}${took}${view.error ? `: ${view.error.code}: ${view.error.message}` : ""}`,
  );
  throw new ExitCodeError(EXIT.unsuccessful);
}
