import { type PlatformConfig, platformConfigFor } from "#shared/config/platform";
import type { WorkerDefinition } from "#shared/worker/define-worker";
import { diagnosticsWorker, researchWorker, summarizationWorker, textAnalysisWorker } from "./demo.ts";

/**
 * The one registration point: every worker the platform runs. Add a worker here and it runs
 * everywhere — `npm start` (as an in-process poller), `npm start -- --emulated` and the deployed stack
 * (as the SQS-triggered Lambda `functions/workers/worker.ts`, one per capability) — with its
 * capability's queues, routes, timeout and concurrency derived from the definition. Nothing else
 * lists workers or capabilities (ADR 0013).
 *
 * @example
 * import { translator } from "./translation.ts";
 * export const workers = [textAnalysisWorker, summarizationWorker, diagnosticsWorker, translator];
 */
export const workers: readonly WorkerDefinition[] = [
  textAnalysisWorker,
  summarizationWorker,
  diagnosticsWorker,
  researchWorker,
];

{
  const problems = missingExamples(workers);
  if (problems.length > 0) {
    throw new Error(`${problems.join("; ")}: add it to the worker's \`examples\``);
  }
}

/**
 * The platform configuration of this deployment: the registered workers' capabilities and task
 * routes, with the default policies. The CDK stack deploys it and the local runtime runs it.
 */
export const platformConfig: PlatformConfig = platformConfigFor(workers);

/**
 * The registered worker that serves a capability, for entries that run one worker per capability
 * (the Lambda worker function reads its `CAPABILITY` variable). Throws naming the registered ones.
 *
 * @example
 * export const handler = lambdaWorker(workerForCapability(process.env.CAPABILITY));
 */
export function workerForCapability(capability: string | undefined): WorkerDefinition {
  const worker = workers.find((w) => capability !== undefined && w.capabilities.includes(capability));
  if (worker === undefined) {
    const known = workers.flatMap((w) => w.capabilities).join(", ");
    throw new Error(
      `no registered worker serves capability ${JSON.stringify(capability)} (registered: ${known}); see shared/agents/workers.ts`,
    );
  }
  return worker;
}

/** The task types of these workers that lack an example input, as messages naming each. */
export function missingExamples(list: readonly WorkerDefinition[]): string[] {
  return list.flatMap((worker) =>
    Object.keys(worker.handlers)
      .filter((taskType) => worker.examples === undefined || !Object.hasOwn(worker.examples, taskType))
      .map((taskType) => `worker "${worker.agentType}" has no example input for task type "${taskType}"`),
  );
}
