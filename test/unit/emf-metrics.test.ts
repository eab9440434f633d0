import { afterEach, describe, expect, it, vi } from "vitest";
import { EmfMetrics } from "#shared/adapters/aws/emf-metrics";
import { type BusEvent, DetailType, EVENT_SOURCE } from "#shared/domain/events";
import type { JobStatus } from "#shared/domain/job";
import type { Task } from "#shared/domain/task";
import { lifecycleEvent } from "#shared/domain/transitions";
import { buildTask } from "#test/support/tasks";

/** Every EMF document written to stdout while `run` runs. */
async function emfDocuments(run: () => Promise<void>): Promise<Record<string, any>[]> {
  const lines: string[] = [];
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    await run();
  } finally {
    write.mockRestore();
  }
  return lines
    .flatMap((line) => line.split("\n"))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line));
}

const finished = (overrides: Partial<Task>): Task =>
  buildTask({
    requiredCapability: "text-analysis",
    taskType: "analyze_text",
    result: { success: true, executionTimeMs: 12 },
    ...overrides,
  });

describe("EmfMetrics", () => {
  afterEach(() => vi.restoreAllMocks());

  it("counts published task outcomes and durations per capability and task type, one document each", async () => {
    const published: string[] = [];
    const metrics = new EmfMetrics({ namespace: "AgentryTest", serviceName: "worker" });
    const publisher = metrics.counting({
      publish: async (events) => {
        published.push(...events.map((e) => e.id));
      },
    });

    const documents = await emfDocuments(async () => {
      await publisher.publish([
        lifecycleEvent(finished({ status: "completed", result: { success: true, executionTimeMs: 12 } })),
        lifecycleEvent(finished({ status: "completed", result: { success: true, executionTimeMs: 30 } })),
        lifecycleEvent(finished({ status: "failed", result: { success: false, executionTimeMs: 5 } })),
        lifecycleEvent(finished({ status: "submitted", result: undefined }), DetailType.TaskRetrying),
        lifecycleEvent(
          buildTask({ status: "submitted", requiredCapability: "summarization", taskType: "summarize" }),
        ),
        lifecycleEvent(
          finished({ status: "completed", requiredCapability: "summarization", taskType: "summarize" }),
        ),
      ]);
      metrics.flush();
    });

    expect(published).toHaveLength(6);
    expect(documents).toHaveLength(2);
    const [analysis, summaries] = documents;
    expect(analysis).toMatchObject({
      capability: "text-analysis",
      taskType: "analyze_text",
      service: "worker",
      TasksCompleted: 2,
      TasksFailed: 1,
      TasksRetried: 1,
      TaskDuration: [12, 30, 5],
    });
    expect(analysis?._aws.CloudWatchMetrics[0].Namespace).toBe("AgentryTest");
    expect(summaries).toMatchObject({
      capability: "summarization",
      taskType: "summarize",
      TasksCompleted: 1,
    });
    expect(summaries).not.toHaveProperty("TasksFailed");
  });

  it("counts jobs by their final status, and nothing that failed to publish", async () => {
    const metrics = new EmfMetrics({ namespace: "AgentryTest" });
    // The envelope jobCompletedEvent (shared/core/jobs/job-steps.ts) publishes, with the detail counted.
    const job = (status: JobStatus): BusEvent => ({
      id: `job:${status}`,
      source: EVENT_SOURCE,
      "detail-type": DetailType.JobCompleted,
      time: "2030-01-01T00:00:00.000Z",
      resources: [],
      detail: { jobId: `job-${status}`, status },
    });
    const failing = metrics.counting({
      publish: async () => {
        throw new Error("PutEvents failed");
      },
    });
    const working = metrics.counting({ publish: async () => {} });

    const documents = await emfDocuments(async () => {
      await expect(failing.publish([job("completed")])).rejects.toThrow("PutEvents failed");
      await working.publish([job("completed"), job("failed"), job("failed")]);
      metrics.flush();
      metrics.flush();
    });

    expect(documents).toHaveLength(1);
    expect(documents[0]).toMatchObject({ JobsCompleted: 1, JobsFailed: 2 });
  });
});
