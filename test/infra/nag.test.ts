import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { PolicyValidationReportJson } from "@aws-cdk/cloud-assembly-schema";
import { type App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, type NagPack, ServerlessChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentryApp } from "../../infra/agentry-app.ts";
import { cdkJsonContext, temporaryOutdir, withoutBundling } from "./support.ts";

const SYNTH_TIMEOUT_MS = 120_000;
/** A reason shorter than this cannot say why a finding is acceptable. */
const MIN_REASON_LENGTH = 20;

interface Acknowledgment {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgment recorded anywhere in the tree via `Validations.of(x).acknowledge()`. */
function acknowledgmentsIn(root: IConstruct): Acknowledgment[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          // Stored with a namespace prefix (e.g. "Annotation::"); cdk-nag matches the bare rule id.
          id: id.replace(/^[A-Za-z]+::/, ""),
          reason,
        })),
      ),
  );
}

/**
 * Runs a pack with acknowledgments ignored, to see every finding they hide. `isAcknowledged` is
 * cdk-nag's internal filter (TypeScript-private, hence the cast); the guard fails loudly if a new
 * cdk-nag version renames it.
 */
function findingsIgnoringAcknowledgments(
  pack: NagPack,
  root: IConstruct,
): Array<{ rule: string; path: string }> {
  const internals = pack as unknown as { isAcknowledged?: unknown };
  if (typeof internals.isAcknowledged !== "function") {
    throw new Error("cdk-nag no longer filters acknowledgments in isAcknowledged(); update this test");
  }
  internals.isAcknowledged = () => false;
  return pack
    .validateScope(root)
    .violations.flatMap((v) =>
      v.violatingResources.map((resource) => ({ rule: v.ruleName, path: resource.constructPath ?? "" })),
    );
}

describe("cdk-nag (AwsSolutions and Serverless packs)", () => {
  let outdir: string;
  let app: App;
  let synthError: unknown;
  let report: PolicyValidationReportJson | undefined;

  beforeAll(() => {
    outdir = temporaryOutdir();
    ({ app } = createAgentryApp({ outdir, context: withoutBundling(cdkJsonContext()) }));
    try {
      app.synth();
    } catch (error) {
      synthError = error;
    }
    const reportFile = join(outdir, "validation-report.json");
    report = existsSync(reportFile)
      ? (JSON.parse(readFileSync(reportFile, "utf8")) as PolicyValidationReportJson)
      : undefined;
  }, SYNTH_TIMEOUT_MS);

  afterAll(() => {
    rmSync(outdir, { recursive: true, force: true });
  });

  it("synthesizes without a validation failure", () => {
    expect(synthError).toBeUndefined();
  });

  it("reports no unacknowledged error or warning", () => {
    const findings = (report?.pluginReports ?? []).flatMap((plugin) =>
      plugin.violations.flatMap((violation) =>
        violation.violatingConstructs.map(
          (c) => `${plugin.pluginName} ${violation.severity} ${violation.ruleName} at ${c.constructPath}`,
        ),
      ),
    );

    expect(findings).toEqual([]);
  });

  it("gives every acknowledgment a reason a reviewer can judge", () => {
    const acknowledgments = acknowledgmentsIn(app);

    expect(acknowledgments.length).toBeGreaterThan(0);
    for (const { path, id, reason } of acknowledgments) {
      expect(reason.trim().length, `${id} at ${path}`).toBeGreaterThanOrEqual(MIN_REASON_LENGTH);
      expect(reason, `${id} at ${path}`).not.toContain(id);
    }
  });

  it("acknowledges only findings that the packs still raise", () => {
    const findings = [new AwsSolutionsChecks(), new ServerlessChecks()].flatMap((pack) =>
      findingsIgnoringAcknowledgments(pack, app),
    );
    // Only cdk-nag's rules: aws-cdk-lib acknowledges its own validator's findings (CloudFormation-Validate::…) itself.
    const nagAcknowledgments = acknowledgmentsIn(app).filter(({ id }) =>
      /^(AwsSolutions|Serverless)-/.test(id),
    );
    const stale = nagAcknowledgments.filter(
      ({ path, id }) =>
        !findings.some((f) => f.rule === id && (f.path === path || f.path.startsWith(`${path}/`))),
    );

    expect(stale).toEqual([]);
  });
});
