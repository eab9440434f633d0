import { RemovalPolicy } from "aws-cdk-lib";
import {
  AttributeType,
  BillingMode,
  type ITable,
  ProjectionType,
  StreamViewType,
  Table,
  TableEncryption,
} from "aws-cdk-lib/aws-dynamodb";
import { Grant, type IGrantable } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

/**
 * The table's global secondary indexes, each keyed `<name>pk` / `<name>sk`, with their projection:
 * agents and jobs read whole items from gsi1/gsi2; the task listings (gsi3, all tasks; gsi4, the
 * unfinished ones, sparse) project keys only, so a task's transitions rewrite no index entry but the
 * ones they move (docs/adr/0007-write-path-cost.md).
 */
export const TASK_TABLE_INDEX_PROJECTIONS = {
  gsi1: ProjectionType.ALL,
  gsi2: ProjectionType.ALL,
  gsi3: ProjectionType.KEYS_ONLY,
  gsi4: ProjectionType.KEYS_ONLY,
} as const;

export const TASK_TABLE_INDEXES = Object.keys(TASK_TABLE_INDEX_PROJECTIONS) as readonly (
  | "gsi1"
  | "gsi2"
  | "gsi3"
  | "gsi4"
)[];

/** The item-level attribute DynamoDB's TTL reads (epoch seconds). */
export const TASK_TABLE_TTL_ATTRIBUTE = "expiresAt";

/**
 * The DynamoDB IAM actions a function may be granted on the task table. A closed list, so no
 * caller can grant `dynamodb:*` or a control-plane action by accident.
 *
 * There is no IAM action for TransactWriteItems: each action inside a transaction is authorized by
 * the item-level action it performs (Put → PutItem, Update → UpdateItem, Delete → DeleteItem,
 * ConditionCheck → ConditionCheckItem).
 */
export type TaskTableAction =
  | "dynamodb:GetItem"
  | "dynamodb:BatchGetItem"
  | "dynamodb:Query"
  | "dynamodb:PutItem"
  | "dynamodb:UpdateItem"
  | "dynamodb:DeleteItem"
  | "dynamodb:BatchWriteItem"
  | "dynamodb:ConditionCheckItem";

/** Actions that read an index; only these are granted on the index ARNs. */
const INDEX_ACTIONS: ReadonlySet<TaskTableAction> = new Set(["dynamodb:Query"]);

export interface TaskTableProps {
  /**
   * What happens to the table when it leaves the stack.
   *
   * @default RemovalPolicy.RETAIN - the task history outlives the stack
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Whether DynamoDB refuses to delete the table.
   *
   * @default true
   */
  readonly deletionProtection?: boolean;
}

/**
 * The single DynamoDB table behind the task store and the agent registry: `pk`/`sk` string keys,
 * four overloaded string-keyed GSIs (`gsi1`, `gsi2` projecting ALL; `gsi3`, `gsi4` keys only),
 * on-demand billing, point-in-time recovery, TTL on `expiresAt`, an AWS-managed KMS key, and a
 * stream of new and old images (events, statistics and job fan-in follow from it).
 *
 * Grants go through {@link TaskTable.grantItemAccess}, which names the actions and the exact index
 * ARNs instead of `index/*`.
 *
 * @example
 * const tasks = new TaskTable(this, "Tasks", { removalPolicy: RemovalPolicy.DESTROY, deletionProtection: false });
 * tasks.grantItemAccess(fn, ["dynamodb:GetItem", "dynamodb:Query"]);
 */
export class TaskTable extends Construct {
  /**
   * Grants item-level actions on any table with the task table's layout: the actions on the table,
   * and the index-reading actions on the named indexes only.
   *
   * @example
   * TaskTable.grantItemAccess(importedTable, fn, ["dynamodb:Query"]);
   */
  static grantItemAccess(table: ITable, grantee: IGrantable, actions: readonly TaskTableAction[]): Grant {
    if (actions.length === 0) {
      throw new Error("grantItemAccess needs at least one action, got none");
    }
    const indexArns = actions.some((action) => INDEX_ACTIONS.has(action))
      ? TASK_TABLE_INDEXES.map((index) => `${table.tableArn}/index/${index}`)
      : [];
    return Grant.addToPrincipal({
      grantee,
      actions: [...new Set(actions)],
      resourceArns: [table.tableArn, ...indexArns],
    });
  }

  public readonly table: Table;

  constructor(scope: Construct, id: string, props: TaskTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const deletionProtection = props.deletionProtection ?? true;
    if (deletionProtection && removalPolicy === RemovalPolicy.DESTROY) {
      throw new Error(
        `removalPolicy "${removalPolicy}" conflicts with deletionProtection true: the stack could never delete the table`,
      );
    }

    this.table = new Table(this, "Table", {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TASK_TABLE_TTL_ATTRIBUTE,
      encryption: TableEncryption.AWS_MANAGED,
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      deletionProtection,
      removalPolicy,
    });
    for (const index of TASK_TABLE_INDEXES) {
      this.table.addGlobalSecondaryIndex({
        indexName: index,
        partitionKey: { name: `${index}pk`, type: AttributeType.STRING },
        sortKey: { name: `${index}sk`, type: AttributeType.STRING },
        projectionType: TASK_TABLE_INDEX_PROJECTIONS[index],
      });
    }
  }

  /** Grants item-level actions on this table and, for index reads, on its indexes. */
  grantItemAccess(grantee: IGrantable, actions: readonly TaskTableAction[]): Grant {
    return TaskTable.grantItemAccess(this.table, grantee, actions);
  }
}
