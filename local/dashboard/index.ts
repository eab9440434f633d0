import { readFileSync } from "node:fs";

/** A response for a dashboard path, in no particular server's terms (node:http, Hono, a proxy). */
export interface DashboardResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * The dashboard's files, read once: `/` is the page, `/dashboard/*` its script and styles. Every
 * other path is the API's. The page calls the API on its own origin with relative paths, so it
 * works the same behind the local runtime and behind `agentry dashboard`'s signing proxy.
 */
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/dashboard/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/dashboard/charts.js": { file: "charts.js", type: "text/javascript; charset=utf-8" },
  "/dashboard/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

const cache = new Map<string, string>();

/** Nothing but the page's own origin: no inline script, no third-party source, no framing. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

/**
 * The dashboard's answer for a GET of `pathname`, or undefined when the path is not the dashboard's
 * (the caller then routes it to the API). Framework-neutral, so any HTTP server delegates in a line.
 *
 * @example
 * const page = request.method === "GET" ? dashboardResponse(url.pathname) : undefined;
 * if (page) { response.writeHead(page.status, page.headers); response.end(page.body); return; }
 */
export function dashboardResponse(pathname: string): DashboardResponse | undefined {
  const entry = Object.hasOwn(FILES, pathname) ? FILES[pathname] : undefined;
  if (entry === undefined) return undefined;
  let body = cache.get(entry.file);
  if (body === undefined) {
    body = readFileSync(new URL(entry.file, import.meta.url), "utf8");
    cache.set(entry.file, body);
  }
  return { status: 200, headers: { "content-type": entry.type, ...SECURITY_HEADERS }, body };
}
