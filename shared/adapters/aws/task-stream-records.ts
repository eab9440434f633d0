import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { type TaskChange, taskChangeId } from "#shared/ports/task-store";
import { taskFromItem } from "./dynamo-task-store.ts";

/**
 * A DynamoDB stream record, as Lambda's event source delivers it and as GetRecords returns it (the
 * fields both share).
 */
export interface TaskStreamRecord {
  readonly eventName?: string;
  readonly dynamodb?: {
    readonly Keys?: Record<string, unknown>;
    readonly NewImage?: Record<string, unknown>;
    readonly OldImage?: Record<string, unknown>;
    readonly SequenceNumber?: string;
  };
}

/** What the handler needs from the core's change processor (`TaskStream`). */
export interface TaskChangeProcessor {
  process(changes: readonly TaskChange[]): Promise<{ readonly failedAt?: number }>;
}

/**
 * The task changes among stream records (other items of the table — agents, jobs, statistics — are
 * skipped), each with the sequence number of the record it came from.
 *
 * @example
 * const { changes, sequenceNumbers } = taskChangesFromStream(event.Records);
 */
export function taskChangesFromStream(records: readonly TaskStreamRecord[]): {
  changes: TaskChange[];
  sequenceNumbers: string[];
} {
  const changes: TaskChange[] = [];
  const sequenceNumbers: string[] = [];
  for (const record of records) {
    const keys = record.dynamodb?.Keys as Record<string, AttributeValue> | undefined;
    if (keys?.sk?.S !== "TASK" || !keys.pk?.S?.startsWith("TASK#")) continue;
    const image = (raw: Record<string, unknown> | undefined) =>
      raw ? taskFromItem(raw as Record<string, AttributeValue>) : undefined;
    const before = image(record.dynamodb?.OldImage);
    const after = record.eventName === "REMOVE" ? undefined : image(record.dynamodb?.NewImage);
    if (!before && !after) continue;
    changes.push({
      id: taskChangeId(before, after),
      ...(before ? { before } : {}),
      ...(after ? { after } : {}),
    });
    sequenceNumbers.push(record.dynamodb?.SequenceNumber ?? "");
  }
  return { changes, sequenceNumbers };
}

/**
 * The Lambda handler of the table's stream (event source with ReportBatchItemFailures): hands the
 * task changes to the processor and reports the record of the first change it did not process, so
 * Lambda delivers again from there and nothing before it.
 *
 * @example
 * export const handler = createTaskStreamHandler(new TaskStream({ store, jobs: aggregator }));
 */
export function createTaskStreamHandler(processor: TaskChangeProcessor): (event: {
  Records: readonly TaskStreamRecord[];
}) => Promise<{
  batchItemFailures: { itemIdentifier: string }[];
}> {
  return async (event) => {
    const { changes, sequenceNumbers } = taskChangesFromStream(event.Records);
    if (changes.length === 0) return { batchItemFailures: [] };
    const { failedAt } = await processor.process(changes);
    const failed = failedAt === undefined ? undefined : sequenceNumbers[failedAt];
    return { batchItemFailures: failed === undefined ? [] : [{ itemIdentifier: failed }] };
  };
}
