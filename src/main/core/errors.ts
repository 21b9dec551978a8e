/**
 * The error classes of Bullpen, in one place. A message a user reads says what went wrong with which file and
 * what to do about it.
 */

/** An error whose message is meant for a person: shown as it is, without a stack. */
export class UserFacingError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'UserFacingError'
  }
}

/** An input that cannot be transcoded as asked (missing, empty, not media, no audio for mp3, …). */
export class InputRefusedError extends UserFacingError {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message)
    this.name = 'InputRefusedError'
  }
}

/** A job that must not be retried: a bad payload, a refused input, a cancelled job. Bull's retries are skipped. */
export class UnrecoverableJobError extends UserFacingError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'UnrecoverableJobError'
  }
}

/** A job payload read from Redis that fails validation. Never reaches ffmpeg. */
export class InvalidJobError extends UnrecoverableJobError {
  constructor(message: string) {
    super(message)
    this.name = 'InvalidJobError'
  }
}

/** The job was cancelled by a user: an expected outcome, not a crash. */
export class JobCancelledError extends UnrecoverableJobError {
  constructor(message = 'cancelled') {
    super(message)
    this.name = 'JobCancelledError'
  }
}

/** ffmpeg or ffprobe is missing or does not run. */
export class FfmpegMissingError extends UserFacingError {
  constructor(message: string) {
    super(message)
    this.name = 'FfmpegMissingError'
  }
}

/** ffmpeg ran and failed, or its output did not pass verification. */
export class TranscodeError extends UserFacingError {
  constructor(
    message: string,
    /** ffmpeg's last stderr lines, for the job log. */
    readonly logTail: string[] = [],
  ) {
    super(message)
    this.name = 'TranscodeError'
  }
}

/** Redis cannot be reached or configured. */
export class RedisUnavailableError extends UserFacingError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'RedisUnavailableError'
  }
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
