import { workerForCapability } from "#shared/agents/workers";
import { runContainerWorker } from "#shared/worker/container";

/**
 * Every ECS Fargate container worker: the registered worker (`shared/agents/workers.ts`) that serves
 * the first of the capabilities its task definition sets in `CAPABILITIES`; it polls their queues
 * until SIGTERM. One entry for all, so adding a worker never adds a file here.
 */
const [capability] = (process.env.CAPABILITIES ?? "").split(",").map((c) => c.trim());
runContainerWorker(workerForCapability(capability));
