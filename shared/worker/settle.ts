import type { Settlement } from "#shared/core/dispatcher";
import type { ReceivedTaskMessage, TaskQueue } from "#shared/ports/task-queue";

/**
 * Carries out a settlement on the message's queue (the poller's way; a Lambda worker lets the event
 * source mapping delete successes instead, see lambda-handler.ts).
 */
export async function settleMessage(
  queue: TaskQueue,
  message: ReceivedTaskMessage,
  settlement: Settlement,
): Promise<void> {
  switch (settlement.kind) {
    case "ack":
      await queue.ack([message]);
      return;
    case "retry":
      await sendRetry(queue, message, settlement);
      await queue.ack([message]);
      return;
    case "release":
      await queue.release(message, settlement.delaySeconds);
      return;
    case "dead-letter":
      await queue.deadLetter(message, settlement.reason);
      return;
  }
}

/** A retry is a fresh, delayed message, so the queue's receive count keeps counting crashes only. */
export async function sendRetry(
  queue: TaskQueue,
  message: ReceivedTaskMessage,
  settlement: Extract<Settlement, { kind: "retry" }>,
): Promise<void> {
  const taskId = (JSON.parse(message.body) as { taskId: string }).taskId;
  const failures = await queue.send([
    {
      queue: message.queue,
      body: { taskId, attempt: settlement.attempt },
      delaySeconds: settlement.delaySeconds,
    },
  ]);
  if (failures.length > 0)
    throw new Error(`could not enqueue the retry of task ${taskId}: ${failures[0]?.message}`);
}
