import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { bundleLambdaEntry, lambdaEntries } from "#bench/bundles";

/** Each Lambda bundle's size budget (issue #4): cold starts grow with what a function loads. */
const MAX_BUNDLE_BYTES = 500_000;
const root = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const outdir = mkdtempSync(join(tmpdir(), "agentry-bundles-"));

describe("Lambda bundles", () => {
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it.each(lambdaEntries(root).map((entry) => [entry.slice(root.length + 1), entry]))(
    "keeps %s within 500 KB",
    async (_name, entry) => {
      const file = await bundleLambdaEntry(root, entry, outdir);
      expect(statSync(file).size).toBeLessThanOrEqual(MAX_BUNDLE_BYTES);
    },
  );
});
