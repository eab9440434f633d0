import { CfnOutput, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { Construct } from "constructs";
import { platformConfig, workers } from "#shared/agents/workers";
import { assertEveryCapabilityServed, type PlatformConfig } from "#shared/config/platform";
import { containerEntry } from "./constructs/fargate-worker.ts";
import { AgentryPlatform } from "./constructs/platform.ts";

export interface AgentryStackProps extends StackProps {
  /**
   * Capabilities, queues and policies. Every capability gets a worker running the registered worker
   * that serves it (`shared/agents/workers.ts`): a Lambda function, or for `runtime: "fargate"` an ECS
   * Fargate service; a capability no registered worker serves is refused at synth, naming it.
   *
   * @default - `platformConfig`: derived from the registered workers
   */
  readonly config?: PlatformConfig;
  /**
   * A throw-away environment: the table and the logs are deleted with the stack and the table has
   * no deletion protection.
   *
   * @default false
   */
  readonly ephemeral?: boolean;
  /**
   * Issuer of the API's JWT authorizer (with `jwtAudience`).
   *
   * @default - IAM (SigV4) authorization on every route
   */
  readonly jwtIssuer?: string;
  /**
   * Audiences of the API's JWT authorizer (with `jwtIssuer`).
   *
   * @default - IAM (SigV4) authorization on every route
   */
  readonly jwtAudience?: readonly string[];
  /**
   * Topic every alarm notifies.
   *
   * @default - alarms without actions
   */
  readonly alarmTopic?: ITopic;
}

/**
 * The one Agentry stack: the platform and a worker (Lambda or Fargate) for each configured capability,
 * running the registered worker that serves it.
 * Outputs the API URL.
 *
 * @example
 * const app = new App();
 * new AgentryStack(app, "Agentry", { ephemeral: true });
 */
export class AgentryStack extends Stack {
  public readonly platform: AgentryPlatform;

  constructor(scope: Construct, id: string, props: AgentryStackProps = {}) {
    super(scope, id, {
      description: "Agentry: serverless supervisor-worker platform for multi-agent systems",
      ...props,
    });
    const config = props.config ?? platformConfig;
    assertEveryCapabilityServed(config, workers);
    const ephemeral = props.ephemeral ?? false;

    this.platform = new AgentryPlatform(this, "Platform", {
      config,
      removalPolicy: ephemeral ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      deletionProtection: !ephemeral,
      jwtIssuer: props.jwtIssuer,
      jwtAudience: props.jwtAudience,
      alarmTopic: props.alarmTopic,
    });
    for (const capability of config.capabilities) {
      if (capability.external) continue; // its workers run elsewhere; the platform made its queues
      if (capability.runtime === "fargate") {
        this.platform.addFargateWorker({
          capabilities: [capability.name],
          entry: containerEntry("worker.ts"),
        });
        continue;
      }
      this.platform.addLambdaWorker({ capability: capability.name });
    }

    new CfnOutput(this, "ApiUrl", {
      description: "Base URL of the supervisor API",
      value: this.platform.api.url,
    });
  }
}
