import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type * as z from "zod";
import { AgentryError, type ErrorDetail, ValidationError } from "#shared/domain/errors";

/**
 * Errors of the HTTP edge and the one place where any error becomes an HTTP response. Known errors
 * ({@link AgentryError} with `expose`) show their code, message and details; everything else becomes
 * a generic 5xx carrying only the request id, and the real error goes to the log.
 */

/**
 * The body of a request that should be JSON is not. A separate code from `validation_error` because
 * the client's fix differs: the body never reached validation (documented in the OpenAPI document).
 */
export class InvalidJsonError extends AgentryError {
  constructor(message: string, details?: readonly ErrorDetail[]) {
    super(message, { code: "invalid_json", statusCode: 400, details });
    this.name = "InvalidJsonError";
  }
}

/** The path exists but not with this method; `allowed` becomes the response's `Allow` header. */
export class MethodNotAllowedError extends AgentryError {
  readonly allowed: readonly string[];

  constructor(method: string, path: string, allowed: readonly string[]) {
    super(`${method} is not allowed on ${path}`, {
      code: "method_not_allowed",
      statusCode: 405,
      details: { allowed: [...allowed] },
    });
    this.name = "MethodNotAllowedError";
    this.allowed = allowed;
  }
}

/** Where the edge reports errors it could not map. Powertools' Logger and the local console logger fit. */
export interface HttpLogger {
  error(message: string, attributes: Record<string, unknown>): void;
}

export interface ErrorResponseContext {
  readonly requestId: string;
  readonly logger?: HttpLogger;
  /** Logged with an unexpected error, never returned. */
  readonly method?: string;
  readonly path?: string;
}

const JSON_HEADERS = { "content-type": "application/json" } as const;

/**
 * Maps any thrown value to an API Gateway result. Never throws, not even when the logger does: it is
 * the last line of defence of a handler that promises never to throw.
 *
 * @example
 * try { return await route(event); } catch (error) { return errorResult(error, { requestId, logger }); }
 */
export function errorResult(
  error: unknown,
  context: ErrorResponseContext,
): APIGatewayProxyStructuredResultV2 {
  if (error instanceof AgentryError && error.expose) {
    if (error.statusCode >= 500) report(error, context);
    return {
      statusCode: error.statusCode,
      headers:
        error instanceof MethodNotAllowedError
          ? { ...JSON_HEADERS, allow: error.allowed.join(", ") }
          : JSON_HEADERS,
      body: JSON.stringify({
        error: {
          code: error.code,
          message: error.message,
          ...(error.details !== undefined ? { details: error.details } : {}),
          ...(error.statusCode >= 500 ? { requestId: context.requestId } : {}),
        },
      }),
    };
  }
  report(error, context);
  // A hidden dependency failure stays a 503 so clients know a retry may succeed; nothing else is said.
  const unavailable = error instanceof AgentryError && error.statusCode === 503;
  return {
    statusCode: unavailable ? 503 : 500,
    headers: JSON_HEADERS,
    body: JSON.stringify({
      error: unavailable
        ? {
            code: "service_unavailable",
            message: "service temporarily unavailable",
            requestId: context.requestId,
          }
        : { code: "internal_error", message: "internal error", requestId: context.requestId },
    }),
  };
}

function report(error: unknown, context: ErrorResponseContext): void {
  try {
    context.logger?.error("request failed", {
      requestId: context.requestId,
      ...(context.method !== undefined ? { method: context.method } : {}),
      ...(context.path !== undefined ? { path: context.path } : {}),
      error,
    });
  } catch {
    // A broken logger must not turn a 500 into an unhandled rejection; there is nowhere left to report.
  }
}

/**
 * Turns zod issues into a {@link ValidationError} whose details say, per offending field, where
 * (`tasks.0.taskType`) and what. An unknown key is reported at its own path, which is where the
 * client has to look, rather than at the object that holds it.
 *
 * @example
 * throw validationErrorFromZod(result.error, "invalid task");
 */
export function validationErrorFromZod(
  error: z.ZodError,
  message: string,
  pathPrefix: readonly string[] = [],
): ValidationError {
  const details = error.issues.flatMap((issue): ErrorDetail[] => {
    const base = [...pathPrefix, ...issue.path.map(String)];
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ path: [...base, key].join("."), message: "unknown field" }));
    }
    return [{ path: base.join("."), message: issue.message }];
  });
  return new ValidationError(message, details, error);
}
