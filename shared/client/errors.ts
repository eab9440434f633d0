import { AgentryError } from "#shared/domain/errors";
import type { ErrorResponse } from "#shared/http/schemas";

/**
 * The API answered with an error status. `code`, `message`, `details` and `requestId` are the error
 * envelope's (`{ "error": { … } }`); `status` is the HTTP status. A body that is not an envelope (a
 * proxy's HTML page, API Gateway's own `{"message":"Forbidden"}`) gives code `http_<status>` and
 * keeps the text in `message`.
 *
 * @example
 * try { await client.getTask("nope"); } catch (error) {
 *   if (error instanceof AgentryApiError && error.code === "not_found") console.log("no such task");
 * }
 */
export class AgentryApiError extends AgentryError {
  readonly status: number;
  readonly requestId?: string;
  readonly envelope: ErrorResponse;

  constructor(status: number, envelope: ErrorResponse) {
    super(envelope.error.message, {
      code: envelope.error.code,
      statusCode: status,
      expose: true,
      ...(envelope.error.details !== undefined ? { details: envelope.error.details } : {}),
    });
    this.name = "AgentryApiError";
    this.status = status;
    this.envelope = envelope;
    if (envelope.error.requestId !== undefined) this.requestId = envelope.error.requestId;
  }
}

/** The API could not be reached at all (refused connection, DNS, TLS), after the client's retries. */
export class ApiUnreachableError extends AgentryError {
  constructor(url: string, cause: unknown) {
    const reason =
      cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : "";
    super(`cannot reach ${url}${reason ? `: ${reason}` : ""}`, {
      code: "api_unreachable",
      statusCode: 503,
      expose: true,
      cause,
    });
    this.name = "ApiUnreachableError";
  }
}

/** A 2xx answer whose body does not match the operation's response schema (client and server disagree). */
export class UnexpectedResponseError extends AgentryError {
  constructor(operation: string, status: number, problem: string) {
    super(`${operation}: the ${status} response does not match its schema: ${problem}`, {
      code: "unexpected_response",
      statusCode: 502,
      expose: true,
    });
    this.name = "UnexpectedResponseError";
  }
}

/** `waitForTask`/`waitForJob` gave up before the task or job ended. It has not been canceled. */
export class WaitTimeoutError extends AgentryError {
  readonly last: unknown;

  constructor(what: string, timeoutMs: number, last: unknown) {
    super(`${what} did not end within ${timeoutMs} ms`, {
      code: "wait_timeout",
      statusCode: 504,
      expose: true,
    });
    this.name = "WaitTimeoutError";
    this.last = last;
  }
}
