import { diagnosticsWorker } from "#shared/agents/demo";
import { lambdaWorker } from "#shared/worker/aws-lambda";

/** The demo "diagnostics" agent as an SQS-triggered Lambda worker. */
export const handler = lambdaWorker(diagnosticsWorker);
