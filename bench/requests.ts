import { startLocalRuntime } from "#local/runtime";
import type { RequestCountSnapshot } from "#shared/adapters/aws/request-accounting";
import type { BusEvent } from "#shared/domain/events";

export interface RequestsPerTask {
  readonly tasks: number;
  readonly batchSize: number;
  readonly seconds: number;
  /** Requests by `Service.Operation` during the run, ESM polling receives included. */
  readonly snapshot: RequestCountSnapshot;
  /** Per completed task, without the event source mapping's ReceiveMessage polls. */
  readonly perTask: number;
  readonly perTaskByOperation: Readonly<Record<string, number>>;
}

const TERMINAL = new Set(["Task Completed", "Task Failed", "Task Canceled", "Task Rejected"]);

/**
 * Billed AWS requests per completed task on the emulated stack (DynamoDB Local + fauxqs, the
 * Lambda dispatch handler fed by the local event source loop), submitting through the HTTP API in
 * batches. The sweeper is paused, so what is counted is the task path itself. PutEvents is counted
 * as the EventBridge adapter would send it: one request per 10 events published together.
 */
export async function measureRequestsPerTask(tasks = 200, batchSize = 10): Promise<RequestsPerTask> {
  const runtime = await startLocalRuntime({
    mode: "emulated",
    port: 0,
    logLevel: "silent",
    sweepIntervalMs: 3_600_000,
  });
  try {
    const requests = runtime.requests;
    if (!requests) throw new Error("the emulated runtime has no request counter");
    countPublishedEvents(runtime.bus, (n) => {
      for (let i = 0; i < Math.ceil(n / 10); i++) requests.record("EventBridge", "PutEvents");
    });
    const finished = new Set<string>();
    runtime.bus.subscribe({ source: ["agentry"], "detail-type": [...TERMINAL] }, (event) => {
      finished.add(String(event.detail.taskId));
    });

    await submitAndWait(runtime.url, batchSize, batchSize, finished); // warm up the clients and queues
    finished.clear();
    requests.reset();
    const started = performance.now();
    const batches = Math.ceil(tasks / batchSize);
    for (let b = 0; b < batches; b++) await submit(runtime.url, batchSize);
    await waitFor(() => finished.size >= batches * batchSize, 120_000);
    const seconds = (performance.now() - started) / 1000;
    const snapshot = requests.snapshot();
    const done = finished.size;
    const perTaskByOperation = Object.fromEntries(
      Object.entries(snapshot.byOperation)
        .filter(([op]) => op !== "SQS.ReceiveMessage")
        .map(([op, n]) => [op, Number((n / done).toFixed(2))]),
    );
    const perTask = Object.values(perTaskByOperation).reduce((a, b) => a + b, 0);
    return {
      tasks: done,
      batchSize,
      seconds,
      snapshot,
      perTask: Number(perTask.toFixed(2)),
      perTaskByOperation,
    };
  } finally {
    await runtime.stop();
  }
}

function countPublishedEvents(
  bus: { publish(events: readonly BusEvent[]): Promise<void> },
  onPublish: (n: number) => void,
) {
  const publish = bus.publish.bind(bus);
  bus.publish = async (events) => {
    if (events.length > 0) onPublish(events.length);
    await publish(events);
  };
}

async function submit(url: string, batchSize: number): Promise<void> {
  const response = await fetch(`${url}/tasks`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      tasks: Array.from({ length: batchSize }, (_, i) => ({
        taskType: "analyze_text",
        input: { text: `Task ${i}. Done.` },
      })),
    }),
  });
  if (response.status !== 202)
    throw new Error(`submit answered ${response.status}: ${await response.text()}`);
}

async function submitAndWait(
  url: string,
  count: number,
  batchSize: number,
  finished: Set<string>,
): Promise<void> {
  for (let i = 0; i < count; i += batchSize) await submit(url, batchSize);
  await waitFor(() => finished.size >= count, 60_000);
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("tasks did not finish in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
