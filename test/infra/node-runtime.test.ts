import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { Runtime } from "aws-cdk-lib/aws-lambda";
import { afterAll, describe, expect, it } from "vitest";
import { AgentryStack } from "../../infra/agentry-stack.ts";
import {
  ESBUILD_TARGET,
  LAMBDA_NODE_RUNTIME,
  NODE_MAJOR,
  PINNED_NODE_VERSION,
} from "../../infra/node-runtime.ts";
import { cdkJsonContext, resourcesOfType, temporaryOutdir, withoutBundling } from "./support.ts";

describe("the Node.js the project runs on", () => {
  it("is the pinned version in this test process (npm test runs on node_modules/.bin/node)", () => {
    expect(process.version).toBe(`v${PINNED_NODE_VERSION}`);
  });

  it("is the pinned version for every child process started through PATH (npm start, tsx, bundles)", () => {
    const child = spawnSync("node", ["--version"], { encoding: "utf8" });
    expect(child.error).toBeUndefined();
    expect(child.stdout.trim()).toBe(`v${PINNED_NODE_VERSION}`);
  });

  it("is a Node.js Lambda runtime that aws-cdk-lib knows, and the bundles target the same major", () => {
    const known = Object.values(Runtime)
      .filter((value): value is Runtime => value instanceof Runtime)
      .map((runtime) => runtime.name);
    expect(known).toContain(LAMBDA_NODE_RUNTIME.name);
    expect(LAMBDA_NODE_RUNTIME.name).toBe(`nodejs${NODE_MAJOR}.x`);
    expect(ESBUILD_TARGET).toBe(`node${NODE_MAJOR}`);
  });

  describe("in the synthesized template", () => {
    const outdir = temporaryOutdir();
    afterAll(() => rmSync(outdir, { recursive: true, force: true }));

    it("deploys every Lambda function on the pinned major", () => {
      const app = new App({ outdir, context: withoutBundling(cdkJsonContext()) });
      const template = Template.fromStack(new AgentryStack(app, "Agentry"));
      const runtimes = Object.values(resourcesOfType(template, "AWS::Lambda::Function")).map(
        (fn) => fn.Properties.Runtime,
      );
      expect(runtimes.length).toBeGreaterThan(0);
      expect(new Set(runtimes)).toEqual(new Set([`nodejs${NODE_MAJOR}.x`]));
    }, 120_000); // synthesizing the stack's construct tree takes seconds (no bundling here)
  });
});
