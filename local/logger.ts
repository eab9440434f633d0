import type { Logger } from "#shared/ports/logger";

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/** A one-line-per-entry console logger for the local runtime (Powertools Logger does this on Lambda). */
export function createConsoleLogger(level: LogLevel = "info", scope = "agentry"): Logger {
  const threshold = LEVELS[level];
  const write = (name: Exclude<LogLevel, "silent">) => (message: string, extra?: Record<string, unknown>) => {
    if (LEVELS[name] < threshold) return;
    const line = `${new Date().toISOString()} ${name.toUpperCase().padEnd(5)} [${scope}] ${message}${extra ? ` ${JSON.stringify(extra)}` : ""}`;
    (name === "error" || name === "warn" ? console.error : console.log)(line);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

export function parseLogLevel(value: string | undefined): LogLevel {
  return value !== undefined && value in LEVELS ? (value as LogLevel) : "info";
}
