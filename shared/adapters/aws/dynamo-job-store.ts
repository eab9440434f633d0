import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  type Update,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { AgentryError } from "#shared/domain/errors";
import type { JobRecord, JobResult, JobStepPlan, JobStepState, TaskOutcome } from "#shared/domain/job";
import { outcomeBucket } from "#shared/domain/job";
import type { CounterDeltas } from "#shared/domain/statistics";
import type {
  AdvanceJobRequest,
  AttachTasksOutcome,
  AttachTasksRequest,
  CreateJobRequest,
  FinishJobRequest,
  JobStore,
  JobWriteOutcome,
  RecordOutcomeResult,
  RescheduleJobRequest,
} from "#shared/ports/job-store";
import { counterAddUpdate, readShardedCounters } from "./sharded-counters.ts";
import {
  cancellationReasons,
  conditionFailureItem,
  type DynamoRetryOptions,
  type ItemKey,
  isConditionFailure,
  KEY_ATTRIBUTES,
  keyAttributes,
  type ResolvedRetryOptions,
  resolveRetryOptions,
  shardOf,
  withDynamoRetry,
} from "./table-schema.ts";

export interface DynamoJobStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /**
   * Shards of the job statistics counters and the due-jobs index. Every process that shares the
   * table must use the same number.
   * @default 16
   */
  readonly shards?: number;
  /**
   * Days a job's items are kept after they are written (the job record: after the job ended); the
   * table's TTL then removes them.
   * @default 30
   */
  readonly retentionDays?: number;
  /** @default 8 attempts, 25 ms base delay, 2 s cap */
  readonly retry?: DynamoRetryOptions;
}

/**
 * Keys of the job store's items. All of a job's items share its partition, so a job is one item
 * collection; `JOB#`, `JOBSTATS#` and `JOBDUE#` prefixes collide with nothing the task store or the
 * registry writes (docs/adr/0005-jobs-and-aggregation.md).
 */
export const JobKeys = {
  job: (jobId: string): ItemKey => ({ pk: `JOB#${jobId}`, sk: "JOB" }),
  plan: (jobId: string): ItemKey => ({ pk: `JOB#${jobId}`, sk: "PLAN" }),
  taskIds: (jobId: string, step: number): ItemKey => ({ pk: `JOB#${jobId}`, sk: `TASKS#${pad(step)}` }),
  result: (jobId: string, step: number): ItemKey => ({ pk: `JOB#${jobId}`, sk: `RESULT#${pad(step)}` }),
  /** One per task: its existence is the first-write-wins guard of the task's outcome. */
  outcome: (jobId: string, step: number, taskId: string): ItemKey => ({
    pk: `JOB#${jobId}`,
    sk: `${JobKeys.outcomePrefix(step)}${taskId}`,
  }),
  outcomePrefix: (step: number): string => `OUTCOME#${pad(step)}#`,
  counters: (shard: number): ItemKey => ({ pk: `JOBSTATS#${shard}`, sk: "JOBSTATS" }),
  /** gsi1 partition of jobs that have a due time. */
  due: (shard: number): string => `JOBDUE#${shard}`,
  dueSort: (dueAt: string, jobId: string): string => `${dueAt}#${jobId}`,
} as const;

/** Outcome counts live in top-level attributes, one per step and bucket, so `ADD` can move them. */
const countAttribute = (step: number, bucket: string) => `count:${step}:${bucket}`;
const MARSHALL_OPTIONS = { removeUndefinedValues: true } as const;

/**
 * The JobStore on the single Agentry table. A task outcome is one TransactWriteItems: put the outcome
 * item under `attribute_not_exists` and `ADD` one to its step's count on the job item — so a duplicate
 * or replayed event fails the condition and writes nothing. Ending a step or the job is one
 * transaction too (the job item guarded by its version, the step result, the sharded statistics).
 *
 * @example
 * const jobs = new DynamoJobStore({ client: new DynamoDBClient({}), tableName: process.env.TABLE_NAME! });
 * const { recorded, job } = await jobs.recordTaskOutcome(jobId, outcome);
 */
export class DynamoJobStore implements JobStore {
  readonly tableName: string;
  readonly shards: number;
  private readonly client: DynamoDBClient;
  private readonly retentionSeconds: number;
  private readonly retry: ResolvedRetryOptions;

  constructor(options: DynamoJobStoreOptions) {
    const shards = options.shards ?? 16;
    if (!Number.isInteger(shards) || shards < 1 || shards > 1000) {
      throw new AgentryError(`shards must be an integer from 1 to 1000, got ${shards}`, {
        code: "configuration_error",
      });
    }
    this.client = options.client;
    this.tableName = options.tableName;
    this.shards = shards;
    this.retentionSeconds = (options.retentionDays ?? 30) * 86_400;
    this.retry = resolveRetryOptions(options.retry);
  }

  async create({ job, plan, counters }: CreateJobRequest): Promise<void> {
    const actions: TransactWriteItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: this.jobItem(job),
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
    ];
    if (plan.length > 0) {
      actions.push({
        Put: {
          TableName: this.tableName,
          Item: this.item(
            JobKeys.plan(job.jobId),
            "job-plan",
            { planJson: JSON.stringify(plan) },
            job.createdAt,
          ),
        },
      });
    }
    const counterUpdate = this.counterUpdate(job.jobId, counters);
    if (counterUpdate) actions.push({ Update: counterUpdate });
    try {
      await this.transact(actions);
    } catch (error) {
      if (isConditionFailure(error)) {
        throw new AgentryError(`job ${job.jobId} already exists`, { code: "job_exists", statusCode: 409 });
      }
      throw error;
    }
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const item = await this.getItem(JobKeys.job(jobId));
    return item ? jobFromItem(item) : undefined;
  }

  async readPlan(jobId: string): Promise<readonly JobStepPlan[]> {
    const item = await this.getItem(JobKeys.plan(jobId));
    return item ? (JSON.parse(String(unmarshall(item).planJson)) as JobStepPlan[]) : [];
  }

  async readTaskIds(jobId: string): Promise<readonly (readonly string[])[]> {
    const items = await this.queryPartition(jobId, "TASKS#");
    const byStep: string[][] = [];
    for (const item of items) {
      const raw = unmarshall(item);
      byStep[Number(raw.step)] = (raw.taskIds as string[] | undefined) ?? [];
    }
    return Array.from(byStep, (ids) => ids ?? []);
  }

  async readStepResult(jobId: string, step: number): Promise<JobResult | undefined> {
    const item = await this.getItem(JobKeys.result(jobId, step));
    return item ? (JSON.parse(String(unmarshall(item).resultJson)) as JobResult) : undefined;
  }

  async recordTaskOutcome(jobId: string, outcome: TaskOutcome): Promise<RecordOutcomeResult> {
    const { output, ...fields } = outcome;
    const outcomePut = {
      TableName: this.tableName,
      Item: this.item(
        JobKeys.outcome(jobId, outcome.step, outcome.taskId),
        "job-outcome",
        // Outputs are kept as JSON text: any JSON value round-trips exactly, and the size is plain.
        { jobId, ...fields, ...(output !== undefined ? { outputJson: JSON.stringify(output) } : {}) },
        outcome.recordedAt,
      ),
      ConditionExpression: "attribute_not_exists(pk)",
    };
    const countUpdate: Update = {
      TableName: this.tableName,
      Key: keyAttributes(JobKeys.job(jobId)),
      UpdateExpression: "ADD #count :one",
      ConditionExpression: "attribute_exists(pk)",
      ExpressionAttributeNames: { "#count": countAttribute(outcome.step, outcomeBucket(outcome.status)) },
      ExpressionAttributeValues: { ":one": { N: "1" } },
    };
    try {
      await this.transact([{ Put: outcomePut }, { Update: countUpdate }]);
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const reasons = cancellationReasons(error) ?? [];
      // The job item's condition failed: there is no such job, and nothing was written.
      if (reasons[1]?.Code === "ConditionalCheckFailed") return { recorded: false, job: undefined };
      return { recorded: false, job: await this.get(jobId) };
    }
    const job = await this.get(jobId);
    if (!job)
      throw new AgentryError(`job ${jobId} vanished after an outcome was recorded`, { code: "job_missing" });
    return { recorded: true, job };
  }

  async listOutcomes(jobId: string, step: number): Promise<readonly TaskOutcome[]> {
    const items = await this.queryPartition(jobId, JobKeys.outcomePrefix(step));
    return items.map((item) => {
      const {
        outputJson,
        jobId: _job,
        entity: _entity,
        expiresAt: _expires,
        ...raw
      } = stripKeys(unmarshall(item));
      return {
        ...(raw as Omit<TaskOutcome, "output">),
        ...(typeof outputJson === "string" ? { output: JSON.parse(outputJson) } : {}),
      };
    });
  }

  async attachTasks(request: AttachTasksRequest): Promise<AttachTasksOutcome> {
    await withDynamoRetry("PutItem", this.retry, () =>
      this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: this.item(
            JobKeys.taskIds(request.jobId, request.step),
            "job-tasks",
            { jobId: request.jobId, step: request.step, taskIds: [...request.taskIds] },
            request.updatedAt,
          ),
        }),
      ),
    );
    const names: Record<string, string> = {
      "#status": "status",
      "#currentStep": "currentStep",
      "#steps": "steps",
      "#submitted": "tasksSubmitted",
      "#version": "version",
      "#updatedAt": "updatedAt",
    };
    const values: Record<string, unknown> = {
      ":working": "working",
      ":step": request.step,
      ":true": true,
      ":one": 1,
      ":updatedAt": request.updatedAt,
    };
    const due = this.dueExpression(request.jobId, request.dueAt, names, values);
    try {
      const output = await withDynamoRetry("UpdateItem", this.retry, () =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: keyAttributes(JobKeys.job(request.jobId)),
            UpdateExpression:
              `SET #steps[${request.step}].#submitted = :true, #version = #version + :one, ` +
              `#updatedAt = :updatedAt${due.set}${due.remove}`,
            ConditionExpression: "#status = :working AND #currentStep = :step",
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: marshall(values, MARSHALL_OPTIONS),
            ReturnValues: "ALL_NEW",
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        ),
      );
      return { attached: true, job: jobFromItem(output.Attributes ?? {}) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const item = conditionFailureItem(error);
      return { attached: false, job: item ? jobFromItem(item) : undefined };
    }
  }

  async advance(request: AdvanceJobRequest): Promise<JobWriteOutcome> {
    return this.structuralWrite(request, { currentStep: request.currentStep }, {});
  }

  async reschedule(request: RescheduleJobRequest): Promise<boolean> {
    const names: Record<string, string> = {
      "#status": "status",
      "#currentStep": "currentStep",
      "#steps": "steps",
      "#submitted": "tasksSubmitted",
    };
    const values: Record<string, unknown> = { ":working": "working", ":step": request.step, ":true": true };
    const due = this.dueExpression(request.jobId, request.dueAt, names, values);
    try {
      await withDynamoRetry("UpdateItem", this.retry, () =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: keyAttributes(JobKeys.job(request.jobId)),
            // `due.set` starts with ", ": the due time and its index keys are the whole update.
            UpdateExpression: `SET ${due.set.slice(2)}`,
            ConditionExpression: `#status = :working AND #currentStep = :step AND #steps[${request.step}].#submitted = :true`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: marshall(values, MARSHALL_OPTIONS),
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async finish(request: FinishJobRequest): Promise<JobWriteOutcome> {
    return this.structuralWrite(
      request,
      {
        status: request.status,
        completedAt: request.completedAt,
        expiresAt: Math.floor(Date.parse(request.completedAt) / 1000) + this.retentionSeconds,
        ...(request.error !== undefined ? { error: request.error } : {}),
      },
      request.counters,
    );
  }

  async markEventPublished(jobId: string): Promise<void> {
    try {
      await withDynamoRetry("UpdateItem", this.retry, () =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: keyAttributes(JobKeys.job(jobId)),
            UpdateExpression: "SET #published = :true REMOVE #dueAt, #gsi1pk, #gsi1sk",
            ConditionExpression: "attribute_exists(pk) AND #status <> :working",
            ExpressionAttributeNames: {
              "#published": "eventPublished",
              "#dueAt": "dueAt",
              "#gsi1pk": "gsi1pk",
              "#gsi1sk": "gsi1sk",
              "#status": "status",
            },
            ExpressionAttributeValues: marshall({ ":true": true, ":working": "working" }),
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async listDue(now: string, limit: number): Promise<readonly JobRecord[]> {
    if (limit < 1) return [];
    // `#` sorts before `$`, so every `<dueAt>#<jobId>` with dueAt ≤ now sorts before `<now>$`.
    const bound = `${now}$`;
    const perShard = await Promise.all(
      Array.from({ length: this.shards }, async (_, shard) => {
        const items: Record<string, AttributeValue>[] = [];
        let startKey: Record<string, AttributeValue> | undefined;
        do {
          const output = await withDynamoRetry("Query", this.retry, () =>
            this.client.send(
              new QueryCommand({
                TableName: this.tableName,
                IndexName: "gsi1",
                KeyConditionExpression: "gsi1pk = :pk AND gsi1sk < :bound",
                ExpressionAttributeValues: marshall({ ":pk": JobKeys.due(shard), ":bound": bound }),
                ScanIndexForward: true,
                Limit: limit - items.length,
                ...(startKey ? { ExclusiveStartKey: startKey } : {}),
              }),
            ),
          );
          items.push(...(output.Items ?? []));
          startKey = output.LastEvaluatedKey;
        } while (startKey && items.length < limit);
        return items.map(jobFromItem);
      }),
    );
    return perShard
      .flat()
      .sort((a, b) => ((a.dueAt ?? "") < (b.dueAt ?? "") ? -1 : (a.dueAt ?? "") > (b.dueAt ?? "") ? 1 : 0))
      .slice(0, limit);
  }

  async readCounters(): Promise<Record<string, number>> {
    const shardKeys = Array.from({ length: this.shards }, (_, shard) => JobKeys.counters(shard));
    return readShardedCounters(this.client, this.tableName, shardKeys, this.retry);
  }

  /**
   * Advance and finish: SET the job's new state under `#version = :expected AND #status = working`,
   * with the step result and the statistics in the same transaction.
   */
  private async structuralWrite(
    request: AdvanceJobRequest | FinishJobRequest,
    fields: Record<string, unknown>,
    counters: CounterDeltas,
  ): Promise<JobWriteOutcome> {
    const names: Record<string, string> = { "#version": "version", "#status": "status" };
    const values: Record<string, unknown> = {
      ":expected": request.expectedVersion,
      ":next": request.expectedVersion + 1,
      ":working": "working",
    };
    const sets = ["#version = :next"];
    const all = { ...fields, steps: request.steps.map(storedStep), updatedAt: request.updatedAt };
    Object.entries(all).forEach(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      sets.push(`#f${i} = :f${i}`);
    });
    const due = this.dueExpression(request.jobId, request.dueAt, names, values);
    const actions: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.tableName,
          Key: keyAttributes(JobKeys.job(request.jobId)),
          UpdateExpression: `SET ${sets.join(", ")}${due.set}${due.remove}`,
          ConditionExpression: "#version = :expected AND #status = :working",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: marshall(values, MARSHALL_OPTIONS),
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
    ];
    if (request.stepResult) {
      actions.push({
        Put: {
          TableName: this.tableName,
          Item: this.item(
            JobKeys.result(request.jobId, request.stepResult.step),
            "job-result",
            {
              jobId: request.jobId,
              step: request.stepResult.step,
              resultJson: JSON.stringify(request.stepResult.result),
            },
            request.updatedAt,
          ),
        },
      });
    }
    const counterUpdate = this.counterUpdate(request.jobId, counters);
    if (counterUpdate) actions.push({ Update: counterUpdate });
    try {
      await this.transact(actions);
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const item = conditionFailureItem(error, 0);
      return { ok: false, current: item ? jobFromItem(item) : await this.get(request.jobId) };
    }
    const job = await this.get(request.jobId);
    if (!job) throw new AgentryError(`job ${request.jobId} vanished after a write`, { code: "job_missing" });
    return { ok: true, job };
  }

  /** `SET dueAt` and its index keys, or `REMOVE` them: a job is in the due index exactly while it has a due time. */
  private dueExpression(
    jobId: string,
    dueAt: string | undefined,
    names: Record<string, string>,
    values: Record<string, unknown>,
  ): { set: string; remove: string } {
    names["#dueAt"] = "dueAt";
    names["#gsi1pk"] = "gsi1pk";
    names["#gsi1sk"] = "gsi1sk";
    if (dueAt === undefined) return { set: "", remove: " REMOVE #dueAt, #gsi1pk, #gsi1sk" };
    values[":dueAt"] = dueAt;
    values[":duePk"] = JobKeys.due(shardOf(jobId, this.shards));
    values[":dueSk"] = JobKeys.dueSort(dueAt, jobId);
    return { set: ", #dueAt = :dueAt, #gsi1pk = :duePk, #gsi1sk = :dueSk", remove: "" };
  }

  private jobItem(job: JobRecord): Record<string, AttributeValue> {
    const { steps, dueAt, ...rest } = job;
    return marshall(
      {
        ...rest,
        ...JobKeys.job(job.jobId),
        entity: "job",
        steps: steps.map(storedStep),
        ...(dueAt !== undefined
          ? {
              dueAt,
              gsi1pk: JobKeys.due(shardOf(job.jobId, this.shards)),
              gsi1sk: JobKeys.dueSort(dueAt, job.jobId),
            }
          : {}),
      },
      MARSHALL_OPTIONS,
    );
  }

  private item(
    key: ItemKey,
    entity: string,
    fields: Record<string, unknown>,
    writtenAt: string,
  ): Record<string, AttributeValue> {
    return marshall(
      {
        ...fields,
        ...key,
        entity,
        expiresAt: Math.floor(Date.parse(writtenAt) / 1000) + this.retentionSeconds,
      },
      MARSHALL_OPTIONS,
    );
  }

  private counterUpdate(jobId: string, counters: CounterDeltas): Update | undefined {
    return counterAddUpdate(this.tableName, JobKeys.counters(shardOf(jobId, this.shards)), counters);
  }

  private async getItem(key: ItemKey): Promise<Record<string, AttributeValue> | undefined> {
    const output = await withDynamoRetry("GetItem", this.retry, () =>
      this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: keyAttributes(key), ConsistentRead: true }),
      ),
    );
    return output.Item;
  }

  private async queryPartition(jobId: string, prefix: string): Promise<Record<string, AttributeValue>[]> {
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const output = await withDynamoRetry("Query", this.retry, () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues: marshall({ ":pk": JobKeys.job(jobId).pk, ":prefix": prefix }),
            ConsistentRead: true,
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        ),
      );
      items.push(...(output.Items ?? []));
      startKey = output.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  /** One ClientRequestToken per logical write: a retry of a transaction that did commit is not applied twice. */
  private async transact(actions: TransactWriteItem[]): Promise<void> {
    const token = randomUUID();
    await withDynamoRetry("TransactWriteItems", this.retry, () =>
      this.client.send(new TransactWriteItemsCommand({ TransactItems: actions, ClientRequestToken: token })),
    );
  }
}

function pad(step: number): string {
  return String(step).padStart(3, "0");
}

/** A step as stored on the job item: its counts live in their own attributes. */
function storedStep(step: JobStepState): Omit<JobStepState, "counts"> {
  const { counts: _counts, ...rest } = step;
  return rest;
}

function stripKeys(raw: Record<string, unknown>): Record<string, unknown> {
  for (const attribute of KEY_ATTRIBUTES) delete raw[attribute];
  return raw;
}

function jobFromItem(item: Record<string, AttributeValue>): JobRecord {
  const raw = stripKeys(unmarshall(item));
  const count = (step: number, bucket: string) => Number(raw[countAttribute(step, bucket)] ?? 0);
  const steps = ((raw.steps as Omit<JobStepState, "counts">[] | undefined) ?? []).map((step, index) => ({
    ...step,
    counts: {
      completed: count(index, "completed"),
      failed: count(index, "failed"),
      canceled: count(index, "canceled"),
    },
  }));
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name.startsWith("count:") || name === "entity" || name === "expiresAt") continue;
    record[name] = value;
  }
  return { ...(record as unknown as JobRecord), steps, eventPublished: raw.eventPublished === true };
}
