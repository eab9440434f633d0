import type { LogAttributes, Logger } from "#shared/ports/logger";

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/**
 * A one-line-per-entry console logger for the local runtime (the Powertools Logger does this on
 * Lambda), with the same shape. An `Error` in the attributes is printed below the line with its
 * stack and its chain of causes, instead of the `{}` that JSON makes of it.
 *
 * @example
 * createConsoleLogger("info").error("sweep failed", { error }); // the line, then the stack and causes
 */
export function createConsoleLogger(level: LogLevel = "info", scope = "agentry"): Logger {
  const threshold = LEVELS[level];
  const write =
    (name: Exclude<LogLevel, "silent">) =>
    (message: string, ...attributes: LogAttributes[]) => {
      if (LEVELS[name] < threshold) return;
      const merged: LogAttributes = Object.assign({}, ...attributes);
      const errors = Object.entries(merged).filter(([, value]) => value instanceof Error);
      const plain = Object.fromEntries(
        Object.entries(merged).filter(([, value]) => !(value instanceof Error)),
      );
      const fields = Object.keys(plain).length > 0 ? ` ${JSON.stringify(plain)}` : "";
      const details = errors
        .map(([key, error]) => `\n  ${key}: ${describeError(error as Error, "  ")}`)
        .join("");
      const line = `${new Date().toISOString()} ${name.toUpperCase().padEnd(5)} [${scope}] ${message}${fields}${details}`;
      (name === "error" || name === "warn" ? console.error : console.log)(line);
    };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

/** The stack (or `name: message`), then each `cause` below it, indented. */
function describeError(error: Error, indent: string, depth = 0): string {
  const text = (error.stack ?? `${error.name}: ${error.message}`).replaceAll("\n", `\n${indent}`);
  const { cause } = error;
  if (cause === undefined || depth >= 5) return text;
  const causeText =
    cause instanceof Error ? describeError(cause, `${indent}  `, depth + 1) : JSON.stringify(cause);
  return `${text}\n${indent}caused by: ${causeText}`;
}

export function parseLogLevel(value: string | undefined): LogLevel {
  return value !== undefined && value in LEVELS ? (value as LogLevel) : "info";
}
