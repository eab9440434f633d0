import { describe, expect, it } from "vitest";
import { formatReport, runChaos } from "#test/chaos/chaos";

/**
 * The short chaos run (`npm run chaos` runs the long one): a few hundred tasks, plain and in jobs
 * and pipelines, through worker processes SIGKILLed at random, one kill -9 and restart of the
 * runtime, and injected throttling, 5xx and duplicate deliveries; then every invariant is checked
 * from the table and the API (test/chaos/chaos.ts).
 */
describe("chaos run (short)", () => {
  it("keeps every invariant while processes die and the AWS clients misbehave", async () => {
    const report = await runChaos({ tasks: 250 });
    const summary = formatReport(report);

    expect(report.violations, summary).toEqual([]);
    // The run proves something only if the chaos happened: every kind of fault, on every service the
    // processes call. EventBridge is no longer one of them: lifecycle events come from the table's
    // stream and no worker publishes any (docs/adr/0007-write-path-cost.md).
    for (const service of ["DynamoDB", "SQS"]) {
      expect(report.faults.throttle?.[service] ?? 0, `${service} throttling\n${summary}`).toBeGreaterThan(0);
      expect(report.faults["5xx"]?.[service] ?? 0, `${service} 5xx\n${summary}`).toBeGreaterThan(0);
    }
    expect(report.faults["5xx-after-apply"]?.DynamoDB ?? 0, summary).toBeGreaterThan(0);
    expect(report.faults.redelivery?.SQS ?? 0, summary).toBeGreaterThan(0);
    expect(report.faults["duplicate-send"]?.SQS ?? 0, summary).toBeGreaterThan(0);
    expect(report.workerKills, summary).toBeGreaterThan(0);
    expect(report.runtimeRestarts, summary).toBe(1);
    expect(report.timeouts, summary).toBeGreaterThan(0);
    expect(report.deadLetters, summary).toBeGreaterThan(0);
    expect(report.tasks.inTable, summary).toBeGreaterThanOrEqual(250);
  }, 300_000);
});
