/** Plain-text output of the CLI: tables, durations and the job progress bar. No colours, so logs stay clean. */

/**
 * A left-aligned table with a header row; columns as wide as their widest cell.
 *
 * @example
 * table(["ID", "STATUS"], [["t1", "completed"]]); // "ID  STATUS\nt1  completed"
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** `1.2 s`, `340 ms`, `2 min 5 s`, `1 h 3 min`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1_000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** How long ago an ISO time was, from `now`: `3 s ago`. */
export function ago(iso: string | undefined, now = Date.now()): string {
  if (iso === undefined) return "-";
  const at = Date.parse(iso);
  return Number.isNaN(at) ? iso : `${duration(Math.max(0, now - at))} ago`;
}

export interface JobProgress {
  readonly total: number;
  readonly completed: number;
  readonly failed: number;
  readonly canceled: number;
}

/**
 * One line of job progress: bar, percentage, counts, rate since `startedAt` and the ETA at that rate.
 *
 * @example
 * progressLine({ total: 10, completed: 5, failed: 0, canceled: 0 }, 2_000); // "[##########----------]  50 %  5/10 done · 0 failed · 2.5 tasks/s · ETA 2.0 s"
 */
export function progressLine(progress: JobProgress, elapsedMs: number, width = 20): string {
  const finished = progress.completed + progress.failed + progress.canceled;
  const fraction = progress.total === 0 ? 1 : Math.min(1, finished / progress.total);
  const filled = Math.round(fraction * width);
  const rate = elapsedMs > 0 ? (finished * 1000) / elapsedMs : 0;
  const remaining = progress.total - finished;
  const eta = remaining === 0 ? "0 ms" : rate > 0 ? duration((remaining / rate) * 1000) : "-";
  return (
    `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)} %  ` +
    `${finished}/${progress.total} done · ${progress.failed + progress.canceled} failed · ` +
    `${rate.toFixed(1)} tasks/s · ETA ${eta}`
  );
}

/** JSON for people: two-space indentation. */
export function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
