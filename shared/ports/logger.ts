/**
 * The one logger shape of the platform: the Powertools Logger's (`info(message, ...attributes)`), so
 * a Powertools `Logger` is passed as it is, and the local runtime's console logger has the same
 * methods. Errors travel as `Error` objects in an attribute (`{ error }`), never as their message:
 * the stack and `cause` reach the log.
 *
 * @example
 * logger.error("event delivery failed", { eventId: event.id, error });
 */
export type LogAttributes = Record<string, unknown>;

export interface Logger {
  debug(message: string, ...attributes: LogAttributes[]): void;
  info(message: string, ...attributes: LogAttributes[]): void;
  warn(message: string, ...attributes: LogAttributes[]): void;
  error(message: string, ...attributes: LogAttributes[]): void;
}
