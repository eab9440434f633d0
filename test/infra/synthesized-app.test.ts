import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { keyAttributes, TaskKeys } from "#shared/adapters/aws/table-schema";
import { platformConfig, workers } from "#shared/agents/workers";
import { queuesForCapability } from "#shared/config/platform";
import type { JobStatistics, JobView } from "#shared/domain/job";
import type { SupervisorStatistics } from "#shared/domain/statistics";
import type { Task } from "#shared/domain/task";
import type { TaskContext } from "#shared/worker/define-worker";
import { localDynamoClient, localSqsClient } from "#test/support/aws";
import { httpApiEvent } from "#test/support/http-api-events";
import { CONDITIONAL_GRANTS_METADATA } from "../../infra/constructs/agentry-function.ts";
import { propertiesOf, resourcesOfType } from "./synth-run/cfn.ts";
import { agentryTableLayout, templateTableLayout } from "./synth-run/emulated-resources.ts";
import { grantedActions, isAllowed, statementsOfRole, wildcardMatch } from "./synth-run/iam-policy.ts";
import { type LocalApp, type LocalAppFunction, REGION, startLocalApp } from "./synth-run/local-app.ts";
import { authorizationsOf, isConditionNotMet } from "./synth-run/recording-proxy.ts";

/**
 * The synthesized app, run locally (issue #4): the template `cdk synth` produces is stood up on
 * DynamoDB Local, fauxqs and a small EventBridge stand-in, its bundled functions run with the
 * environment the template gives them (the workers fed by their queues' event source mappings, the
 * aggregator by the task table's stream, issue #9), tasks are driven end to end through them, and
 * every AWS call each function makes — the stream reads its mapping makes with its role included —
 * is checked against the IAM policy the template gives its role. Container
 * workers (issue #12) run the same way: the bundle in each ECS task definition's image asset, as a
 * child process with the task definition's environment, its calls checked against its task role.
 */

/**
 * Synthesis bundles six functions and a container entry with esbuild (a minute and more on a loaded
 * 2-core machine); provisioning, imports and the drive add some more.
 */
const SETUP_TIMEOUT_MS = 420_000;
const DRIVE_TIMEOUT_MS = 45_000;
/** The stream lags the writes by the mapping's batching window and a poll or two. */
const STREAM_CATCH_UP_TIMEOUT_MS = 30_000;
const TERMINAL = new Set(["completed", "failed", "canceled", "rejected"]);

/**
 * Grants a platform function's role holds that this drive does not use, each with the reason it is
 * there, checked against the code. A grant that nobody uses and nobody justified fails the test, and
 * so does a reason here for a grant that the drive does use or that is no longer granted. Keys are the
 * functions' POWERTOOLS_SERVICE_NAME; the check is per action (an action used on one resource counts
 * as used). Grants that any run may leave unused (the Lambda service's log and X-Ray grants, a
 * worker's retry and release grants) are explained by the construct that grants them, in the
 * template (`declareConditionalGrants`), so the test follows every worker the stack deploys.
 */
const UNUSED_GRANTS_WITH_REASON: Record<string, Record<string, string>> = {
  "supervisor-api": {
    "dynamodb:DeleteItem":
      "only DELETE /agents/{agentId} deletes (DynamoAgentRegistry.unregister removes the profile and load items in one transaction); the Lambda workers register themselves but never unregister, and this drive calls no agent route",
    "events:PutEvents":
      "only agent messages (POST /messages → MessagingService) and a canceled job's Job Completed (POST /jobs/{jobId}/cancel → JobService.cancel); task lifecycle events follow from the table's stream, and this drive sends no message and cancels no job",
  },
  sweeper: {
    "dynamodb:GetItem":
      "read for a due job (Aggregator.advanceDueJobs → DynamoJobStore.get, and the unrecorded tasks a reconciliation reads) and when the liveness sweep marks an agent unavailable (DynamoAgentRegistry.markUnavailableIfStale reads the load item); lease recoveries and re-enqueues write from the listed snapshot without a read. The sweep runs before the job is submitted, and every agent heartbeat is fresh",
    "dynamodb:PutItem":
      "only for a due job: its step result (DynamoJobStore.finish), or a resubmitted step's tasks and task list (Supervisor.submit, DynamoJobStore.attachTasks); no job is due during the sweep, and lease recoveries and re-enqueues are one UpdateItem each (re-enqueuing the stranded task included)",
    "events:PutEvents":
      "only a due job's Job Completed that nobody confirmed within the 30 s grace (Aggregator.advanceDueJobs); task lifecycle events follow from the table's stream, and no job is due during the sweep",
  },
  aggregator: {
    "sqs:SendMessage":
      "on every task queue, for a pipeline's next step (JobSteps.submitStep → Supervisor.submit), and on the stream mapping's on-failure queue, which Lambda sends a batch that failed every retry to with the function's role; this drive's job has one step and no batch fails",
    "sqs:GetQueueAttributes":
      "on the stream mapping's on-failure queue only, granted with SendMessage by the on-failure destination (SqsDlq → Queue.grantSendMessages); nothing in the function calls it, and no batch fails in this drive",
    "sqs:GetQueueUrl":
      "on the stream mapping's on-failure queue only, granted with SendMessage by the on-failure destination (SqsDlq → Queue.grantSendMessages); nothing in the function calls it, and no batch fails in this drive",
    "dynamodb:ListStreams":
      "on *, granted with the stream reads by the DynamoDB event source (Table.grantStreamRead; Lambda's documented execution-role permissions for a stream include it); the local mapping is given the stream's ARN by the template and never lists streams",
  },
};

/**
 * Functions this drive invokes but that make no AWS call, so their grants cannot be judged by it.
 * Listing a function that does make calls fails the test.
 */
const NOT_EXERCISED_WITH_REASON: Record<string, string> = {};

interface ExpectedTask {
  readonly submit: Record<string, unknown>;
  readonly output: unknown;
  readonly attempts: number;
  /** A Lambda worker's fixed id, or a matcher for a container's per-task id. */
  readonly workerAgentId: unknown;
}

/**
 * One batch over every task type of every registered worker (its example input), on both tiers of
 * its capability, plus one task retried once. The expected output is the worker's own handler run
 * in this process on the same input: the deployed bundle must agree with the definition.
 */
async function registeredWorkerBatch(): Promise<ExpectedTask[]> {
  const batch: ExpectedTask[] = [];
  for (const worker of workers) {
    for (const [taskType, handler] of Object.entries(worker.handlers)) {
      const input = worker.examples?.[taskType];
      const output = await handler(input, inProcessContext(taskType));
      for (const priority of [undefined, 9]) {
        batch.push({
          submit: { taskType, input, ...(priority === undefined ? {} : { priority }) },
          output,
          attempts: 1,
          workerAgentId:
            worker.deployment?.runsOn === "fargate"
              ? // A container registers as `<agentType>-<host>-<random>`.
                expect.stringMatching(new RegExp(`^${worker.agentType}-.+-[0-9a-f]{8}$`))
              : `lambda:${worker.agentType}`,
        });
      }
    }
  }
  // Fails its first attempt on purpose: the worker sends the retry to its queue with a delay.
  batch.push({
    submit: { taskType: "echo", input: { value: "second time lucky", failAttempts: 1 } },
    output: { value: "second time lucky", attempt: 2 },
    attempts: 2,
    workerAgentId: "lambda:diagnostics",
  });
  return batch;
}

/** The context a handler sees on its first attempt, for running it in this process. */
function inProcessContext(taskType: string): TaskContext {
  const silent = () => {};
  return {
    taskId: "in-process",
    taskType,
    attempt: 1,
    metadata: {},
    signal: new AbortController().signal,
    heartbeat: async () => {},
    logger: { debug: silent, info: silent, warn: silent, error: silent },
  };
}

/** A task whose queue message is lost after submission; only the sweeper can get it running. */
const STRANDED: ExpectedTask = {
  submit: { taskType: "echo", input: { value: "recovered by the sweeper" } },
  output: { value: "recovered by the sweeper", attempt: 1 },
  attempts: 1,
  workerAgentId: "lambda:diagnostics",
};

/**
 * A fan-out job over every capability: its tasks' terminal changes reach the aggregator through the
 * task table's stream, and the aggregator records each outcome, reduces the step and ends the job.
 */
const JOB = {
  submit: {
    tasks: [
      { taskType: "analyze_text", input: { text: "One job. Three tasks." } },
      { taskType: "summarize", input: { text: "Fan out. Fan in. Done.", maxSentences: 1 } },
      { taskType: "echo", input: { value: "collected" } },
    ],
    aggregation: { policy: "all", reducer: "collect" },
  },
  /** The collect reducer's output: every task's output, in submission order. */
  output: [
    { words: 4, characters: 21, sentences: 2 },
    { summary: "Fan out." },
    { value: "collected", attempt: 1 },
  ],
} as const;

/**
 * What `GET /stats` must say about these tasks, counted from the tasks themselves: every one
 * submitted, by type; each in its current status; each one a worker finished, by that worker; and
 * the mean execution time of the finished attempts.
 */
function statisticsOf(tasks: readonly Task[]): SupervisorStatistics {
  const tally = (keys: readonly string[]) => {
    const counts: Record<string, number> = {};
    for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
    return counts;
  };
  const inStatus = (...statuses: string[]) => tasks.filter((t) => statuses.includes(t.status)).length;
  const finished = tasks.filter((t) => TERMINAL.has(t.status) && t.workerAgentId !== undefined);
  const times = finished.flatMap((t) => (t.result === undefined ? [] : [t.result.executionTimeMs]));
  return {
    totalTasksSubmitted: tasks.length,
    tasksCompleted: inStatus("completed"),
    tasksFailed: inStatus("failed"),
    tasksCanceled: inStatus("canceled"),
    tasksRejected: inStatus("rejected"),
    tasksPending: inStatus("submitted"),
    tasksInProgress: inStatus("working", "input-required"),
    averageExecutionTimeMs:
      times.length === 0 ? 0 : Math.round(times.reduce((sum, ms) => sum + ms, 0) / times.length),
    tasksByType: tally(tasks.map((t) => t.taskType)),
    tasksByAgent: tally(finished.map((t) => String(t.workerAgentId))),
  };
}

interface ApiAnswer {
  readonly statusCode: number;
  readonly body: any;
}

interface DriveResult {
  readonly batchIds: readonly string[];
  readonly strandedId: string;
  /** Task ids of the messages removed from the stranded task's queue. */
  readonly drained: readonly (string | undefined)[];
  readonly batchTasks: ReadonlyMap<string, Task>;
  readonly sweepReport: any;
  readonly strandedTask: Task | undefined;
  readonly listed: ApiAnswer;
  readonly listedByStatus: ApiAnswer;
  readonly stats: ApiAnswer;
  readonly jobSubmitted: ApiAnswer;
  readonly job: JobView | undefined;
  readonly jobTasks: ReadonlyMap<string, Task>;
  readonly jobStats: ApiAnswer;
  /** GET /stats once the job ended and the stream was consumed. */
  readonly finalStats: ApiAnswer;
  /** GET /stats/queues, and one dead-lettered message listed by GET /dlq, then dropped by a redrive. */
  readonly operations: {
    readonly queueStats: ApiAnswer;
    readonly deadLetteredId: string | undefined;
    readonly deadLetteredQueue: string;
    readonly deadLetters: ApiAnswer;
    readonly redrive: ApiAnswer;
    readonly deadLettersAfter: ApiAnswer;
  };
  /** Each container task started for the drive: its agent id, registration, and how SIGTERM ended it. */
  readonly containers: readonly {
    readonly service: string;
    readonly agentId: string;
    readonly registeredWhileRunning: boolean;
    readonly exit: { code: number | null; signal: string | null };
    readonly exitedAfterMs: number;
    readonly stopTimeoutSeconds: number;
    readonly registeredAfterExit: boolean;
  }[];
}

describe("the synthesized app, run locally on the emulators", () => {
  let app: LocalApp;
  let BATCH: readonly ExpectedTask[];
  let drive: DriveResult;
  const dynamodb = localDynamoClient();
  const sqs = localSqsClient();

  const aggregatorFunction = (): LocalAppFunction => {
    const found = [...app.functions.values()].filter((fn) => fn.service === "aggregator");
    if (found.length !== 1) throw new Error(`expected one aggregator function, got ${found.length}`);
    return found[0] as LocalAppFunction;
  };
  const tableLogicalId = (): string => {
    const tables = resourcesOfType(app.template, "AWS::DynamoDB::Table");
    if (tables.length !== 1) throw new Error(`expected one table, got ${tables.length}`);
    return String(tables[0]?.[0]);
  };

  const callApi = async (method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const answer = (await app.api.invoke(httpApiEvent({ method, path, body }))) as {
      statusCode: number;
      body?: string;
    };
    return {
      statusCode: answer.statusCode,
      body: answer.body === undefined ? undefined : JSON.parse(answer.body),
    };
  };

  const waitForTerminal = async (ids: readonly string[], timeoutMs: number): Promise<Map<string, Task>> => {
    const seen = new Map<string, Task>();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const id of ids) {
        if (TERMINAL.has(seen.get(id)?.status ?? "")) continue;
        const answer = await callApi("GET", `/tasks/${id}`);
        if (answer.statusCode === 200) seen.set(id, answer.body as Task);
      }
      if (ids.every((id) => TERMINAL.has(seen.get(id)?.status ?? "")) || Date.now() > deadline) return seen;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  const waitForJob = async (jobId: string, timeoutMs: number): Promise<JobView | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = await callApi("GET", `/jobs/${jobId}`);
      const job = answer.statusCode === 200 ? (answer.body as JobView) : undefined;
      if ((job && job.status !== "working") || Date.now() > deadline) return job;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  beforeAll(async () => {
    BATCH = await registeredWorkerBatch();
    app = await startLocalApp({
      dynamoEndpoint: inject("dynamoEndpoint"),
      sqsEndpoint: inject("sqsEndpoint"),
      dynamodb,
      sqs,
    });
    const [table] = app.emulated.tableArns.keys();

    // 1. A task whose message never reaches a worker: submitted, then its message removed from the
    //    queue before any event source runs, and its last update moved into the past.
    const stranded = await callApi("POST", "/tasks", STRANDED.submit);
    const strandedId = String(stranded.body?.tasks?.[0]?.taskId);
    const storedItem = await dynamodb.send(
      new GetItemCommand({
        TableName: table,
        Key: keyAttributes(TaskKeys.task(strandedId)),
        ConsistentRead: true,
      }),
    );
    const strandedQueue = String(unmarshall(storedItem.Item ?? {}).queue);
    const queueUrl = JSON.parse(app.api.templateEnv.QUEUE_URLS ?? "{}")[strandedQueue] as string;
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const drained = (received.Messages ?? []).map(
      (m) => (JSON.parse(m.Body ?? "{}") as { taskId?: string }).taskId,
    );
    for (const message of received.Messages ?? []) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    }
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: keyAttributes(TaskKeys.task(strandedId)),
        UpdateExpression: "SET updatedAt = :past",
        ExpressionAttributeValues: { ":past": { S: new Date(Date.now() - 10 * 60_000).toISOString() } },
      }),
    );

    // 2. The batch, then the event source mappings, until every task of the batch is terminal.
    const submitted = await callApi("POST", "/tasks", { tasks: BATCH.map((t) => t.submit) });
    const batchIds = ((submitted.body?.tasks ?? []) as { taskId: string }[]).map((t) => t.taskId);
    await app.startEventSources();
    // One task of each Fargate service, as its first scale-out from zero would start.
    const containerTasks = await Promise.all(app.containers.map((c) => c.start()));
    const batchTasks = await waitForTerminal(batchIds, DRIVE_TIMEOUT_MS);

    // 3. Reads the API serves from both indexes and the sharded counters. The statistics follow from
    //    the table's stream: read once the aggregator was handed every change made so far.
    const listed = await callApi("GET", "/tasks?limit=50");
    const listedByStatus = await callApi("GET", "/tasks?status=completed&limit=50");
    await app.streamsCaughtUp(STREAM_CATCH_UP_TIMEOUT_MS);
    const stats = await callApi("GET", "/stats");

    // 4. One scheduled sweep: it finds the stranded task and enqueues it again. Without an Input on
    //    the target, EventBridge Scheduler delivers its default notification, shaped like this.
    const sweepReport = await app.scheduled.fn.invoke(
      app.scheduled.input ?? {
        version: "0",
        id: "00000000-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        source: "aws.scheduler",
        account: app.emulated.account,
        time: new Date().toISOString(),
        region: REGION,
        resources: [app.scheduled.scheduleArn],
        detail: "{}",
      },
    );
    const strandedTask = (await waitForTerminal([strandedId], DRIVE_TIMEOUT_MS)).get(strandedId);

    // 5. A job through the API: its tasks run on the workers, their terminal changes reach the
    //    aggregator through the table's stream, and it ends the job with the collected outputs. Then
    //    the stream is consumed to its end and every delivery settles.
    const jobSubmitted = await callApi("POST", "/jobs", JOB.submit);
    const job = await waitForJob(String(jobSubmitted.body?.jobId), DRIVE_TIMEOUT_MS);
    const jobTasks = await waitForTerminal(job?.taskIds ?? [], DRIVE_TIMEOUT_MS);
    await app.streamsCaughtUp(STREAM_CATCH_UP_TIMEOUT_MS);
    await app.bus.idle();
    const jobStats = await callApi("GET", "/stats/jobs");
    const finalStats = await callApi("GET", "/stats");

    // 6. Operations: queue depths, and a message SQS moved to a DLQ after maxReceiveCount (sent there
    //    directly, as SQS would) for a task that completed meanwhile: listed, then dropped by a redrive.
    const queueStats = await callApi("GET", "/stats/queues");
    const [deadLetteredId] = batchIds;
    const deadLetterUrls = JSON.parse(app.api.templateEnv.DLQ_URLS ?? "{}") as Record<string, string>;
    const deadLetteredItem = await dynamodb.send(
      new GetItemCommand({
        TableName: table,
        Key: keyAttributes(TaskKeys.task(String(deadLetteredId))),
        ConsistentRead: true,
      }),
    );
    const deadLetteredQueue = String(unmarshall(deadLetteredItem.Item ?? {}).queue);
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: deadLetterUrls[deadLetteredQueue],
        MessageBody: JSON.stringify({ taskId: deadLetteredId }),
      }),
    );
    const deadLetters = await callApi("GET", "/dlq?limit=10");
    const redrive = await callApi("POST", "/dlq/redrive", { taskIds: [deadLetteredId] });
    const deadLettersAfter = await callApi("GET", "/dlq?limit=10");

    // 7. ECS stops every container task (a deploy or a scale-in): SIGTERM, then SIGKILL after its stop timeout.
    const isRegistered = async (agentId: string) =>
      (await callApi("GET", `/agents/${encodeURIComponent(agentId)}`)).statusCode === 200;
    const containers = await Promise.all(
      containerTasks.map(async (task, index) => {
        const container = app.containers[index];
        const registeredWhileRunning = await isRegistered(task.agentId);
        const sentAt = Date.now();
        const exit = await task.stop("SIGTERM");
        return {
          service: container?.service ?? "",
          agentId: task.agentId,
          registeredWhileRunning,
          exit,
          exitedAfterMs: Date.now() - sentAt,
          stopTimeoutSeconds: container?.stopTimeoutSeconds ?? 0,
          registeredAfterExit: await isRegistered(task.agentId),
        };
      }),
    );

    drive = {
      batchIds,
      strandedId,
      drained,
      batchTasks,
      sweepReport,
      strandedTask,
      listed,
      listedByStatus,
      stats,
      jobSubmitted,
      job,
      jobTasks,
      jobStats,
      finalStats,
      operations: { queueStats, deadLetteredId, deadLetteredQueue, deadLetters, redrive, deadLettersAfter },
      containers,
    };
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await app?.stop();
    dynamodb.destroy();
    sqs.destroy();
  });

  describe("synthesis", () => {
    it("maps every function in the template to its bundled handler", () => {
      const functions = resourcesOfType(app.template, "AWS::Lambda::Function");

      expect(functions.length).toBeGreaterThan(0);
      expect([...app.functions.keys()].sort()).toEqual(functions.map(([id]) => id).sort());
    });

    it("declares exactly the table layout createAgentryTable creates", () => {
      const [[, table] = []] = resourcesOfType(app.template, "AWS::DynamoDB::Table");

      expect(table && templateTableLayout(table)).toEqual(agentryTableLayout());
    });

    it("gives every function an environment that resolves against the emulated resources", () => {
      for (const fn of app.functions.values()) {
        const queueUrls = JSON.parse(fn.templateEnv.QUEUE_URLS ?? "null") as Record<string, string>;
        const dlqUrls = JSON.parse(fn.templateEnv.DLQ_URLS ?? "null") as Record<string, string>;

        expect(app.emulated.tableArns.has(fn.templateEnv.TABLE_NAME ?? ""), fn.service).toBe(true);
        expect(app.emulated.busArns.has(fn.templateEnv.EVENT_BUS_NAME ?? ""), fn.service).toBe(true);
        for (const url of [...Object.values(queueUrls), ...Object.values(dlqUrls)]) {
          expect(app.emulated.queueArns.has(url), `${fn.service}: ${url}`).toBe(true);
        }
      }
    });

    it("builds every container image from its own bundle, and gives it an environment that resolves", () => {
      const taskDefinitions = resourcesOfType(app.template, "AWS::ECS::TaskDefinition");

      expect(app.containers.map((c) => c.logicalId).sort()).toEqual(taskDefinitions.map(([id]) => id).sort());
      for (const container of app.containers) {
        const queueUrls = JSON.parse(container.templateEnv.QUEUE_URLS ?? "null") as Record<string, string>;
        const capabilities = (container.templateEnv.CAPABILITIES ?? "").split(",");

        expect(container.file.startsWith(app.synthesized.outdir)).toBe(true);
        expect(app.emulated.tableArns.has(container.templateEnv.TABLE_NAME ?? "")).toBe(true);
        expect(app.emulated.busArns.has(container.templateEnv.EVENT_BUS_NAME ?? "")).toBe(true);
        expect(Object.keys(queueUrls).sort()).toEqual(capabilities.flatMap((c) => [c, `${c}-high`]).sort());
        for (const url of Object.values(queueUrls)) expect(app.emulated.queueArns.has(url), url).toBe(true);
      }
    });
  });

  describe("the drive", () => {
    it("accepts the batch, and strands one task by removing its only message", () => {
      expect(drive.batchIds).toHaveLength(BATCH.length);
      expect(drive.drained).toEqual([drive.strandedId]);
    });

    it("completes every task of the batch with its handler's output, on the worker of its capability", () => {
      const outcomes = drive.batchIds.map((id) => {
        const task = drive.batchTasks.get(id);
        return {
          status: task?.status,
          output: task?.result?.output,
          attempts: task?.attempts,
          workerAgentId: task?.workerAgentId,
        };
      });

      expect(outcomes).toEqual(
        BATCH.map((t) => ({
          status: "completed",
          output: t.output,
          attempts: t.attempts,
          workerAgentId: t.workerAgentId,
        })),
      );
    });

    it("sends the batch to both tiers of every capability", () => {
      const sentTo = new Set(
        app.calls
          .filter((c) => c.caller === app.api.service && c.target === "AmazonSQS.SendMessageBatch")
          .flatMap((c) => c.authorizations.map((a) => a.resource)),
      );
      const taskQueues = Object.values(
        JSON.parse(app.api.templateEnv.QUEUE_URLS ?? "{}") as Record<string, string>,
      );

      expect([...sentTo].sort()).toEqual(taskQueues.map((url) => app.emulated.queueArns.get(url)).sort());
    });

    it("lists the tasks, all and by status, and counts them in the statistics", () => {
      const ids = (answer: ApiAnswer) => (answer.body?.items ?? []).map((t: Task) => t.taskId);

      expect([drive.listed.statusCode, drive.listedByStatus.statusCode]).toEqual([200, 200]);
      expect(ids(drive.listed)).toEqual(expect.arrayContaining([...drive.batchIds, drive.strandedId]));
      expect(ids(drive.listedByStatus).sort()).toEqual([...drive.batchIds].sort());
      expect(drive.stats.statusCode).toBe(200);
      expect(drive.stats.body).toMatchObject({
        totalTasksSubmitted: BATCH.length + 1,
        tasksCompleted: BATCH.length,
        tasksPending: 1,
      });
    });

    it("counts in the statistics, once the stream is consumed, exactly the tasks that ran", () => {
      const stranded = (drive.listed.body?.items ?? []).find((t: Task) => t.taskId === drive.strandedId);
      const ran = [...drive.batchTasks.values(), drive.strandedTask, ...drive.jobTasks.values()];

      expect(stranded?.status).toBe("submitted");
      expect(drive.stats.body).toEqual(statisticsOf([...drive.batchTasks.values(), stranded]));
      expect(ran.every((t) => t?.status === "completed")).toBe(true);
      expect(drive.finalStats.statusCode).toBe(200);
      expect(drive.finalStats.body).toEqual(statisticsOf(ran as Task[]));
    });

    it("re-enqueues the stranded task on the scheduled sweep, and a worker completes it", () => {
      expect(drive.sweepReport).toMatchObject({ reenqueued: 1, expiredLeases: 0 });
      expect({
        status: drive.strandedTask?.status,
        output: drive.strandedTask?.result?.output,
        workerAgentId: drive.strandedTask?.workerAgentId,
      }).toEqual({ status: "completed", output: STRANDED.output, workerAgentId: STRANDED.workerAgentId });
    });

    it("runs a job submitted through the API to completion, with its tasks' outputs collected in order", () => {
      const taskIds = (drive.jobSubmitted.body?.taskIds ?? []) as string[];

      expect(drive.jobSubmitted.statusCode).toBe(202);
      expect(taskIds).toHaveLength(JOB.submit.tasks.length);
      expect(drive.job).toMatchObject({
        jobId: drive.jobSubmitted.body?.jobId,
        status: "completed",
        total: JOB.submit.tasks.length,
        completed: JOB.submit.tasks.length,
        failed: 0,
        canceled: 0,
        taskIds,
        result: { output: JOB.output, outputTaskIds: taskIds, failedTasks: [] },
      });
      expect(taskIds.map((id) => drive.jobTasks.get(id)?.jobId)).toEqual(taskIds.map(() => drive.job?.jobId));
      expect(drive.jobStats.statusCode).toBe(200);
      expect(drive.jobStats.body as JobStatistics).toEqual({
        jobs: { submitted: 1, completed: 1, failed: 0, canceled: 0, running: 0 },
      });
    });

    it("serves the queue depths of every capability, both tiers", () => {
      const { queueStats } = drive.operations;
      expect(queueStats.statusCode).toBe(200);
      expect(queueStats.body.capabilities.map((c: { capability: string }) => c.capability)).toEqual(
        platformConfig.capabilities.map((c) => c.name),
      );
      for (const capability of queueStats.body.capabilities) {
        expect(capability.queues.map((q: { queue: string }) => q.queue)).toEqual(
          queuesForCapability(capability.capability),
        );
      }
    });

    it("lists a dead-lettered message with its task, and a redrive drops it because the task completed", () => {
      const { deadLetters, redrive, deadLettersAfter, deadLetteredId, deadLetteredQueue } = drive.operations;
      type View = { queue: string; depth: number; items: { taskId?: string; status?: string }[] };
      const viewOf = (answer: ApiAnswer) =>
        (answer.body.queues as View[]).find((q) => q.queue === deadLetteredQueue);
      expect(deadLetters.statusCode).toBe(200);
      expect(viewOf(deadLetters)).toMatchObject({
        depth: 1,
        items: [{ taskId: deadLetteredId, status: "completed" }],
      });
      expect(redrive).toEqual({ statusCode: 200, body: { redriven: [], dropped: [deadLetteredId] } });
      expect(viewOf(deadLettersAfter)).toMatchObject({ depth: 0, items: [] });
    });

    it("publishes Job Completed once the aggregator ends the job", () => {
      const jobEvents = app.bus.accepted
        .filter((event) => event["detail-type"] === "Job Completed")
        .map((event) => event.detail as { jobId?: string; status?: string });

      expect(jobEvents).toEqual([
        expect.objectContaining({ jobId: drive.job?.jobId, status: "completed", completed: 3 }),
      ]);
      // Published by the stream consumer that ended the job, and by nobody else.
      expect(
        new Set(app.calls.filter((c) => c.target === "AWSEvents.PutEvents").map((c) => c.caller)),
      ).toEqual(new Set([aggregatorFunction().service]));
    });

    it("puts no task lifecycle event on the bus: the stream feeds the aggregator, and PUBLISH_TASK_EVENTS is none", () => {
      const aggregator = aggregatorFunction();
      const taskEvents = app.bus.accepted.filter((event) => event["detail-type"].startsWith("Task "));

      expect(aggregator.templateEnv.PUBLISH_TASK_EVENTS).toBe("none");
      expect(taskEvents.map((event) => event["detail-type"])).toEqual([]);
    });

    it("feeds the aggregator every task's changes through the stream mapping, each once, in batches of at most its BatchSize", () => {
      const [mapping, ...others] = app.mappings.filter((m) => m.kind === "dynamodb-stream");
      const records = app.streamDeliveries.flatMap((d) => d.records);
      const changedTasks = new Set(records.map((r) => r.key.pk));
      const ran = [...drive.batchIds, drive.strandedId, ...(drive.job?.taskIds ?? [])];

      expect(others).toEqual([]);
      expect(mapping).toMatchObject({
        function: { logicalId: aggregatorFunction().logicalId },
        streamArn: app.emulated.resources.get(tableLogicalId())?.attributes.StreamArn,
        batchSize: 100,
        batchingWindowSeconds: 1,
        reportBatchItemFailures: true,
      });
      expect(ran.filter((id) => !changedTasks.has(TaskKeys.task(id).pk))).toEqual([]);
      for (const delivery of app.streamDeliveries) {
        expect(delivery.mapping).toBe(mapping?.logicalId);
        expect(delivery.records.length).toBeGreaterThan(0);
        expect(delivery.records.length).toBeLessThanOrEqual(mapping?.batchSize ?? 0);
        expect(delivery.failures).toEqual([]);
      }
      // Nothing failed, so nothing was delivered again.
      expect(new Set(records.map((r) => r.sequenceNumber)).size).toBe(records.length);
    });

    it("runs every container until SIGTERM, which it answers by unregistering and exiting 0 within its stop timeout", () => {
      expect(drive.containers.length).toBeGreaterThan(0);
      for (const container of drive.containers) {
        expect(container, container.service).toMatchObject({
          registeredWhileRunning: true,
          exit: { code: 0, signal: null },
          registeredAfterExit: false,
        });
        expect(container.exitedAfterMs).toBeLessThan(container.stopTimeoutSeconds * 1000);
      }
    });

    it("polls every event source mapping without an error", () => {
      expect(app.eventSourceErrors).toEqual([]);
    });

    it("gets a successful answer from the emulators for every call the functions made, but for guards that held", () => {
      // A guarded write whose condition failed (e.g. two aggregator invocations both seeing the job's
      // last outcome and racing to end it: the version guard lets one win) is authorized and handled.
      const failed = app.calls
        .filter((c) => c.status >= 400 && !isConditionNotMet(c))
        .map(
          (c) =>
            `${c.caller} ${c.target} → ${c.status} ${c.error?.type ?? ""} ${c.error?.cancellationReasons?.join(",") ?? ""}`,
        );

      expect(failed).toEqual([]);
    });
  });

  describe("IAM", () => {
    it("records AWS calls for every function, except the reviewed ones the drive only invokes", () => {
      const services = new Set([
        ...[...app.functions.values()].map((fn) => fn.service),
        ...app.containers.map((c) => c.service),
      ]);
      const reviewed = [...Object.keys(NOT_EXERCISED_WITH_REASON), ...Object.keys(UNUSED_GRANTS_WITH_REASON)];
      const callers = new Set(app.calls.map((c) => c.caller));
      const outcome = [...app.functions.values()].map((fn) => ({
        service: fn.service,
        placeholder: fn.placeholder,
        madeCalls: callers.has(fn.service),
        reviewedAsNotExercised: fn.service in NOT_EXERCISED_WITH_REASON,
        invoked: fn.invocations > 0,
      }));

      expect(
        reviewed.filter((service) => !services.has(service)),
        "reviewed functions that do not exist",
      ).toEqual([]);
      expect(outcome).toEqual(
        [...app.functions.values()].map((fn) => {
          const notExercised = fn.service in NOT_EXERCISED_WITH_REASON;
          return {
            service: fn.service,
            placeholder: fn.placeholder,
            madeCalls: !fn.placeholder && !notExercised,
            reviewedAsNotExercised: notExercised,
            invoked: !fn.placeholder,
          };
        }),
      );
    });

    it("records the stream mapping's reads as the aggregator's calls, on the table's stream", () => {
      const streamArn = app.emulated.resources.get(tableLogicalId())?.attributes.StreamArn;
      const reads = app.calls.filter((c) => c.target.startsWith("DynamoDBStreams_20120810."));
      const byAction = new Map(
        reads.flatMap((c) => c.authorizations.map((a) => [a.action, a.resource] as const)),
      );

      expect(streamArn).toMatch(/^arn:aws:dynamodb:[^:]*:[^:]*:table\/[^/]+\/stream\/.+$/);
      expect(new Set(reads.map((c) => c.caller))).toEqual(new Set([aggregatorFunction().service]));
      expect(Object.fromEntries(byAction)).toEqual({
        "dynamodb:DescribeStream": streamArn,
        "dynamodb:GetShardIterator": streamArn,
        "dynamodb:GetRecords": streamArn,
      });
    });

    it("authorizes a Streams request on the stream it names, and ListStreams on * — for the aggregator's role only", () => {
      const streamArn = String(app.emulated.resources.get(tableLogicalId())?.attributes.StreamArn);
      const arns = app.emulated;
      const requests = [
        authorizationsOf("DynamoDBStreams_20120810.ListStreams", {}, arns),
        authorizationsOf("DynamoDBStreams_20120810.DescribeStream", { StreamArn: streamArn }, arns),
        authorizationsOf(
          "DynamoDBStreams_20120810.GetRecords",
          { ShardIterator: `${streamArn}|1|AAAA` },
          arns,
        ),
      ].flat();
      const allowedFor = (roleLogicalId: string) => {
        const statements = statementsOfRole(app.template, roleLogicalId, app.emulated.resolver);
        return requests.map(({ action, resource }) => isAllowed(statements, action, resource));
      };
      const otherStream = authorizationsOf(
        "DynamoDBStreams_20120810.DescribeStream",
        { StreamArn: `${streamArn.replace(/\/stream\/.*$/, "")}/stream/2000-01-01T00:00:00.000` },
        arns,
      );

      expect(requests.map((r) => r.resource)).toEqual(["*", streamArn, streamArn]);
      expect(allowedFor(aggregatorFunction().roleLogicalId)).toEqual([true, true, true]);
      expect(allowedFor(app.api.roleLogicalId)).toEqual([false, false, false]);
      expect(otherStream).toEqual([
        { action: "dynamodb:DescribeStream", resource: expect.stringMatching(/^unknown:stream\//) },
      ]);
    });

    it("allows every call each function made, on the resource it made it on", () => {
      const denied: string[] = [];
      for (const fn of app.functions.values()) {
        const statements = statementsOfRole(app.template, fn.roleLogicalId, app.emulated.resolver);
        for (const call of app.calls.filter((c) => c.caller === fn.service)) {
          for (const { action, resource } of call.authorizations) {
            if (!isAllowed(statements, action, resource))
              denied.push(`${fn.service}: ${call.target} needs ${action} on ${resource}`);
          }
        }
      }
      for (const container of app.containers) {
        const statements = statementsOfRole(app.template, container.taskRoleLogicalId, app.emulated.resolver);
        const calls = app.calls.filter((c) => c.caller === container.service);
        if (calls.length === 0) denied.push(`${container.service}: the container made no call at all`);
        for (const call of calls) {
          for (const { action, resource } of call.authorizations) {
            if (!isAllowed(statements, action, resource))
              denied.push(`${container.service}: ${call.target} needs ${action} on ${resource}`);
          }
        }
      }

      expect([...new Set(denied)]).toEqual([]);
    });

    /** The grants a function's or container's construct declared a run may leave unused (template metadata). */
    const conditionalGrantsOf = (principal: { readonly logicalId: string }): Record<string, string> => {
      const resource = app.template.Resources[principal.logicalId] as
        | { Metadata?: Record<string, unknown> }
        | undefined;
      return (resource?.Metadata?.[CONDITIONAL_GRANTS_METADATA] ?? {}) as Record<string, string>;
    };

    it("justifies every grant the drive did not use, and only those", () => {
      const unjustified: string[] = [];
      const stale: string[] = [];
      const principals = [
        ...[...app.functions.values()]
          .filter((fn) => !fn.placeholder && !(fn.service in NOT_EXERCISED_WITH_REASON))
          .map((fn) => ({ service: fn.service, logicalId: fn.logicalId, roleLogicalId: fn.roleLogicalId })),
        ...app.containers.map((c) => ({
          service: c.service,
          logicalId: c.logicalId,
          roleLogicalId: c.taskRoleLogicalId,
        })),
      ];
      for (const fn of principals) {
        const reviewed = UNUSED_GRANTS_WITH_REASON[fn.service] ?? {};
        const conditional = conditionalGrantsOf(fn);
        const granted = grantedActions(
          statementsOfRole(app.template, fn.roleLogicalId, app.emulated.resolver),
        );
        const used = new Set(
          app.calls
            .filter((c) => c.caller === fn.service)
            .flatMap((c) => c.authorizations.map((a) => a.action)),
        );
        const unused = granted.filter(
          (grant) => ![...used].some((action) => wildcardMatch(grant, action, true)),
        );
        for (const action of unused) {
          if (!(action in reviewed) && !(action in conditional))
            unjustified.push(
              `${fn.service}: ${action} (explain it where it is granted, with declareConditionalGrants)`,
            );
        }
        for (const action of Object.keys(reviewed)) {
          if (!unused.includes(action))
            stale.push(`${fn.service}: ${action} (${granted.includes(action) ? "used" : "not granted"})`);
        }
        for (const action of Object.keys(conditional)) {
          if (!granted.includes(action)) stale.push(`${fn.service}: ${action} (declared, not granted)`);
        }
      }

      expect({ unjustified, stale }).toEqual({ unjustified: [], stale: [] });
    });

    it("authorizes every way the run invokes a function", () => {
      const permissions = resourcesOfType(app.template, "AWS::Lambda::Permission").map(([id, permission]) => {
        const p = propertiesOf(permission);
        return {
          functionArn: app.emulated.resolver.resolveString(p.FunctionName, `${id}.FunctionName`),
          principal: String(p.Principal),
          sourceArn:
            p.SourceArn === undefined
              ? undefined
              : app.emulated.resolver.resolveString(p.SourceArn, `${id}.SourceArn`),
          action: String(p.Action),
        };
      });
      const arnOf = (fn: LocalAppFunction) => app.emulated.resources.get(fn.logicalId)?.attributes.Arn;
      const invokable = (fn: LocalAppFunction, principal: string, sourceArn: string) =>
        permissions.some(
          (p) =>
            p.functionArn === arnOf(fn) &&
            p.principal === principal &&
            p.action === "lambda:InvokeFunction" &&
            (p.sourceArn === undefined || wildcardMatch(p.sourceArn, sourceArn, false)),
        );
      const [[apiId] = []] = resourcesOfType(app.template, "AWS::ApiGatewayV2::Api");
      const apiRef = app.emulated.resources.get(String(apiId))?.ref;
      const [[scheduleId, schedule] = []] = resourcesOfType(app.template, "AWS::Scheduler::Schedule");
      const scheduleTarget = propertiesOf(schedule ?? { Type: "" }).Target as { RoleArn: unknown };
      const scheduleRole = app.emulated.resolver.logicalIdOf(
        app.emulated.resolver.resolveString(scheduleTarget.RoleArn, `${scheduleId}.Target.RoleArn`),
      );

      // API Gateway presents the route's resource path, with the request's method, as the source ARN.
      for (const method of ["GET", "POST"]) {
        const sourceArn = `arn:aws:execute-api:${REGION}:${app.emulated.account}:${apiRef}/$default/${method}/{proxy+}`;
        expect(invokable(app.api, "apigateway.amazonaws.com", sourceArn), sourceArn).toBe(true);
      }
      // The stream mapping needs no resource policy: it reads with the function's execution role
      // (its calls are checked with the function's) and invokes the function itself.
      expect(
        isAllowed(
          statementsOfRole(app.template, String(scheduleRole), app.emulated.resolver),
          "lambda:InvokeFunction",
          arnOf(app.scheduled.fn) ?? "",
        ),
      ).toBe(true);
    });
  });
});
