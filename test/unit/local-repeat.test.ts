import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { repeat } from "#local/repeat";

describe("repeat (the local runtime's sweep loops)", () => {
  it("never starts a run while the previous one is still going, however slow it is", async () => {
    let inFlight = 0;
    let mostInFlight = 0;
    let runs = 0;
    const loop = repeat(
      async () => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        await sleep(30); // three intervals long
        inFlight--;
        runs++;
      },
      10,
      () => undefined,
    );

    await sleep(200);
    await loop.stop();

    expect(mostInFlight).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(inFlight).toBe(0);
  });

  it("keeps going after a run fails, and reports the failure", async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const loop = repeat(
      async () => {
        runs++;
        if (runs === 1) throw new Error("DynamoDB Local is busy");
      },
      5,
      (error) => errors.push(error),
    );

    await sleep(100);
    await loop.stop();

    expect(errors).toEqual([new Error("DynamoDB Local is busy")]);
    expect(runs).toBeGreaterThan(1);
  });

  it("stops: waits for the run in progress and starts no other", async () => {
    let finished = 0;
    let started = 0;
    const loop = repeat(
      async () => {
        started++;
        await sleep(40);
        finished++;
      },
      1,
      () => undefined,
    );
    await sleep(20); // the first run is in progress

    await loop.stop();
    const afterStop = { started, finished };
    await sleep(60);

    expect(afterStop).toEqual({ started: 1, finished: 1 });
    expect({ started, finished }).toEqual({ started: 1, finished: 1 });
  });
});
