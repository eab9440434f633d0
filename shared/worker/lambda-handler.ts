import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { PlatformConfig } from "#shared/config/platform";
import { forEachLimited } from "#shared/core/concurrency";
import { Dispatcher } from "#shared/core/dispatcher";
import type { Logger } from "#shared/ports/logger";
import type { ReceivedTaskMessage, TaskQueue } from "#shared/ports/task-queue";
import type { TaskStore } from "#shared/ports/task-store";
import type { WorkerDefinition } from "./define-worker.ts";
import { sendRetry } from "./settle.ts";

export interface LambdaWorkerDeps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  readonly config: PlatformConfig;
  readonly logger: Logger;
  /** Physical queue name (last segment of the queue ARN) → logical queue name. */
  readonly queueNames: Readonly<Record<string, string>>;
  readonly agentId?: string;
}

/**
 * Turns a worker definition into an SQS-triggered Lambda handler with partial batch responses:
 * only the records that must be delivered again are reported in `batchItemFailures`; everything
 * else is deleted by the event source mapping. The handler never throws, so one bad record can
 * never fail the whole batch.
 *
 * @example
 * export const handler = createLambdaWorkerHandler(textAnalysisWorker, deps);
 */
export function createLambdaWorkerHandler(
  worker: WorkerDefinition,
  deps: LambdaWorkerDeps,
): (event: SQSEvent, context?: Pick<Context, "getRemainingTimeInMillis">) => Promise<SQSBatchResponse> {
  const agentId = deps.agentId ?? `lambda:${worker.agentType}`;
  return async (event, context) => {
    // One dispatcher per invocation. Its writes' events follow from the table's stream.
    const dispatcher = new Dispatcher(
      { store: deps.store, config: deps.config, agentId, logger: deps.logger },
      worker.handlers,
    );
    const deadlineMs = context ? Date.now() + context.getRemainingTimeInMillis() : undefined;
    const failures: string[] = [];
    await forEachLimited(event.Records, worker.maxConcurrentTasks, async (record) => {
      try {
        const message = toReceivedMessage(record, deps.queueNames);
        const settlement = await dispatcher.process(message, deadlineMs === undefined ? {} : { deadlineMs });
        switch (settlement.kind) {
          case "ack":
            return;
          case "retry":
            await sendRetry(deps.queue, message, settlement);
            return;
          case "dead-letter":
            await deps.queue.deadLetter(message, settlement.reason);
            return;
          case "release":
            await deps.queue.release(message, settlement.delaySeconds);
            failures.push(record.messageId);
            return;
        }
      } catch (error) {
        deps.logger.error("record failed; it will be redelivered", {
          messageId: record.messageId,
          error,
        });
        failures.push(record.messageId);
      }
    });
    return {
      batchItemFailures: failures.filter((id) => id.length > 0).map((itemIdentifier) => ({ itemIdentifier })),
    };
  };
}

export function toReceivedMessage(
  record: SQSRecord,
  queueNames: Readonly<Record<string, string>>,
): ReceivedTaskMessage {
  const physical = record.eventSourceARN.split(":").at(-1) ?? "";
  const queue = queueNames[physical];
  if (queue === undefined) throw new Error(`record from unknown queue ${physical}`);
  return {
    queue,
    messageId: record.messageId,
    receiptHandle: record.receiptHandle,
    body: record.body,
    receiveCount: Number(record.attributes.ApproximateReceiveCount) || 1,
  };
}
