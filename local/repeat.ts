/** A loop started by `repeat`. */
export interface RepeatingTask {
  /** Stops scheduling runs and resolves once the run in progress (if any) has finished. */
  stop(): Promise<void>;
}

/**
 * Runs `run` every `intervalMs`, counted from the end of the previous run: never two runs at once.
 * A sweep that is slow (DynamoDB Local on a busy machine) delays the next one instead of piling more
 * requests on top of itself. A run that throws is reported to `onError` and the loop goes on.
 *
 * @example
 * const sweeping = repeat(() => sweeper.sweep(), 1_000, (error) => logger.error("sweep failed", { error }));
 * await sweeping.stop();
 */
export function repeat(
  run: () => Promise<unknown>,
  intervalMs: number,
  onError: (error: unknown) => void,
): RepeatingTask {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      running = once();
    }, intervalMs);
  };
  const once = async () => {
    try {
      await run();
    } catch (error) {
      onError(error);
    }
    if (!stopped) schedule();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
