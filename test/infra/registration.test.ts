import { App } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { platformConfig } from "#shared/agents/workers";
import { AgentryStack } from "../../infra/agentry-stack.ts";
import { cdkJsonContext, withoutBundling } from "./support.ts";

describe("the stack deploys only what registered workers serve", () => {
  it("refuses to synthesize a capability no registered worker serves, naming it and where to register one", () => {
    const app = new App({ context: withoutBundling(cdkJsonContext()) });
    const config = {
      ...platformConfig,
      capabilities: [
        ...platformConfig.capabilities,
        { name: "zz-unserved", workerTimeoutSeconds: 30, maxConcurrency: 5 },
      ],
    };

    expect(() => new AgentryStack(app, "Agentry", { config })).toThrow(
      /capability "zz-unserved" is configured but no registered worker serves it.*shared\/agents\/workers\.ts/,
    );
  });
});
