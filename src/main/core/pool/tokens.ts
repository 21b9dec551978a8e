/**
 * Per-job transfer tokens.
 *
 * A token is HMAC-SHA256(secret, the job id + what the job says about its files), where `secret` is 32 random bytes
 * kept in the origin's data folder (`pool-secret`, mode 0600) and never leaves it. The origin writes each token to
 * Redis when it queues the job (`…:pool:token:<jobId>`), so the worker that takes the job can present it.
 *
 * Why an HMAC rather than a random token stored in Redis: the origin does not trust Redis either (anyone who
 * reaches Redis can write jobs). On every request it recomputes the HMAC over the job's *current* payload, so:
 * - a job forged in Redis with this node as origin has no valid token (only the origin can mint one);
 * - a queued job whose input path or output folder was changed in Redis no longer matches its token, so the file
 *   service can never be made to read another file or write into another folder;
 * - tokens lost with a Redis that keeps nothing can be minted again from the job itself.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type Redis from 'ioredis'
import type { JobData } from '../../../shared/spec'

/** Name of the secret file in a data folder. */
export const SECRET_FILE = 'pool-secret'
const SECRET_BYTES = 32

/** Job ids the pool accepts in keys and URLs (Bull's numeric ids and custom ids without dots or slashes). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_:-]{1,128}$/

/** Reads this node's secret, creating it (32 random bytes, readable by the owner only) on first use. */
export function loadOrCreateSecret(dataDir: string): Buffer {
  const file = join(dataDir, SECRET_FILE)
  try {
    const hex = readFileSync(file, 'utf8').trim()
    if (/^[a-f0-9]{64}$/.test(hex)) return Buffer.from(hex, 'hex')
  } catch {
    // first use: created below
  }
  mkdirSync(dataDir, { recursive: true })
  const secret = randomBytes(SECRET_BYTES)
  writeFileSync(file, secret.toString('hex') + '\n', { mode: 0o600 })
  chmodSync(file, 0o600)
  return secret
}

/** The token of one job: base64url of HMAC-SHA256 over its id, origin, input (path, size, mtime) and output. */
export function jobToken(secret: Buffer, jobId: string, data: JobData): string {
  const bound = JSON.stringify([
    'bullpen-job-token-v1',
    jobId,
    data.origin,
    data.input.path,
    data.input.size,
    data.input.mtimeMs,
    data.outputDir,
    data.spec.format,
  ])
  return createHmac('sha256', secret).update(bound).digest('base64url')
}

/** Compares two tokens in constant time (for equal lengths; different lengths are simply unequal). */
export function tokensEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented, 'utf8')
  const b = Buffer.from(expected, 'utf8')
  if (a.length !== b.length) {
    // Still spend a comparison so a wrong length is not measurably faster.
    timingSafeEqual(b, b)
    return false
  }
  return timingSafeEqual(a, b)
}

/** Where tokens live in Redis, under the queue's key prefix. */
export class TokenStore {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {}

  key(jobId: string): string {
    return `${this.keyPrefix}:pool:token:${jobId}`
  }

  /** Origin: publishes a job's token (kept 30 days; re-issued by the origin while the job is pending). */
  async put(jobId: string, token: string): Promise<void> {
    if (!JOB_ID_PATTERN.test(jobId)) throw new Error(`invalid job id ${jobId}`)
    await this.redis.set(this.key(jobId), token, 'EX', 30 * 24 * 3600)
  }

  /** Worker: the token of a job, or null when there is none (yet). */
  async get(jobId: string): Promise<string | null> {
    if (!JOB_ID_PATTERN.test(jobId)) return null
    const t = await this.redis.get(this.key(jobId))
    return t !== null && /^[A-Za-z0-9_-]{43}$/.test(t) ? t : null
  }

  async delete(jobId: string): Promise<void> {
    if (!JOB_ID_PATTERN.test(jobId)) return
    await this.redis.del(this.key(jobId))
  }
}
