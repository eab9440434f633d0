import { researchWorker } from "#shared/agents/demo";
import { runContainerWorker } from "#shared/worker/container";

// The research agent's ECS Fargate container: polls the research queues until SIGTERM.
runContainerWorker(researchWorker);
