import { Duration, Validations } from "aws-cdk-lib";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";

export interface DeadLetterQueueProps {
  /**
   * How long a dead-lettered message is kept for inspection and redrive.
   *
   * @default Duration.days(14) - the SQS maximum
   */
  readonly retentionPeriod?: Duration;
}

/**
 * Creates a dead-letter queue the way every Agentry DLQ is made: SQS-managed SSE, TLS enforced by
 * queue policy, long retention, and no redrive policy of its own — it is the end of the chain,
 * watched by an alarm.
 *
 * @example
 * const dlq = createDeadLetterQueue(this, "DeadLetterQueue");
 * new Queue(this, "Queue", { deadLetterQueue: { queue: dlq, maxReceiveCount: 5 } });
 */
export function createDeadLetterQueue(scope: Construct, id: string, props: DeadLetterQueueProps = {}): Queue {
  const queue = new Queue(scope, id, {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: props.retentionPeriod ?? Duration.days(14),
  });
  Validations.of(queue).acknowledge({
    id: "Serverless-SQSRedrivePolicy",
    reason:
      "This queue is itself a dead-letter queue, the end of the redrive chain; a DLQ of a DLQ would hide failures from the DLQ alarm.",
  });
  return queue;
}
