import { isServiceBusError } from "@azure/service-bus";
import { AgentryError, DependencyError } from "#shared/domain/errors";

/** A logical queue (or topic) name the adapter was not configured with. */
export class UnknownServiceBusEntityError extends AgentryError {
  constructor(name: string, known: readonly string[], kind = "queue") {
    super(`unknown ${kind} "${name}"; configured: ${known.length > 0 ? known.join(", ") : "none"}`, {
      code: "unknown_queue",
      statusCode: 500,
    });
    this.name = "UnknownServiceBusEntityError";
  }
}

/**
 * The message's lock is gone (it expired, or the message was settled): the lease is lost, and
 * Service Bus delivers the message again. The same meaning as a stale SQS receipt handle.
 */
export class ServiceBusLeaseLostError extends AgentryError {
  constructor(messageId: string, cause?: unknown) {
    super(`message ${messageId} is no longer locked by this receiver (lease lost)`, {
      code: "message_not_inflight",
      statusCode: 409,
      cause,
    });
    this.name = "ServiceBusLeaseLostError";
  }
}

/** Service Bus error codes that mean the lock (lease) on a message is gone. */
const LOCK_LOST_CODES = new Set(["MessageLockLost", "SessionLockLost", "MessageNotFound"]);

/** Whether a Service Bus error means the message's lock is gone. */
export function isLockLost(error: unknown): boolean {
  return isServiceBusError(error) && LOCK_LOST_CODES.has(error.code);
}

/** Service Bus error codes of faults that pass: throttling, timeouts, a broken connection. */
const TRANSIENT_CODES = new Set(["ServiceBusy", "ServiceTimeout", "ServiceCommunicationProblem"]);

/**
 * Whether the operation may succeed if tried again: throttling (ServiceBusy), timeouts, connection
 * problems, and general errors the SDK marks retryable. The SDK has already retried these itself.
 * A missing entity, a too-large message or a refused authorization fail the same way every time.
 */
export function isTransient(error: unknown): boolean {
  if (isServiceBusError(error)) {
    return TRANSIENT_CODES.has(error.code) || (error.code === "GeneralError" && error.retryable);
  }
  return typeof error === "object" && error !== null && (error as { retryable?: unknown }).retryable === true;
}

/** Maps a settle/renew failure to the port's meaning: lease lost, or a dependency failure. */
export function settlementError(messageId: string, error: unknown): Error {
  if (isLockLost(error)) return new ServiceBusLeaseLostError(messageId, error);
  if (error instanceof AgentryError) return error;
  return new DependencyError(`Service Bus failed on message ${messageId}: ${describeError(error)}`, error);
}

/** A short description of an error for failure lists and logs. */
export function describeError(error: unknown): string {
  if (isServiceBusError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
