import { describeJobsApi, startJobsRuntime } from "./jobs.suite.ts";

describeJobsApi("embedded adapters", () => startJobsRuntime("embedded"));
