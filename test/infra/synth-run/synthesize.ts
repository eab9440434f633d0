import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createAgentryApp } from "../../../infra/agentry-app.ts";
import { cdkJsonContext, temporaryOutdir } from "../support.ts";
import { type CfnTemplate, isObject, propertiesOf, resourcesOfType } from "./cfn.ts";

export interface SynthesizedApp {
  /** The cloud assembly directory; the caller removes it. */
  readonly outdir: string;
  readonly stackName: string;
  readonly template: CfnTemplate;
}

/**
 * Synthesizes the real app in process, exactly as `cdk synth` would (cdk.json context, esbuild
 * bundling, cdk-nag), with asset metadata on, so that every function's template resource names the
 * directory its bundle was staged in.
 *
 * @example
 * const { outdir, template } = synthesizeAgentryApp();
 */
export function synthesizeAgentryApp(): SynthesizedApp {
  const outdir = temporaryOutdir();
  const { app, stack } = createAgentryApp({
    outdir,
    // The CLI turns asset metadata on by default; an in-process App leaves it off.
    context: { ...cdkJsonContext(), "aws:cdk:enable-asset-metadata": true },
  });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as CfnTemplate;
  return { outdir: assembly.directory, stackName: stack.stackName, template };
}

export interface FunctionBundle {
  readonly logicalId: string;
  /** Absolute path of the bundled module Lambda would load. */
  readonly file: string;
  /** The export Lambda would call. */
  readonly exportName: string;
}

/**
 * Where each AWS::Lambda::Function's code was staged: the `aws:asset:path` metadata (cross-checked
 * against the S3 key the template deploys, which is the asset hash) and the module named by its
 * `Handler` (`index.handler` → `index.mjs`, export `handler`).
 */
export function functionBundles(app: SynthesizedApp): FunctionBundle[] {
  return resourcesOfType(app.template, "AWS::Lambda::Function").map(([logicalId, resource]) => {
    const assetPath = resource.Metadata?.["aws:asset:path"];
    const assetProperty = resource.Metadata?.["aws:asset:property"];
    if (typeof assetPath !== "string" || assetProperty !== "Code") {
      throw new Error(`${logicalId} has no Code asset metadata (aws:asset:path ${String(assetPath)})`);
    }
    const properties = propertiesOf(resource);
    const code = properties.Code;
    const s3Key = isObject(code) ? code.S3Key : undefined;
    const hash = assetPath.replace(/^asset\./, "");
    if (s3Key !== `${hash}.zip`) {
      throw new Error(`${logicalId}: asset ${assetPath} does not match the deployed S3 key ${String(s3Key)}`);
    }
    const handler = String(properties.Handler ?? "");
    const dot = handler.lastIndexOf(".");
    if (dot <= 0) throw new Error(`${logicalId}: unexpected Handler "${handler}"`);
    const base = join(app.outdir, assetPath, handler.slice(0, dot));
    const file = [".mjs", ".js"]
      .map((extension) => `${base}${extension}`)
      .find((candidate) => existsSync(candidate));
    if (file === undefined) throw new Error(`${logicalId}: no bundle at ${base}.mjs or ${base}.js`);
    return { logicalId, file, exportName: handler.slice(dot + 1) };
  });
}

/**
 * A bundle that only throws "not implemented" (a function whose entry is still a stub). Such a
 * handler is not invoked: the run checks that events are routed to it, not what it does.
 */
export function isPlaceholderBundle(bundle: FunctionBundle): boolean {
  const source = readFileSync(bundle.file, "utf8");
  return source.length < 4096 && /throw new Error\("not implemented[^"]*"\)/.test(source);
}

export interface ContainerBundle {
  /** The AWS::ECS::TaskDefinition. */
  readonly logicalId: string;
  readonly containerName: string;
  /** Absolute path of the bundle the image runs (`node index.mjs`). */
  readonly file: string;
  /** The image asset's build context in the cloud assembly. */
  readonly assetDirectory: string;
}

/**
 * Where each container of each AWS::ECS::TaskDefinition has its image built from: the image URI's tag
 * is the Docker image asset's hash, which the assets manifest maps to a directory of the cloud
 * assembly. That directory is the build context the deploy hands to Docker; its Dockerfile runs
 * `node index.mjs`, so that file is what the container runs.
 */
export function containerBundles(app: SynthesizedApp): ContainerBundle[] {
  const manifest = JSON.parse(readFileSync(join(app.outdir, `${app.stackName}.assets.json`), "utf8")) as {
    dockerImages?: Record<string, { source?: { directory?: string } }>;
  };
  return resourcesOfType(app.template, "AWS::ECS::TaskDefinition").flatMap(([logicalId, resource]) => {
    const containers = propertiesOf(resource).ContainerDefinitions;
    return (Array.isArray(containers) ? containers : []).map((container: unknown) => {
      const image = isObject(container) && isObject(container.Image) ? container.Image["Fn::Sub"] : undefined;
      const hash = typeof image === "string" ? image.slice(image.lastIndexOf(":") + 1) : undefined;
      const directory = hash === undefined ? undefined : manifest.dockerImages?.[hash]?.source?.directory;
      if (directory === undefined) {
        throw new Error(
          `${logicalId}: the image ${JSON.stringify(image)} is not a Docker image asset of the assembly`,
        );
      }
      const assetDirectory = join(app.outdir, directory);
      const dockerfile = readFileSync(join(assetDirectory, "Dockerfile"), "utf8");
      const entrypoint = /^ENTRYPOINT \["node", "([^"]+)"\]$/m.exec(dockerfile)?.[1];
      if (entrypoint === undefined) throw new Error(`${logicalId}: the Dockerfile runs no \`node <bundle>\``);
      return {
        logicalId,
        containerName: String(isObject(container) ? container.Name : ""),
        file: join(assetDirectory, entrypoint),
        assetDirectory,
      };
    });
  });
}
