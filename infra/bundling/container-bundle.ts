import { join } from "node:path";
import { buildSync } from "esbuild";
import { ESBUILD_TARGET } from "../node-runtime.ts";

/** The bundle file a container worker image runs (`node index.mjs`, see functions/containers/Dockerfile). */
export const CONTAINER_BUNDLE_FILE = "index.mjs";

/**
 * Bundles a container worker's entry with local esbuild, the way the Lambda functions are bundled
 * (minified ESM, every dependency included, source map without sources), into `outdir/index.mjs`.
 * Unlike a Lambda bundle it keeps the SDK's default credential chain: on ECS the credentials come
 * from the task role's container endpoint, not from the environment.
 *
 * @example
 * bundleContainerEntry({ entry: "/repo/functions/containers/worker.ts", outdir, projectRoot: "/repo", banner });
 */
export function bundleContainerEntry(options: {
  entry: string;
  outdir: string;
  projectRoot: string;
  /** Gives bundled CommonJS dependencies a `require` (see agentry-function.ts). */
  banner: string;
}): string {
  const outfile = join(options.outdir, CONTAINER_BUNDLE_FILE);
  buildSync({
    entryPoints: [options.entry],
    absWorkingDir: options.projectRoot,
    outfile,
    bundle: true,
    platform: "node",
    target: ESBUILD_TARGET,
    format: "esm",
    mainFields: ["module", "main"],
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    banner: { js: options.banner },
    logLevel: "error",
  });
  return outfile;
}
