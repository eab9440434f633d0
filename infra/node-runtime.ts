import { readFileSync } from "node:fs";
import { Runtime, RuntimeFamily } from "aws-cdk-lib/aws-lambda";

/**
 * The one place the project's Node.js version is decided: the exact `node` dev dependency in
 * package.json. npm scripts and `npx` run that binary (the npm package `node` installs it into
 * `node_modules/.bin`), so `npm start`, `npm test`, `cdk synth` and the benches run on the same major
 * that every Lambda function and container is deployed on. Bumping the pin bumps all of them;
 * `test/infra/node-runtime.test.ts` fails if the pin, the running process and the template disagree.
 */
const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  devDependencies?: Record<string, string>;
};

/** The exact Node.js version the project pins (`devDependencies.node`), e.g. `24.21.0`. */
export const PINNED_NODE_VERSION: string = pinnedVersion(packageJson.devDependencies?.node);

/** Its major version, e.g. `24`. */
export const NODE_MAJOR: number = Number(PINNED_NODE_VERSION.split(".")[0]);

/** esbuild's target for every bundle (Lambda functions, container entries, the bundle bench). */
export const ESBUILD_TARGET = `node${NODE_MAJOR}`;

/**
 * The Lambda runtime for that major. A runtime name Lambda does not offer fails the deploy, so the
 * runtime test also checks that aws-cdk-lib knows it.
 *
 * @example
 * new NodejsFunction(this, "Fn", { runtime: LAMBDA_NODE_RUNTIME, bundling: { target: ESBUILD_TARGET } });
 */
export const LAMBDA_NODE_RUNTIME = new Runtime(`nodejs${NODE_MAJOR}.x`, RuntimeFamily.NODEJS, {
  supportsInlineCode: true,
});

function pinnedVersion(spec: string | undefined): string {
  if (spec === undefined || !/^\d+\.\d+\.\d+$/.test(spec)) {
    throw new Error(
      `package.json must pin the Node.js runtime as an exact dev dependency ("node": "24.x.y"), found ${JSON.stringify(spec)}`,
    );
  }
  return spec;
}
