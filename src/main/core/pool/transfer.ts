/**
 * The worker's side of a transfer: fetch a job's input from its origin's file service, and send the output back.
 * Both stream (no file is held in memory), report progress, are abortable, and remove their temp file on every
 * failure path. A download resumes after a dropped connection with a `Range` from what it already has and is
 * checked against the origin's SHA-256 of the whole file (hashed as it arrives); an upload resumes from the offset the origin says it holds
 * (`HEAD`), and the origin checks the whole file's SHA-256 before it commits it.
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { request, type IncomingMessage } from 'node:http'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { JobCancelledError, errorMessage } from '../errors'
import { InputChangedError, OriginUnavailableError, TransferError, TransferRefusedError } from './errors'
import { keepWhatArrives } from './body'
import { CHECKSUM_HEADER, OFFSET_HEADER, sha256File } from './fileService'

/** Stream buffers of file reads and writes (the default 16–64 KiB makes many small writes of a large input). */
const BUFFER_BYTES = 1024 * 1024

/** Where a job's files are and how to authorise. */
export interface TransferTarget {
  /** The origin's file service, `http://host:port`. */
  baseUrl: string
  jobId: string
  token: string
  /** The origin's node id (for messages). */
  origin: string
}

export interface TransferOptions {
  signal?: AbortSignal | undefined
  /** Bytes done and total. */
  onProgress?: ((done: number, total: number) => void) | undefined
  /** Attempts in a row that may fail without any progress before giving up (default 5). */
  maxFailures?: number
  /** First pause between attempts (doubles, capped at 5 s). Default 250 ms. */
  retryDelayMs?: number
  /** No data for this long counts as a dropped connection. Default 30 s. */
  idleTimeoutMs?: number
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason
  return r instanceof Error ? r : new JobCancelledError()
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(done, ms)
    function done(): void {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    function onAbort(): void {
      clearTimeout(t)
      reject(abortError(signal as AbortSignal))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** An HTTP error status, for the retry logic. */
class StatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`)
  }
}

function describeRefusal(t: TransferTarget, status: number, what: string): Error {
  if (status === 403) {
    return new TransferRefusedError(
      `node ${t.origin} refused the ${what} of job ${t.jobId}: it is no longer queued there, or its payload changed`,
    )
  }
  if (status === 409 && what === 'input') {
    return new InputChangedError(
      `the input of job ${t.jobId} is gone or changed on node ${t.origin} since it was queued. Queue it again.`,
    )
  }
  return new TransferError(`node ${t.origin} answered HTTP ${status} to the ${what} of job ${t.jobId}`)
}

function get(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, ...(signal ? { signal } : {}) }, resolve)
    req.on('error', reject)
    req.end()
  })
}

/** Fails the stream when no data passes for `ms`. */
function idleWatch(ms: number): Transform {
  let timer: NodeJS.Timeout | undefined
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      arm()
      cb(null, chunk)
    },
    flush(cb) {
      clearTimeout(timer)
      cb()
    },
    destroy(err, cb) {
      clearTimeout(timer)
      cb(err)
    },
  })
  function arm(): void {
    clearTimeout(timer)
    timer = setTimeout(() => t.destroy(new Error(`no data for ${ms} ms`)), ms)
  }
  arm()
  return t
}

/**
 * Downloads a job's input to `dest` (through `dest + '.part'`), resuming after dropped connections and checking
 * size and SHA-256. Throws {@link TransferRefusedError} / {@link InputChangedError} (final),
 * {@link OriginUnavailableError} when the origin cannot be reached, {@link TransferError} otherwise.
 */
export async function fetchInput(
  target: TransferTarget,
  dest: string,
  expectedSize: number,
  opts: TransferOptions = {},
): Promise<{ path: string; sha256: string }> {
  const { signal } = opts
  const temp = `${dest}.part`
  const url = `${target.baseUrl}/jobs/${encodeURIComponent(target.jobId)}/input`
  const maxFailures = opts.maxFailures ?? 5
  let failures = 0
  let delay = opts.retryDelayMs ?? 250
  let checksum: string | undefined
  let restarts = 0
  let everConnected = false
  // The SHA-256 of the bytes in `temp`, computed as they arrive (no second read of the file at the end); `hashed`
  // is how many bytes it covers, and a resume whose file does not hold exactly those bytes rebuilds it from the file.
  let hash = createHash('sha256')
  let hashed = 0
  const rehash = async (upTo: number): Promise<void> => {
    hash = createHash('sha256')
    hashed = 0
    if (upTo > 0) {
      await pipeline(
        createReadStream(temp, { start: 0, end: upTo - 1, highWaterMark: BUFFER_BYTES }),
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk)
            hashed += chunk.length
            cb()
          },
        }),
        ...(signal ? [{ signal }] : []),
      )
    }
  }
  await rm(temp, { force: true })
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal)
      const have = await stat(temp).then(
        (s) => s.size,
        () => 0,
      )
      if (have === expectedSize && checksum) {
        if (hashed !== have) await rehash(have)
        const got = hash.digest('hex')
        hash = createHash('sha256')
        hashed = 0
        if (got === checksum) {
          await rename(temp, dest)
          return { path: dest, sha256: got }
        }
        // Wrong bytes somewhere: start again from zero, once.
        await rm(temp, { force: true })
        if (++restarts > 1)
          throw new TransferError(`the input of job ${target.jobId} failed its checksum twice`)
        continue
      }
      const before = have
      try {
        const headers: Record<string, string> = { Authorization: `Bearer ${target.token}` }
        if (have > 0) headers['Range'] = `bytes=${have}-`
        const res = await get(url, headers, signal)
        everConnected = true
        if (res.statusCode !== 200 && res.statusCode !== 206) {
          res.resume()
          throw new StatusError(res.statusCode ?? 0)
        }
        const sum = res.headers[CHECKSUM_HEADER]
        if (typeof sum !== 'string' || !/^[a-f0-9]{64}$/.test(sum)) {
          res.resume()
          throw new TransferError(`node ${target.origin} sent no checksum for job ${target.jobId}`)
        }
        let append = false
        if (res.statusCode === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))
          append = !!m && Number(m[1]) === have && Number(m[3]) === expectedSize
          if (!append) {
            res.resume()
            throw new TransferError(`node ${target.origin} sent an unexpected range for job ${target.jobId}`)
          }
        }
        if (checksum !== undefined && checksum !== sum) {
          // The file changed at the origin between two requests: what we have is of no use.
          append = false
          res.resume()
          await rm(temp, { force: true })
          checksum = sum
          continue
        }
        checksum = sum
        let done = append ? have : 0
        if (!append) {
          hash = createHash('sha256')
          hashed = 0
        } else if (hashed !== have) {
          await rehash(have)
        }
        const count = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            done += chunk.length
            hash.update(chunk)
            hashed += chunk.length
            opts.onProgress?.(done, expectedSize)
            cb(null, chunk)
          },
        })
        await pipeline(
          keepWhatArrives(res, BUFFER_BYTES),
          idleWatch(opts.idleTimeoutMs ?? 30_000),
          count,
          createWriteStream(temp, { flags: append ? 'a' : 'w', highWaterMark: BUFFER_BYTES }),
          ...(signal ? [{ signal }] : []),
        )
        if (!res.complete) throw new TransferError('connection closed before the end of the file')
        failures = 0
      } catch (err) {
        if (signal?.aborted) throw abortError(signal)
        if (err instanceof StatusError) {
          if (err.status === 403 || err.status === 409) throw describeRefusal(target, err.status, 'input')
          if (err.status === 416) await rm(temp, { force: true })
        } else if (err instanceof TransferError && /checksum/.test(err.message)) {
          throw err
        }
        const now = await stat(temp).then(
          (s) => s.size,
          () => 0,
        )
        failures = now > before ? 1 : failures + 1
        if (failures >= maxFailures) {
          if (!everConnected || isConnectionError(err)) {
            throw new OriginUnavailableError(
              `node ${target.origin} does not answer (${errorMessage(err)}); the job waits for it`,
              target.origin,
            )
          }
          throw new TransferError(`fetching the input of job ${target.jobId} failed: ${errorMessage(err)}`, {
            cause: err,
          })
        }
        await sleep(delay, signal)
        delay = Math.min(delay * 2, 5000)
      }
    }
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined)
    throw err
  }
}

/** An error of the connection itself (refused, reset, unreachable, timed out…), not an answer of the origin. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? ''
  return [
    'ECONNREFUSED',
    'ECONNRESET',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ETIMEDOUT',
    'ENOTFOUND',
    'EAI_AGAIN',
    'EPIPE',
  ].includes(code)
}

/** The origin's answer to an accepted upload. */
export interface UploadResult {
  path: string
  size: number
  sha256: string
  duplicate: boolean
}

/**
 * Sends `file` as the output of a job. The origin verifies size and checksum and commits it; a job delivered
 * before returns the earlier output (`duplicate`). After a dropped connection it asks the origin how many bytes it
 * holds (`HEAD`) and sends the rest from there (`Content-Range`); a whole file that fails the origin's checksum is
 * sent again from the start, once.
 */
export async function uploadOutput(
  target: TransferTarget,
  file: string,
  opts: TransferOptions = {},
): Promise<UploadResult> {
  const { signal } = opts
  const url = `${target.baseUrl}/jobs/${encodeURIComponent(target.jobId)}/output`
  const size = (await stat(file)).size
  const sum = await sha256File(file, signal)
  const maxFailures = opts.maxFailures ?? 5
  let failures = 0
  let delay = opts.retryDelayMs ?? 250
  let everConnected = false
  let restarts = 0
  /** Where the next PUT starts; undefined: ask the origin first. */
  let offset: number | undefined = 0
  let before = 0
  for (;;) {
    if (signal?.aborted) throw abortError(signal)
    try {
      if (offset === undefined) {
        const held = await headOffset(url, sum, target.token, signal)
        everConnected = true
        // 403: an origin of an earlier version knows no HEAD; the PUT from 0 tells a real refusal.
        if (held.status !== 200 && held.status !== 403) throw new StatusError(held.status)
        // All of it held without a commit (the origin stopped between the two) or nonsense: start again.
        offset = held.offset > 0 && held.offset < size ? held.offset : 0
        if (offset > before) failures = 0
        before = offset
      }
      const { status, body } = await put(url, file, offset, size, sum, target.token, opts)
      everConnected = true
      if (status === 200) {
        const r = JSON.parse(body) as Partial<UploadResult>
        if (typeof r.path !== 'string')
          throw new TransferError(`node ${target.origin} sent an invalid answer`)
        return {
          path: r.path,
          size: r.size ?? size,
          sha256: r.sha256 ?? sum,
          duplicate: r.duplicate === true,
        }
      }
      if (status === 403 || status === 400) throw describeRefusal(target, status, 'output')
      if (status === 422) {
        // The origin dropped what it had: the next attempt starts from zero.
        if (++restarts > 1)
          throw new TransferError(
            `the output of job ${target.jobId} failed the checksum at ${target.origin} twice`,
          )
        offset = 0
        continue
      }
      throw new StatusError(status)
    } catch (err) {
      if (signal?.aborted) throw abortError(signal)
      if (err instanceof TransferRefusedError || err instanceof TransferError) throw err
      offset = undefined
      if (err instanceof StatusError && err.status === 409 && failures + 1 >= maxFailures) {
        throw new TransferError(
          `node ${target.origin} cannot take the output of job ${target.jobId} (HTTP 409)`,
        )
      }
      if (++failures >= maxFailures) {
        if (!everConnected || isConnectionError(err)) {
          throw new OriginUnavailableError(
            `node ${target.origin} does not answer (${errorMessage(err)}); the output waits for it`,
            target.origin,
          )
        }
        throw new TransferError(`sending the output of job ${target.jobId} failed: ${errorMessage(err)}`, {
          cause: err,
        })
      }
      await sleep(delay, signal)
      delay = Math.min(delay * 2, 5000)
    }
  }
}

/** `HEAD` of an upload: how many bytes of this file the origin holds. */
function headOffset(
  url: string,
  sum: string,
  token: string,
  signal: AbortSignal | undefined,
): Promise<{ status: number; offset: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'HEAD',
      headers: { Authorization: `Bearer ${token}`, [CHECKSUM_HEADER]: sum },
      ...(signal ? { signal } : {}),
    })
    req.on('response', (res) => {
      res.resume()
      const text = res.headers[OFFSET_HEADER]
      const offset = typeof text === 'string' && /^\d{1,16}$/.test(text) ? Number(text) : 0
      resolve({ status: res.statusCode ?? 0, offset })
    })
    req.on('error', reject)
    req.end()
  })
}

function put(
  url: string,
  file: string,
  start: number,
  size: number,
  sum: string,
  token: string,
  opts: TransferOptions,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'PUT',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(size - start),
        'Content-Range': `bytes ${start}-${size - 1}/${size}`,
        [CHECKSUM_HEADER]: sum,
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
    // A connection that died without a word stalls the body: give up on it and resume through a new one.
    const idleMs = opts.idleTimeoutMs ?? 30_000
    let timer: NodeJS.Timeout | undefined
    const arm = (ms = idleMs): void => {
      clearTimeout(timer)
      timer = setTimeout(() => req.destroy(new Error(`upload stalled: no progress for ${ms} ms`)), ms)
    }
    arm()
    req.on('close', () => clearTimeout(timer))
    // All sent: the origin reads the whole file back to check it before it answers (allow 20 MB/s for that).
    req.on('finish', () => arm(idleMs + Math.ceil(size / (20 * 1024 * 1024)) * 1000))
    req.on('response', (res) => {
      clearTimeout(timer)
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    let sent = start
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        arm()
        sent += chunk.length
        opts.onProgress?.(sent, size)
        cb(null, chunk)
      },
    })
    pipeline(createReadStream(file, { start }), count, req).catch((err: unknown) => {
      // The response (e.g. an early 403) may already explain; otherwise the request error does.
      if (!req.destroyed) req.destroy(err as Error)
    })
  })
}
