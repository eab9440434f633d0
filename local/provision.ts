import { type DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { createAgentryTable } from "#shared/adapters/aws/table-schema";
import { type PlatformConfig, queuesForCapability } from "#shared/config/platform";

export interface ProvisionedResources {
  readonly tableName: string;
  /** Logical queue name → URL. */
  readonly queueUrls: Record<string, string>;
  /** Logical queue name → its DLQ's URL. */
  readonly dlqUrls: Record<string, string>;
}

/**
 * Creates on the emulators what the CDK stack creates on AWS: the table, and for every capability a
 * high and a normal queue, each with its own DLQ after `maxReceiveCount` receives (DLQ retention 14
 * days, queue retention 4 days, visibility 6 × the worker timeout — as in infra/).
 *
 * @example
 * const resources = await provisionLocalResources({ dynamodb, sqs, config, prefix: "agentry-local" });
 */
export async function provisionLocalResources(options: {
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
  config: PlatformConfig;
  prefix: string;
}): Promise<ProvisionedResources> {
  const tableName = `${options.prefix}-tasks`;
  // A durable data directory already holds the table from the previous run.
  const existing = await options.dynamodb.send(new ListTablesCommand({}));
  if (!existing.TableNames?.includes(tableName)) await createAgentryTable(options.dynamodb, tableName);
  const queueUrls: Record<string, string> = {};
  const dlqUrls: Record<string, string> = {};
  for (const capability of options.config.capabilities) {
    for (const logical of queuesForCapability(capability.name)) {
      const dlq = await options.sqs.send(
        new CreateQueueCommand({
          QueueName: `${options.prefix}-${logical}-dlq`,
          Attributes: { MessageRetentionPeriod: String(14 * 86_400) },
        }),
      );
      if (!dlq.QueueUrl) throw new Error(`could not create the DLQ of ${logical}`);
      const dlqArn = await options.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }),
      );
      const queue = await options.sqs.send(
        new CreateQueueCommand({
          QueueName: `${options.prefix}-${logical}`,
          Attributes: {
            VisibilityTimeout: String(6 * capability.workerTimeoutSeconds),
            MessageRetentionPeriod: String(4 * 86_400),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: dlqArn.Attributes?.QueueArn,
              maxReceiveCount: options.config.maxReceiveCount,
            }),
          },
        }),
      );
      if (!queue.QueueUrl) throw new Error(`could not create queue ${logical}`);
      queueUrls[logical] = queue.QueueUrl;
      dlqUrls[logical] = dlq.QueueUrl;
    }
  }
  return { tableName, queueUrls, dlqUrls };
}
