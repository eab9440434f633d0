import { describe, expect, it } from "vitest";
import { serviceBusEntities } from "#local/servicebus/entities";
import { platformConfig } from "#shared/agents/workers";

describe("the Service Bus entities from the platform config", () => {
  const plan = serviceBusEntities(
    {
      ...platformConfig,
      capabilities: [
        { name: "text-analysis", workerTimeoutSeconds: 30, maxConcurrency: 5 },
        { name: "long-running", workerTimeoutSeconds: 120, maxConcurrency: 2 },
      ],
    },
    { prefix: "agentry", nodes: ["node-1", "node-2"] },
  );

  it("has a queue per capability and tier, high tier first, named after the prefix", () => {
    expect(plan.queues.map((q) => [q.logical, q.name])).toEqual([
      ["text-analysis-high", "agentry-text-analysis-high"],
      ["text-analysis", "agentry-text-analysis"],
      ["long-running-high", "agentry-long-running-high"],
      ["long-running", "agentry-long-running"],
    ]);
  });

  it("locks for 6 × the handler timeout, capped at the Service Bus maximum of 5 minutes", () => {
    expect(plan.queues.map((q) => q.lockDurationSeconds)).toEqual([180, 180, 300, 300]);
  });

  it("dead-letters after the config's max receive count and drops repeated sends for 10 minutes", () => {
    for (const queue of plan.queues) {
      expect(queue).toMatchObject({ maxDeliveryCount: 5, duplicateDetectionWindowSeconds: 600 });
    }
  });

  it("has one messages topic with a subscription per node", () => {
    expect(plan.topic).toEqual({ name: "agentry-messages", duplicateDetectionWindowSeconds: 600 });
    expect(plan.subscriptions.map((s) => s.name)).toEqual(["node-1", "node-2"]);
  });
});
