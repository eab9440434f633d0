import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type BrowserContext, chromium } from "playwright-core";

/** Debian's `chromium` package; `.ci/run` installs it when it is missing. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Chromium {
  readonly context: BrowserContext;
  /**
   * Closes the browser and removes its profile. Returns the pids of this browser's processes that
   * were still alive 5 s after it closed (they are then killed), so a test can insist on none.
   */
  close(): Promise<number[]>;
}

/**
 * Starts headless Chromium with a fresh profile (`--user-data-dir` in a new temp directory). A
 * missing browser is a failure that says how to install it, never a skip.
 *
 * @example
 * const browser = await launchChromium();
 * const page = await browser.context.newPage();
 * await browser.close();
 */
export async function launchChromium(): Promise<Chromium> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install Debian's package (apt-get install -y chromium, ` +
        "which .ci/run does) or set CHROMIUM_PATH",
    );
  }
  const profile = await mkdtemp(join(tmpdir(), "agentry-chromium-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 900 },
    });
  } catch (error) {
    await killProfileProcesses(profile);
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      const deadline = Date.now() + 5_000;
      while (profileProcesses(profile).length > 0 && Date.now() < deadline) await sleep(100);
      const leftovers = await killProfileProcesses(profile);
      await rm(profile, { recursive: true, force: true });
      return leftovers;
    },
  };
}

/** The pids of processes started with this profile: only this run's browser, never anyone else's. */
export function profileProcesses(profile: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(`--user-data-dir=${profile}`)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

async function killProfileProcesses(profile: string): Promise<number[]> {
  const pids = profileProcesses(profile);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return pids;
}
