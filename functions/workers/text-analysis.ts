import { textAnalysisWorker } from "#shared/agents/demo";
import { lambdaWorker } from "#shared/worker/aws-lambda";

/** The demo "text-analysis" agent as an SQS-triggered Lambda worker. */
export const handler = lambdaWorker(textAnalysisWorker);
