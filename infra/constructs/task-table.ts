import { RemovalPolicy } from "aws-cdk-lib";
import {
  AttributeType,
  BillingMode,
  type ITable,
  ProjectionType,
  Table,
  TableEncryption,
} from "aws-cdk-lib/aws-dynamodb";
import { Grant, type IGrantable } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

/** The table's global secondary indexes, each keyed `<name>pk` / `<name>sk`. */
export const TASK_TABLE_INDEXES = ["gsi1", "gsi2"] as const;

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
 * two overloaded string-keyed GSIs (`gsi1`, `gsi2`, projection ALL), on-demand billing,
 * point-in-time recovery, TTL on `expiresAt` and an AWS-managed KMS key.
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
   * and the index-reading actions on the two named indexes only.
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
      deletionProtection,
      removalPolicy,
    });
    for (const index of TASK_TABLE_INDEXES) {
      this.table.addGlobalSecondaryIndex({
        indexName: index,
        partitionKey: { name: `${index}pk`, type: AttributeType.STRING },
        sortKey: { name: `${index}sk`, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      });
    }
  }

  /** Grants item-level actions on this table and, for index reads, on its two indexes. */
  grantItemAccess(grantee: IGrantable, actions: readonly TaskTableAction[]): Grant {
    return TaskTable.grantItemAccess(this.table, grantee, actions);
  }
}
