import { setTimeout as sleep } from "node:timers/promises";
import * as z from "zod";
import { ValidationError } from "#shared/domain/errors";
import { defineWorker, NonRetryableError } from "#shared/worker/define-worker";

/**
 * The demo agents: deterministic, no LLM. They serve the quick start, the tests and the examples,
 * and show the three things a handler usually does: validate its input, honour the AbortSignal,
 * and throw (retryable or not) to fail.
 */

function parseInput<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    // Bad input will not get better on a retry.
    throw new NonRetryableError(
      `invalid input: ${parsed.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ")}`,
      { code: "invalid_input", cause: new ValidationError("invalid input") },
    );
  }
  return parsed.data;
}

// Input schemas are built once, at module scope: building a zod schema costs far more than using
// it, and a handler runs once per task (it was 17 % of the embedded runtime's CPU in the bench).
const analyzeTextInput = z.object({ text: z.string() });
const summarizeInput = z.object({ text: z.string(), maxSentences: z.int().min(1).default(1) });
const echoInput = z.object({
  value: z.json(),
  delayMs: z.int().min(0).max(900_000).default(0),
  failAttempts: z.int().min(0).default(0),
});
const researchInput = z.object({
  topic: z.string().min(1).max(1000),
  steps: z.int().min(1).max(1000).default(3),
  stepMs: z.int().min(0).max(600_000).default(1_000),
});

/** Sentences end at ., ! or ? followed by whitespace or the end of the text. */
export function splitSentences(text: string): string[] {
  return (text.match(/[^.!?]+(?:[.!?]+|$)/g) ?? []).map((s) => s.trim()).filter((s) => s.length > 0);
}

export function analyzeText(text: string): { words: number; characters: number; sentences: number } {
  return {
    words: text.split(/\s+/).filter((token) => token.length > 0).length,
    characters: text.length,
    sentences: splitSentences(text).length,
  };
}

export const textAnalysisWorker = defineWorker({
  agentType: "text-analyzer",
  capabilities: ["text-analysis"],
  maxConcurrentTasks: 8,
  handlers: {
    analyze_text: (input) => analyzeText(parseInput(analyzeTextInput, input).text),
  },
  examples: { analyze_text: { text: "Agents talk. Workers work." } },
});

export const summarizationWorker = defineWorker({
  agentType: "summarizer",
  capabilities: ["summarization"],
  maxConcurrentTasks: 8,
  handlers: {
    summarize: (input) => {
      const { text, maxSentences } = parseInput(summarizeInput, input);
      return { summary: splitSentences(text).slice(0, maxSentences).join(" ") };
    },
  },
  examples: { summarize: { text: "Jobs fan out. Jobs fan in.", maxSentences: 1 } },
});

export const diagnosticsWorker = defineWorker({
  agentType: "diagnostics",
  capabilities: ["diagnostics"],
  maxConcurrentTasks: 8,
  // Long enough to try out timeouts and cancellation with `delayMs`.
  deployment: { timeoutSeconds: 60 },
  handlers: {
    echo: async (input, ctx) => {
      const { value, delayMs, failAttempts } = parseInput(echoInput, input);
      if (delayMs > 0) await sleep(delayMs, undefined, { signal: ctx.signal });
      if (ctx.attempt <= failAttempts)
        throw new Error(`echo: failing attempt ${ctx.attempt} of ${failAttempts} on purpose`);
      return { value, attempt: ctx.attempt };
    },
  },
  examples: { echo: { value: { hello: "agents" } } },
});

/**
 * A long-running agent (deployed on ECS Fargate, see functions/containers/worker.ts): works through
 * `steps` steps of `stepMs` each, stopping at once when its signal fires (cancel, timeout, lease lost
 * or a shutdown release).
 */
export const researchWorker = defineWorker({
  agentType: "researcher",
  capabilities: ["research"],
  maxConcurrentTasks: 4,
  // Tasks may outlast Lambda's 15 minutes' budget: long-running pollers, scaled to zero when idle.
  deployment: { runsOn: "fargate", timeoutSeconds: 900, maxConcurrency: 4 },
  handlers: {
    research: async (input, ctx) => {
      const { topic, steps, stepMs } = parseInput(researchInput, input);
      const findings: string[] = [];
      for (let step = 1; step <= steps; step++) {
        if (stepMs > 0) await sleep(stepMs, undefined, { signal: ctx.signal });
        findings.push(`${topic}: finding ${step}`);
      }
      return { topic, findings, attempt: ctx.attempt };
    },
  },
  examples: { research: { topic: "queues", steps: 2, stepMs: 100 } },
});

/** The demo agents, for tests that run them beside workers of their own. */
export const demoWorkers = [
  textAnalysisWorker,
  summarizationWorker,
  diagnosticsWorker,
  researchWorker,
] as const;
