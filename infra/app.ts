import { createAgentryApp } from "./agentry-app.ts";

// CDK entry point (`cdk.json`: `npx tsx infra/app.ts`); options come from context, see createAgentryApp.
createAgentryApp().app.synth();
