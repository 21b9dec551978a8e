/**
 * Handing a job back to wait, without burning one of its attempts: used when its origin is offline (the job is
 * fine; it just cannot run anywhere but where its file is reachable).
 *
 * Bull 4 has no "delay this job" outcome for a processor (BullMQ's DelayedError came later). When a processor
 * throws, `Job#moveToFailed` adds one to `attemptsMade` and, with a backoff, moves the job to `delayed` under the
 * job's lock. So the workaround: lower the in-memory `attemptsMade` by one (the increment brings it back to the
 * value stored in Redis) and give the in-memory job a fixed backoff of the wanted delay. Nothing of this is
 * written back except the unchanged attempt count, the reason (shown as "waiting for node …") and the move to
 * `delayed`; the job keeps its own backoff for real failures. Bull source: lib/job.js `moveToFailed`,
 * `_saveAttempt`; lib/backoffs.js `calculate`.
 */
import type Bull from 'bull'
import { HandBackError } from './errors'

/** Longest a job waits before it looks for its origin again. */
export const MAX_WAIT_MS = 5 * 60_000

/**
 * Prepares `job` so that throwing `err` from its processor moves it to `delayed` for `err.retryAfterMs` (up to twice
 * that, at random) without
 * counting an attempt. Returns the error to throw.
 */
export function prepareHandBack<E extends HandBackError>(job: Bull.Job, err: E): E {
  // Jitter: a delay in step with Bull's polling (drainDelay) lets the node that handed the job back take it again
  // first, round after round; a random part gives the other nodes their turn.
  const base = Math.max(1000, Math.min(MAX_WAIT_MS, err.retryAfterMs))
  const delay = Math.round(base * (1 + Math.random()))
  job.attemptsMade = Math.max(-1, job.attemptsMade - 1)
  // An in-memory override only: the stored options keep the job's own backoff.
  job.opts = { ...job.opts, backoff: { type: 'fixed', delay } }
  if (job.opts.attempts === undefined || job.opts.attempts < 1) job.opts.attempts = 1
  return err
}

/**
 * Wraps a Bull processor: a {@link HandBackError} hands the job back (delayed, attempt not counted);
 * every other outcome is passed through.
 */
export function withHandBack<T>(processor: (job: Bull.Job) => Promise<T>): (job: Bull.Job) => Promise<T> {
  return async (job) => {
    try {
      return await processor(job)
    } catch (err) {
      if (err instanceof HandBackError) throw prepareHandBack(job, err)
      throw err
    }
  }
}
