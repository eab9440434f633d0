import { App, type AppProps, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, ServerlessChecks } from "cdk-nag";
import { AgentryStack, type AgentryStackProps } from "./agentry-stack.ts";

export interface AgentryAppProps extends AppProps {
  /**
   * Stack options; they win over the same options given as context.
   *
   * @default - from context (`ephemeral`, `jwtIssuer`, `jwtAudience`)
   */
  readonly stack?: AgentryStackProps;
}

/**
 * Builds the Agentry CDK app: the `Agentry` stack, checked on every synth by the cdk-nag
 * AwsSolutions and Serverless packs (an unacknowledged error fails the synth).
 *
 * Context options (`cdk synth -c key=value`):
 * - `ephemeral=true`: the table and the logs are deleted with the stack;
 * - `jwtIssuer=https://…` and `jwtAudience=aud1,aud2`: JWT instead of IAM authorization.
 *
 * @example
 * const { app, stack } = createAgentryApp({ context: { ephemeral: "true" } });
 * app.synth();
 */
export function createAgentryApp(props: AgentryAppProps = {}): { app: App; stack: AgentryStack } {
  const { stack: stackProps, ...appProps } = props;
  const app = new App(appProps);
  const stack = new AgentryStack(app, "Agentry", {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    ...stackPropsFromContext(app),
    ...stackProps,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  return { app, stack };
}

function stackPropsFromContext(app: App): AgentryStackProps {
  const read = (key: string): string | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    return value === undefined || value === null || value === "" ? undefined : String(value);
  };
  const ephemeral = read("ephemeral");
  if (ephemeral !== undefined && ephemeral !== "true" && ephemeral !== "false") {
    throw new Error(`context "ephemeral" must be true or false, got "${ephemeral}"`);
  }
  const jwtAudience = read("jwtAudience");
  return {
    ephemeral: ephemeral === "true",
    jwtIssuer: read("jwtIssuer"),
    jwtAudience: jwtAudience?.split(",").map((audience) => audience.trim()),
  };
}
