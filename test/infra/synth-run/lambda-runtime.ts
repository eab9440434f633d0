import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type { Context } from "aws-lambda";

/**
 * Node's own `import()`, from a CommonJS file that vitest does not transform: the bundles must run
 * as Lambda runs them (native ESM, their own `import.meta.url`), not through vitest's module runner.
 */
const nativeImport = createRequire(import.meta.url)("./native-import.cjs") as (
  specifier: string,
) => Promise<unknown>;

/**
 * One environment per function, as if each ran in its own Lambda container. The bundles read most of
 * their environment at import, but the AWS SDK reads `AWS_ENDPOINT_URL_<SERVICE>` and the credentials
 * lazily, on a client's first request, long after a sequential import has restored the environment.
 * So `process.env` is replaced by a view that answers from the environment of the function whose
 * code is running (an AsyncLocalStorage scope entered at import and at every invocation) and from the
 * real environment elsewhere.
 *
 * @example
 * const scopes = installFunctionEnvironments();
 * await scopes.run(env, () => import(bundle));
 * scopes.restore();
 */
export function installFunctionEnvironments(): {
  run<T>(env: Record<string, string>, fn: () => T): T;
  restore(): void;
} {
  const real = process.env;
  const scope = new AsyncLocalStorage<Record<string, string | undefined>>();
  const current = () => scope.getStore() ?? real;
  process.env = new Proxy({} as NodeJS.ProcessEnv, {
    get: (_target, key) => (typeof key === "string" ? current()[key] : undefined),
    set: (_target, key, value) => {
      if (typeof key === "string") current()[key] = String(value);
      return true;
    },
    has: (_target, key) => typeof key === "string" && Object.hasOwn(current(), key),
    deleteProperty: (_target, key) => (typeof key === "string" ? delete current()[key] : true),
    ownKeys: () => Reflect.ownKeys(current()),
    getOwnPropertyDescriptor: (_target, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(current(), key);
      return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
    },
  });
  return {
    run: (env, fn) => scope.run(env, fn),
    restore: () => {
      process.env = real;
    },
  };
}

export type LambdaHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface LocalFunction {
  readonly logicalId: string;
  /** POWERTOOLS_SERVICE_NAME: the name the report and the reviewed grants use. */
  readonly service: string;
  /** Undefined for a placeholder bundle, which is never invoked. */
  readonly handler: LambdaHandler | undefined;
  readonly timeoutSeconds: number;
  /** Invokes the handler inside the function's environment, with a Lambda-shaped context. */
  invoke(event: unknown): Promise<unknown>;
}

/**
 * Imports a bundle the way Lambda's Node.js runtime does — natively, in the function's own
 * environment — and wraps its handler. The `?fn=` query makes every load a fresh module instance.
 */
export async function loadFunction(options: {
  logicalId: string;
  service: string;
  file: string;
  exportName: string;
  env: Record<string, string>;
  functionArn: string;
  timeoutSeconds: number;
  memoryMb: number;
  placeholder: boolean;
  scopes: { run<T>(env: Record<string, string>, fn: () => T): T };
}): Promise<LocalFunction> {
  const { env, scopes } = options;
  const url = `${pathToFileURL(options.file).href}?fn=${encodeURIComponent(options.logicalId)}`;
  // The function's own environment object: writes a handler makes to process.env stay in it.
  const containerEnv = { ...env };
  const module = (await scopes.run(containerEnv, () => nativeImport(url))) as Record<string, unknown>;
  const exported = module[options.exportName];
  if (typeof exported !== "function") {
    throw new Error(
      `${options.logicalId}: ${options.file} does not export a function "${options.exportName}"`,
    );
  }
  const handler = options.placeholder ? undefined : (exported as LambdaHandler);
  const functionName = options.functionArn.slice(options.functionArn.lastIndexOf(":") + 1);
  return {
    logicalId: options.logicalId,
    service: options.service,
    handler,
    timeoutSeconds: options.timeoutSeconds,
    invoke(event) {
      if (handler === undefined)
        throw new Error(`${options.logicalId} is a placeholder and is never invoked`);
      const deadline = Date.now() + options.timeoutSeconds * 1000;
      const context: Context = {
        callbackWaitsForEmptyEventLoop: true,
        functionName,
        functionVersion: "$LATEST",
        invokedFunctionArn: options.functionArn,
        memoryLimitInMB: String(options.memoryMb),
        awsRequestId: randomUUID(),
        logGroupName: `/aws/lambda/${functionName}`,
        logStreamName: "local",
        getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
        done: () => undefined,
        fail: () => undefined,
        succeed: () => undefined,
      };
      return scopes.run(containerEnv, () => handler(event, context));
    },
  };
}
