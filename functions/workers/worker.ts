import { workerForCapability } from "#shared/agents/workers";
import { lambdaWorker } from "#shared/worker/aws-lambda";

/**
 * Every Lambda worker function: the registered worker (`shared/agents/workers.ts`) that serves the
 * function's capability, which the stack sets in `CAPABILITY`. One entry for all, so adding a worker
 * never adds a file here.
 */
export const handler = lambdaWorker(workerForCapability(process.env.CAPABILITY));
