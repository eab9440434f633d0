/**
 * Domain errors. Every error Agentry raises on purpose extends {@link AgentryError}; the HTTP edge maps
 * `statusCode`/`expose` to a response and turns anything else into a generic 500.
 */
export interface ErrorDetail {
  readonly path: string;
  readonly message: string;
}

export class AgentryError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly expose: boolean;
  readonly details?: readonly ErrorDetail[] | Record<string, unknown>;

  constructor(
    message: string,
    options: {
      code: string;
      statusCode?: number;
      expose?: boolean;
      details?: readonly ErrorDetail[] | Record<string, unknown>;
      cause?: unknown;
    },
  ) {
    super(message, { cause: options.cause });
    this.name = "AgentryError";
    this.code = options.code;
    this.statusCode = options.statusCode ?? 500;
    this.expose = options.expose ?? this.statusCode < 500;
    if (options.details !== undefined) this.details = options.details;
  }
}

export class ValidationError extends AgentryError {
  constructor(message: string, details?: readonly ErrorDetail[], cause?: unknown) {
    super(message, { code: "validation_error", statusCode: 400, details, cause });
    this.name = "ValidationError";
  }
}

export class NotFoundError extends AgentryError {
  constructor(message: string) {
    super(message, { code: "not_found", statusCode: 404 });
    this.name = "NotFoundError";
  }
}

export class IdempotencyConflictError extends AgentryError {
  constructor(idempotencyKey: string) {
    super(`idempotency key "${idempotencyKey}" was already used with a different request body`, {
      code: "idempotency_conflict",
      statusCode: 409,
    });
    this.name = "IdempotencyConflictError";
  }
}

export class AlreadyTerminalError extends AgentryError {
  constructor(taskId: string, status: string) {
    super(`task ${taskId} is already ${status}`, { code: "already_terminal", statusCode: 409 });
    this.name = "AlreadyTerminalError";
  }
}

export class PayloadTooLargeError extends AgentryError {
  constructor(message: string) {
    super(message, { code: "payload_too_large", statusCode: 413 });
    this.name = "PayloadTooLargeError";
  }
}

export class IllegalTransitionError extends AgentryError {
  constructor(from: string, to: string) {
    super(`illegal task transition ${from} -> ${to}`, { code: "illegal_transition", statusCode: 409 });
    this.name = "IllegalTransitionError";
  }
}

/** A write kept losing races with other writers; the caller may retry. */
export class ConcurrentUpdateError extends AgentryError {
  constructor(message: string) {
    super(message, { code: "concurrent_update", statusCode: 409 });
    this.name = "ConcurrentUpdateError";
  }
}

/** The worker's claim on a task is gone (lease expired and another worker took it, or it was canceled). */
export class TaskLeaseLostError extends AgentryError {
  constructor(taskId: string) {
    super(`lease on task ${taskId} was lost`, { code: "lease_lost", statusCode: 409 });
    this.name = "TaskLeaseLostError";
  }
}

/**
 * Thrown by a task handler to fail the task at once, without further attempts.
 *
 * @example
 * throw new NonRetryableError("input references a document that does not exist");
 */
export class NonRetryableError extends AgentryError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, {
      code: options.code ?? "non_retryable",
      statusCode: 500,
      expose: true,
      cause: options.cause,
    });
    this.name = "NonRetryableError";
  }
}

/** A dependency (store, queue, bus) failed in a way the caller may retry. */
export class DependencyError extends AgentryError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: "dependency_error", statusCode: 503, expose: false, cause });
    this.name = "DependencyError";
  }
}
