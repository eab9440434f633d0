import { AgentryError } from "#shared/domain/errors";

/** The job has already ended (completed, failed or canceled): it cannot be canceled again. */
export class JobAlreadyFinishedError extends AgentryError {
  constructor(jobId: string, status: string) {
    super(`job ${jobId} is already ${status}`, { code: "already_terminal", statusCode: 409 });
    this.name = "JobAlreadyFinishedError";
  }
}

/**
 * A step cannot go on: its reducer failed, its result is too large, or the next step's tasks cannot be
 * built from it. The aggregator fails the job with this error's code and message.
 */
export class JobStepError extends AgentryError {
  constructor(code: string, message: string, cause?: unknown) {
    super(message, { code, statusCode: 422, cause });
    this.name = "JobStepError";
  }
}
