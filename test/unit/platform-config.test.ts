import { describe, expect, it } from "vitest";
import { startLocalRuntime } from "#local/runtime";
import { textAnalysisWorker } from "#shared/agents/demo";
import { missingExamples, platformConfig, workerForCapability, workers } from "#shared/agents/workers";
import {
  assertEveryCapabilityServed,
  defaultPolicies,
  loadPlatformConfig,
  platformConfigFor,
} from "#shared/config/platform";

describe("loadPlatformConfig", () => {
  it("refuses to start without PLATFORM_CONFIG, which the stack sets on every function", () => {
    expect(() => loadPlatformConfig({})).toThrow(/PLATFORM_CONFIG is not set/);
  });

  it("reads the configuration the stack serialized into PLATFORM_CONFIG", () => {
    const deployed = { ...platformConfig, highPriorityThreshold: 9, taskTypes: { ocr: "vision" } };
    expect(loadPlatformConfig({ PLATFORM_CONFIG: JSON.stringify(deployed) })).toEqual(deployed);
  });

  it("refuses PLATFORM_CONFIG that is not JSON", () => {
    expect(() => loadPlatformConfig({ PLATFORM_CONFIG: "{" })).toThrow("PLATFORM_CONFIG is not valid JSON");
  });

  it("refuses PLATFORM_CONFIG that does not match the schema, naming the field", () => {
    const broken = { ...platformConfig, shards: 0 };
    expect(() => loadPlatformConfig({ PLATFORM_CONFIG: JSON.stringify(broken) })).toThrow(/shards/);
  });

  it("refuses a backoff that can outlast the stuck-submission threshold", () => {
    const broken = {
      ...platformConfig,
      retry: { ...platformConfig.retry, maxDelaySeconds: 300 },
    };
    expect(() => loadPlatformConfig({ PLATFORM_CONFIG: JSON.stringify(broken) })).toThrow(
      /stuckSubmittedSeconds/,
    );
  });
});

describe("platformConfigFor (the configuration derived from the registered workers)", () => {
  const worker = (agentType: string, capabilities: string[], taskTypes: string[], deployment = {}) => ({
    agentType,
    capabilities,
    handlers: Object.fromEntries(taskTypes.map((t) => [t, () => null])),
    deployment,
  });

  it("derives the demo deployment's capabilities and routes from the demo workers", () => {
    expect(platformConfig.capabilities).toEqual([
      { name: "text-analysis", workerTimeoutSeconds: 30, maxConcurrency: 5 },
      { name: "summarization", workerTimeoutSeconds: 30, maxConcurrency: 5 },
      { name: "diagnostics", workerTimeoutSeconds: 60, maxConcurrency: 5 },
      { name: "research", workerTimeoutSeconds: 900, maxConcurrency: 4, runtime: "fargate" },
    ]);
    expect(platformConfig.taskTypes).toEqual({
      analyze_text: "text-analysis",
      summarize: "summarization",
      echo: "diagnostics",
      research: "research",
    });
  });

  it("takes a worker's timeout and concurrency, and routes its task types to its first capability", () => {
    const config = platformConfigFor([
      worker("ocr", ["vision", "vision-batch"], ["read_image"], { timeoutSeconds: 120, maxConcurrency: 3 }),
    ]);
    expect(config.capabilities).toEqual([
      { name: "vision", workerTimeoutSeconds: 120, maxConcurrency: 3 },
      { name: "vision-batch", workerTimeoutSeconds: 120, maxConcurrency: 3 },
    ]);
    expect(config.taskTypes).toEqual({ read_image: "vision" });
    expect(config.retry).toEqual(defaultPolicies.retry);
  });

  it("refuses a capability served by two workers, naming both", () => {
    expect(() => platformConfigFor([worker("a", ["x"], ["t1"]), worker("b", ["x"], ["t2"])])).toThrow(
      /capability "x" is served by two workers \("a" and "b"\)/,
    );
  });

  it("refuses a task type handled by two workers, naming both", () => {
    expect(() => platformConfigFor([worker("a", ["x"], ["t"]), worker("b", ["y"], ["t"])])).toThrow(
      /task type "t" is handled by two workers \("a" and "b"\)/,
    );
  });

  it("refuses an empty registry", () => {
    expect(() => platformConfigFor([])).toThrow(/no workers are registered/);
  });
});

describe("assertEveryCapabilityServed", () => {
  const translator = {
    agentType: "translator",
    capabilities: ["translation"],
    handlers: { translate: () => null },
  };

  it("accepts a configuration whose every capability and task type has a worker", () => {
    expect(() => assertEveryCapabilityServed(platformConfigFor([translator]), [translator])).not.toThrow();
  });

  it("names a configured capability no worker serves, and where to register one", () => {
    const config = {
      ...platformConfig,
      capabilities: [
        ...platformConfig.capabilities,
        { name: "ocr", workerTimeoutSeconds: 30, maxConcurrency: 5 },
      ],
    };
    expect(() => assertEveryCapabilityServed(config, workers)).toThrow(
      /capability "ocr" is configured but no registered worker serves it.*shared\/agents\/workers\.ts/,
    );
  });

  it("accepts a capability marked external, whose workers run elsewhere", () => {
    const config = {
      ...platformConfig,
      capabilities: [
        ...platformConfig.capabilities,
        { name: "on-prem", workerTimeoutSeconds: 30, maxConcurrency: 5, external: true },
      ],
    };
    expect(() => assertEveryCapabilityServed(config, workers)).not.toThrow();
  });

  it("names a task type routed to a worker that has no handler for it", () => {
    const config = { ...platformConfigFor([translator]), taskTypes: { detect_language: "translation" } };
    expect(() => assertEveryCapabilityServed(config, [translator])).toThrow(
      /task type "detect_language" routes to capability "translation", whose worker "translator" has no "detect_language" handler/,
    );
  });
});

describe("the registered workers", () => {
  it("each declare an example input for every task type", () => {
    expect(missingExamples(workers)).toEqual([]);
  });

  it("reports a task type without an example, naming the worker", () => {
    const worker = { ...textAnalysisWorker, examples: {} };
    expect(missingExamples([worker])).toEqual([
      'worker "text-analyzer" has no example input for task type "analyze_text"',
    ]);
  });

  it("finds the worker of a capability, and names the registered ones for an unknown capability", () => {
    expect(workerForCapability("summarization").agentType).toBe("summarizer");
    expect(() => workerForCapability("zz-unregistered")).toThrow(
      /no registered worker serves capability "zz-unregistered" \(registered: text-analysis, summarization, diagnostics, research\)/,
    );
  });
});

describe("the local runtime", () => {
  it("refuses to start with a capability no worker serves, naming it, before it starts anything", async () => {
    const config = {
      ...platformConfig,
      capabilities: [
        ...platformConfig.capabilities,
        { name: "zz-unserved", workerTimeoutSeconds: 30, maxConcurrency: 5 },
      ],
    };

    await expect(startLocalRuntime({ port: 0, logLevel: "silent", config })).rejects.toThrow(
      /capability "zz-unserved" is configured but no registered worker serves it/,
    );
  });
});
