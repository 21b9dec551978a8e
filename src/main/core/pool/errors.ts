/** Errors of the pool layer. */
import { UnrecoverableJobError, UserFacingError } from '../errors'

/** "Not here, not now": the job goes back to the queue (delayed by `retryAfterMs`) without counting an attempt. */
export class HandBackError extends UserFacingError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message)
    this.name = 'HandBackError'
  }
}

/**
 * The job's origin node is not in the registry, or its file service does not answer: the job must wait for it,
 * not fail.
 */
export class OriginUnavailableError extends HandBackError {
  constructor(
    message: string,
    readonly origin: string,
    retryAfterMs: number = 15_000,
  ) {
    super(message, retryAfterMs)
    this.name = 'OriginUnavailableError'
  }
}

/** This node's ffmpeg lacks an encoder the job needs, and another live node has it: leave the job to that one. */
export class EncoderMissingHereError extends HandBackError {
  constructor(
    message: string,
    readonly encoders: string[],
    retryAfterMs: number = 3_000,
  ) {
    super(message, retryAfterMs)
    this.name = 'EncoderMissingHereError'
  }
}

/**
 * The origin refused the transfer (403): the job is no longer queued there, or its payload in Redis no longer
 * matches what the origin queued. Retrying cannot help.
 */
export class TransferRefusedError extends UnrecoverableJobError {
  constructor(message: string) {
    super(message)
    this.name = 'TransferRefusedError'
  }
}

/** The input at the origin is gone or changed since it was queued (409 from the origin). */
export class InputChangedError extends UnrecoverableJobError {
  constructor(message: string) {
    super(message)
    this.name = 'InputChangedError'
  }
}

/** The transfer failed for a reason worth retrying (checksum mismatch, dropped connections, origin busy). */
export class TransferError extends UserFacingError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'TransferError'
  }
}

/** True for errors that mean "not now, later" rather than "this job failed". */
export function isOriginUnavailable(err: unknown): err is OriginUnavailableError {
  return err instanceof Error && err.name === 'OriginUnavailableError'
}
