import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient } from "./api-client.ts";

/**
 * The README's "Writing a worker" checklist is true (issue #15): in a scratch copy of the project, the
 * two code blocks of that section are applied exactly as written — the definition file, then the
 * registration — and with no other edit the new capability runs on `npm start`, on
 * `npm start -- --emulated`, synthesizes with cdk-nag, and passes the synthesized-app and nag suites.
 */
const root = fileURLToPath(new URL("../..", import.meta.url));
const STEP_TIMEOUT_MS = 300_000;

interface ReadmeBlock {
  readonly path: string;
  readonly code: string;
}

/** The fenced block whose info string is `ts <kind>=<path>` in the README's "Writing a worker". */
function readmeBlock(kind: "file" | "edit"): ReadmeBlock {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const match = new RegExp(`\`\`\`ts ${kind}=(\\S+)\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!match?.[1] || match[2] === undefined) {
    throw new Error(`README.md has no \`\`\`ts ${kind}=<path> block in "Writing a worker"`);
  }
  return { path: match[1], code: match[2] };
}

/**
 * Applies the registration block: its imports go after the file's last import, and its `workers`
 * declaration replaces the file's.
 */
function applyRegistration(source: string, block: string): string {
  const lines = block.split("\n");
  const imports = lines.filter((line) => line.startsWith("import "));
  const declaration = lines
    .filter((line) => !line.startsWith("import "))
    .join("\n")
    .trim();
  const declared = /^export const workers[\s\S]*?\n\];/m;
  if (!declared.test(source) || !declared.test(declaration)) {
    throw new Error("the registration must replace the `export const workers … ];` declaration");
  }
  const sourceLines = source.replace(declared, declaration).split("\n");
  let lastImport = -1;
  sourceLines.forEach((line, index) => {
    if (/^(import |} from )/.test(line)) lastImport = index;
  });
  sourceLines.splice(lastImport + 1, 0, ...imports);
  return sourceLines.join("\n");
}

/** A copy of the repository's files (as in the working tree), sharing its node_modules. */
function scratchCopy(): string {
  const copy = mkdtempSync(join(tmpdir(), "agentry-authoring-"));
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: root,
    encoding: "utf8",
  })
    .split("\0")
    .filter((file) => file.length > 0);
  for (const file of files) {
    let content: Buffer;
    try {
      content = readFileSync(join(root, file));
    } catch {
      continue; // deleted in the working tree, not yet committed
    }
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    writeFileSync(join(copy, file), content);
  }
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"), "dir");
  return copy;
}

/** This process's environment without what vitest set for its own workers (a nested run starts fresh). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !key.startsWith("VITEST") && !key.startsWith("AWS_ENDPOINT_URL"),
    ),
  );
  return { ...env, ...extra };
}

/** Runs a command in the copy; fails with its output when it exits non-zero. */
function runInCopy(copy: string, command: string, args: string[], env: Record<string, string> = {}): string {
  const result = spawnSync(command, args, {
    cwd: copy,
    env: cleanEnv(env),
    encoding: "utf8",
    timeout: STEP_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.status !== 0) {
    throw new Error(
      `\`${command} ${args.join(" ")}\` exited ${result.status ?? result.signal}:\n${output.slice(-6000)}`,
    );
  }
  return output;
}

/** `npm start [-- args]` in the copy, until its banner shows the URL; stopped with SIGINT. */
async function startRuntime(
  copy: string,
  extraArgs: string[],
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn("npm", ["start", ...(extraArgs.length > 0 ? ["--", ...extraArgs] : [])], {
    cwd: copy,
    env: cleanEnv({ PORT: "0", LOG_LEVEL: "warn" }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 90 s:\n${output}`)), 90_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Agentry is running at (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${code}:\n${output}`));
    });
  });
  return { url, child };
}

async function stopRuntime(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, "exit");
  process.kill(-child.pid, "SIGINT");
  const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, "SIGKILL"), 20_000);
  await exited;
  clearTimeout(timer);
}

describe("adding a capability by the README's checklist", () => {
  let copy: string;
  let example: { taskType: string; input: unknown; output: unknown };
  const running: ChildProcess[] = [];

  beforeAll(() => {
    copy = scratchCopy();
    const definition = readmeBlock("file");
    const registration = readmeBlock("edit");
    writeFileSync(join(copy, definition.path), definition.code);
    const registry = join(copy, registration.path);
    writeFileSync(registry, applyRegistration(readFileSync(registry, "utf8"), registration.code));
    // What the new worker answers to its own example, computed by its definition in the copy.
    writeFileSync(
      join(copy, "authoring-example.ts"),
      `import { workers } from "#shared/agents/workers";
const worker = workers.at(-1);
if (!worker?.examples) throw new Error("the registered worker has no examples");
const [taskType, handler] = Object.entries(worker.handlers)[0] ?? [];
if (!taskType || !handler) throw new Error("the registered worker has no handler");
const input = worker.examples[taskType];
const silent = () => {};
const output = await handler(input, { taskId: "x", taskType, attempt: 1, metadata: {},
  signal: new AbortController().signal, heartbeat: async () => {},
  logger: { debug: silent, info: silent, warn: silent, error: silent } });
console.log("EXAMPLE " + JSON.stringify({ taskType, input, output }));
`,
    );
    const printed = runInCopy(copy, "npx", ["tsx", "authoring-example.ts"]);
    const line = printed.split("\n").find((l) => l.startsWith("EXAMPLE "));
    example = JSON.parse(line?.slice("EXAMPLE ".length) ?? "null");
  }, STEP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(running.map(stopRuntime));
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it("registers a worker with a new capability, task type and example", () => {
    expect(example.taskType).toBe("translate");
    expect(example.output).toBeDefined();
  });

  it.each([
    { mode: "npm start", args: [] as string[] },
    { mode: "npm start -- --emulated", args: ["--emulated"] },
  ])(
    "runs the new task type on $mode",
    async ({ args }) => {
      const { url, child } = await startRuntime(copy, args);
      running.push(child);
      const api = apiClient(url);
      const taskId = await api.submit({ taskType: example.taskType, input: example.input });
      const task = await api.waitForStatus(taskId, ["completed", "failed", "rejected"], 60_000);
      expect(task).toMatchObject({ status: "completed", result: { success: true, output: example.output } });
      await stopRuntime(child);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    "synthesizes the stack with cdk-nag, with a Lambda worker for the new capability",
    () => {
      const outdir = join(copy, "cdk.out.authoring");
      runInCopy(copy, "npx", ["cdk", "synth", "--quiet", "--output", outdir]);
      const template = JSON.parse(readFileSync(join(outdir, "Agentry.template.json"), "utf8")) as {
        Resources: Record<
          string,
          { Type: string; Properties?: { Environment?: { Variables?: Record<string, unknown> } } }
        >;
      };
      const capabilities = Object.values(template.Resources)
        .filter((r) => r.Type === "AWS::Lambda::Function")
        .map((r) => r.Properties?.Environment?.Variables?.CAPABILITY);
      expect(capabilities).toContain("translation");
    },
    STEP_TIMEOUT_MS,
  );

  it(
    "passes the synthesized-app and cdk-nag suites with no test edited",
    () => {
      runInCopy(
        copy,
        "npx",
        ["vitest", "run", "test/infra/synthesized-app.test.ts", "test/infra/nag.test.ts"],
        {
          CI: "",
        },
      );
    },
    2 * STEP_TIMEOUT_MS,
  );
});
