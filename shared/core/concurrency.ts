/**
 * Runs `run` over `items`, at most `limit` at a time, in order of start. Rejects with the first error
 * (the items already started still run to their end).
 *
 * @example
 * await forEachLimited(taskIds, 16, (taskId) => supervisor.cancel(taskId));
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await run(item);
    }
  });
  await Promise.all(lanes);
}
