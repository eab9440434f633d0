import { summarizationWorker } from "#shared/agents/demo";
import { lambdaWorker } from "#shared/worker/aws-lambda";

/** The demo "summarization" agent as an SQS-triggered Lambda worker. */
export const handler = lambdaWorker(summarizationWorker);
