import { AgentryError } from "#shared/domain/errors";

/** No reply with the request's correlation id arrived in time. */
export class MessageTimeoutError extends AgentryError {
  readonly correlationId: string;

  constructor(correlationId: string, timeoutMs: number) {
    super(`no reply to request ${correlationId} within ${timeoutMs} ms`, {
      code: "request_timeout",
      statusCode: 504,
    });
    this.name = "MessageTimeoutError";
    this.correlationId = correlationId;
  }
}

/** A messaging call needs a part the composition root did not provide (e.g. a subscriber on Lambda). */
export class MessagingConfigurationError extends AgentryError {
  constructor(message: string) {
    super(message, { code: "configuration_error", statusCode: 500, expose: false });
    this.name = "MessagingConfigurationError";
  }
}
