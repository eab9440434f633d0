/**
 * Stands in for `@smithy/core/event-streams` in Lambda bundles (an esbuild alias, see
 * `infra/bundling/aliases.ts`). The SDK's HTTP protocol loads it with a dynamic `import()` only for
 * operations that stream events (Bedrock, Transcribe, Kinesis subscriptions…); esbuild inlines a
 * dynamic import into a single-file bundle, ~15 KB of it. No operation Agentry calls (DynamoDB, SQS,
 * EventBridge) has an event stream, so reaching this module is a bug worth an error.
 */
function unsupported(): never {
  throw new Error(
    "event streams are not bundled into Agentry's Lambda functions (infra/bundling/no-event-streams.ts)",
  );
}

export class EventStreamSerde {
  constructor() {
    unsupported();
  }
}

export const eventStreamSerdeProvider = (): never => unsupported();
