import type { AttributeValue, DynamoDBClient, Update } from "@aws-sdk/client-dynamodb";
import type { CounterDeltas } from "#shared/domain/statistics";
import { batchGetAll, type ItemKey, keyAttributes, type ResolvedRetryOptions } from "./table-schema.ts";

/** Counter attributes are `counter:<name>` number attributes on a shard's item. */
const COUNTER_PREFIX = "counter:";

/**
 * The `ADD` of counter deltas to one shard item, to put in the transaction of the write they count
 * (so statistics move exactly when the write happens). Undefined when no delta is non-zero.
 *
 * @example
 * const update = counterAddUpdate(tableName, TaskKeys.counters(shardOf(taskId, shards)), { "status:working": 1 });
 */
export function counterAddUpdate(
  tableName: string,
  key: ItemKey,
  counters: CounterDeltas,
): Update | undefined {
  const deltas = Object.entries(counters).filter(([, delta]) => Number.isFinite(delta) && delta !== 0);
  if (deltas.length === 0) return undefined;
  const names: Record<string, string> = {};
  const values: Record<string, AttributeValue> = {};
  const additions = deltas.map(([name, delta], i) => {
    names[`#c${i}`] = `${COUNTER_PREFIX}${name}`;
    values[`:c${i}`] = { N: String(delta) };
    return `#c${i} :c${i}`;
  });
  return {
    TableName: tableName,
    Key: keyAttributes(key),
    UpdateExpression: `ADD ${additions.join(", ")}`,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/** Sums the counters of every shard item (one BatchGetItem per 100 shards, consistent reads). */
export async function readShardedCounters(
  client: DynamoDBClient,
  tableName: string,
  shardKeys: readonly ItemKey[],
  retry: ResolvedRetryOptions,
): Promise<Record<string, number>> {
  const items = await batchGetAll(client, tableName, shardKeys.map(keyAttributes), {
    ...retry,
    consistentRead: true,
  });
  const totals: Record<string, number> = {};
  for (const item of items) {
    for (const [name, value] of Object.entries(item)) {
      if (!name.startsWith(COUNTER_PREFIX) || value.N === undefined) continue;
      const counter = name.slice(COUNTER_PREFIX.length);
      totals[counter] = (totals[counter] ?? 0) + Number(value.N);
    }
  }
  return totals;
}
