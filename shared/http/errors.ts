import type * as z from "zod";
import { AgentryError, type ErrorDetail, ValidationError } from "#shared/domain/errors";
import type { Logger } from "#shared/ports/logger";

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
  constructor(message: string, details?: readonly ErrorDetail[], cause?: unknown) {
    super(message, { code: "invalid_json", statusCode: 400, details, cause });
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

export interface ErrorResponseContext {
  readonly requestId: string;
  readonly logger?: Pick<Logger, "error">;
  /** Logged with an unexpected error, never returned. */
  readonly method?: string;
  readonly path?: string;
}

/** An error as the API answers it: status, extra headers and the error envelope. */
export interface ErrorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { readonly error: Record<string, unknown> };
}

/**
 * Maps any thrown value to the API's error response. Never throws, not even when the logger does:
 * it is the last line of defence of an app that promises never to throw.
 *
 * @example
 * app.onError((error, c) => { const r = errorResponse(error, { requestId, logger }); return c.json(r.body, r.status); });
 */
export function errorResponse(error: unknown, context: ErrorResponseContext): ErrorResponse {
  if (error instanceof AgentryError && error.expose) {
    if (error.statusCode >= 500) report(error, context);
    return {
      status: error.statusCode,
      headers: error instanceof MethodNotAllowedError ? { allow: error.allowed.join(", ") } : {},
      body: {
        error: {
          code: error.code,
          message: error.message,
          ...(error.details !== undefined ? { details: error.details } : {}),
          ...(error.statusCode >= 500 ? { requestId: context.requestId } : {}),
        },
      },
    };
  }
  report(error, context);
  // A hidden dependency failure stays a 503 so clients know a retry may succeed; nothing else is said.
  const unavailable = error instanceof AgentryError && error.statusCode === 503;
  return {
    status: unavailable ? 503 : 500,
    headers: {},
    body: {
      error: unavailable
        ? {
            code: "service_unavailable",
            message: "service temporarily unavailable",
            requestId: context.requestId,
          }
        : { code: "internal_error", message: "internal error", requestId: context.requestId },
    },
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
