import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { Logger } from "#shared/ports/logger";

export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

export interface SqsEventSourceOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly handler: SqsBatchHandler;
  readonly logger: Logger;
  /** @default 10 (the Lambda event source mapping's default for standard queues) */
  readonly batchSize?: number;
  /** Long-poll wait per receive. @default 1 */
  readonly waitSeconds?: number;
  /** Concurrent batches in flight (the mapping's MaximumConcurrency). @default 2 */
  readonly maxConcurrency?: number;
  readonly region?: string;
}

export interface RunningEventSource {
  stop(): Promise<void>;
}

/**
 * What Lambda's SQS event source mapping does, for the emulated runtime: long-polls the queue, hands
 * each batch to the handler as a real-shaped SQS event, deletes the records the handler did not report
 * in `batchItemFailures`, and leaves the failures to become visible again (the queue's redrive policy
 * moves a message to its DLQ after maxReceiveCount receives). A handler that throws fails the whole
 * batch, as on Lambda.
 *
 * @example
 * const source = await startSqsEventSource({ sqs, queueUrl, handler, logger });
 * await source.stop();
 */
export async function startSqsEventSource(options: SqsEventSourceOptions): Promise<RunningEventSource> {
  const attributes = await options.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: options.queueUrl, AttributeNames: ["QueueArn"] }),
  );
  const queueArn = attributes.Attributes?.QueueArn;
  if (!queueArn) throw new Error(`queue ${options.queueUrl} has no ARN`);
  const region = options.region ?? queueArn.split(":")[3] ?? "us-east-1";
  const stopping = new AbortController();

  const lane = async () => {
    while (!stopping.signal.aborted) {
      try {
        const received = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: options.batchSize ?? 10,
            WaitTimeSeconds: options.waitSeconds ?? 1,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
          { abortSignal: stopping.signal },
        );
        const messages = received.Messages ?? [];
        if (messages.length === 0) continue;
        await invoke(messages.map((m) => toSqsRecord(m, queueArn, region)));
      } catch (error) {
        if (stopping.signal.aborted) return;
        options.logger.error("event source poll failed; retrying", { error });
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };

  const invoke = async (records: SQSRecord[]) => {
    let failed: Set<string>;
    try {
      const response = await options.handler({ Records: records });
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (error) {
      options.logger.error("batch handler threw; the whole batch will be redelivered", {
        error,
      });
      return;
    }
    const succeeded = records.filter((r) => !failed.has(r.messageId));
    if (succeeded.length === 0) return;
    await options.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: succeeded.map((r, index) => ({ Id: String(index), ReceiptHandle: r.receiptHandle })),
      }),
    );
  };

  const lanes = Array.from({ length: options.maxConcurrency ?? 2 }, () => lane());
  return {
    async stop() {
      stopping.abort();
      await Promise.allSettled(lanes);
    },
  };
}

/** An SQS message as the Lambda event source mapping hands it to a function: one record of an SQS event. */
export function toSqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const system = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: system.ApproximateReceiveCount ?? "1",
      SentTimestamp: system.SentTimestamp ?? String(Date.now()),
      SenderId: system.SenderId ?? "000000000000",
      ApproximateFirstReceiveTimestamp: system.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        {
          dataType: value.DataType ?? "String",
          ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
        },
      ]),
    ),
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}
