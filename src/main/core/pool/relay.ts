/**
 * The input relay of one streamed job: a tiny HTTP server on 127.0.0.1 (an ephemeral port, an unguessable path)
 * that ffmpeg reads the job's input from while it is still arriving from the origin.
 *
 * Each request ffmpeg makes (a first `GET` with `Range: bytes=0-`, then one per seek it cannot read through, e.g. to
 * an mp4's `moov` at the end) is forwarded to the origin's file service as a `Range` request with the job's token in
 * the `Authorization` header — so the token never appears in ffmpeg's command line, environment or URLs. The
 * relay:
 * - checks what the origin sends against the size the job was queued with (`Content-Range` total, lengths);
 * - resumes a dropped or silent origin connection from the byte it has reached (bounded attempts, backoff);
 * - gives up with the transfer's own error ({@link OriginUnavailableError} when the origin stopped answering,
 *   {@link InputChangedError} on its 409, {@link TransferRefusedError} on its 403, {@link TransferError}
 *   otherwise), which {@link InputRelay.failure} holds and `onFail` reports at once (the caller stops ffmpeg);
 * - opens the origin's first response as soon as it starts (before ffmpeg is even spawned), so a job whose origin
 *   refuses or is away fails before any encode, and the first bytes are already on their way;
 * - is closed on every path by its owner: {@link InputRelay.close} drops every connection and frees the port.
 *
 * The origin checks each request against the file's size and mtime at queue time (409 when it changed) and serves
 * it without computing a whole-file checksum (header `x-bullpen-stream: 1`); the output's verification by ffprobe is
 * what checks the result (docs/pooling.md, "Integrity").
 */
import { randomBytes } from 'node:crypto'
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { JobCancelledError, errorMessage } from '../errors'
import { logger as rootLogger, type Logger } from '../logger'
import { STREAM_HEADER } from './fileService'
import { InputChangedError, OriginUnavailableError, TransferError, TransferRefusedError } from './errors'
import { isConnectionError, type TransferTarget } from './transfer'

/** Socket buffers of both hops (default 16–64 KiB): fewer, larger reads and writes for a 100 MB+ input. */
const BUFFER_BYTES = 1024 * 1024

/** What a relay URL looks like: only these are accepted by ffmpeg/run.ts as an input. */
export const RELAY_URL_PATTERN =
  /^http:\/\/127\.0\.0\.1:\d{1,5}\/[a-f0-9]{32}\/[A-Za-z0-9%._~!$&'()*+,;=@-]{1,1024}$/

export interface RelayOptions {
  /** The origin and the job's token. */
  target: TransferTarget
  /** The input's size when it was queued: every answer of the origin must agree. */
  size: number
  /** The input's file name (the last segment of the URL: ffmpeg's messages and format guess see it). */
  name: string
  /** Attempts in a row without progress before giving up (default 5). */
  maxFailures?: number
  /** First pause between attempts (doubles, capped at 5 s). Default 250 ms. */
  retryDelayMs?: number
  /** No data from the origin for this long counts as a dropped connection. Default 30 s. */
  idleTimeoutMs?: number
  /** Aborting stops every transfer (the job was cancelled). */
  signal?: AbortSignal | undefined
  /** Called once, at the first failure that ends the stream. */
  onFail?: (err: Error) => void
  logger?: Logger
}

/** Counters of one relay, for logs and the benchmark. */
export interface RelayStats {
  /** Requests ffmpeg made. */
  requests: number
  /** Requests made to the origin (one per ffmpeg request, plus resumes). */
  originRequests: number
  /** Bytes passed to ffmpeg. */
  bytes: number
  /** Origin connections resumed after a drop. */
  resumes: number
}

/** An HTTP status of the origin, for the retry logic. */
class OriginStatus extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`)
  }
}

/** Parses ffmpeg's `Range: bytes=a-` / `bytes=a-b` against `size`; null when absent, 'bad' when unsatisfiable. */
function requestedRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | null | 'bad' {
  if (header === undefined) return null
  const m = /^bytes=(\d{1,16})-(\d{0,16})$/.exec(header.trim())
  if (!m) return 'bad'
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  return start >= size || end < start ? 'bad' : { start, end }
}

/** One job's relay. Create with {@link startRelay}. */
export class InputRelay {
  readonly stats: RelayStats = { requests: 0, originRequests: 0, bytes: 0, resumes: 0 }
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private readonly originRequests = new Set<ReturnType<typeof request>>()
  private readonly secretPath = randomBytes(16).toString('hex')
  private readonly log: Logger
  private failed: Error | null = null
  private closed = false
  private boundPort = 0
  /** The origin's answer to `bytes=0-`, opened at start and kept paused for ffmpeg's first request. */
  private early: Promise<IncomingMessage> | undefined
  private readonly inputUrlPath: string
  private readonly onAbort = (): void => {
    const r: unknown = this.opts.signal?.reason
    this.fail(r instanceof Error ? r : new JobCancelledError())
  }

  constructor(private readonly opts: RelayOptions) {
    this.log = (opts.logger ?? rootLogger).child({ module: 'relay', jobId: opts.target.jobId })
    this.inputUrlPath = `/${this.secretPath}/${encodeURIComponent(opts.name || 'input')}`
  }

  /** The URL ffmpeg reads: `http://127.0.0.1:<port>/<32 hex>/<name>`. */
  get url(): string {
    return `http://127.0.0.1:${this.boundPort}${this.inputUrlPath}`
  }

  get port(): number {
    return this.boundPort
  }

  /** The error that ended the stream, if any (cancel included). */
  get failure(): Error | null {
    return this.failed
  }

  /**
   * Listens, and opens the origin's first answer. Rejects (after closing) when the origin refuses the job or cannot
   * be reached: nothing needs to start then.
   */
  async start(): Promise<void> {
    if (!Number.isSafeInteger(this.opts.size) || this.opts.size < 1) {
      throw new TransferError(`the input of job ${this.opts.target.jobId} has no bytes to stream`)
    }
    const server = createServer({ highWaterMark: BUFFER_BYTES }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.debug({ err: errorMessage(err) }, 'relay request failed')
        if (!res.headersSent) res.writeHead(502, { 'Content-Length': 0, Connection: 'close' }).end()
        else res.destroy()
      })
    })
    server.on('connection', (s) => {
      this.sockets.add(s)
      s.once('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.server = server
    this.boundPort = (server.address() as AddressInfo).port
    if (this.opts.signal?.aborted) this.onAbort()
    else this.opts.signal?.addEventListener('abort', this.onAbort, { once: true })
    try {
      this.early = this.openWithRetries(0, this.opts.size - 1)
      const first = await this.early
      // Held until ffmpeg asks for it; the socket's buffers fill, then the origin waits.
      first.pause()
    } catch (err) {
      this.early = undefined
      await this.close()
      throw err
    }
  }

  /** Stops everything: ffmpeg's connections, the origin's, the listening port. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.opts.signal?.removeEventListener('abort', this.onAbort)
    for (const r of this.originRequests) r.destroy()
    this.originRequests.clear()
    const early = this.early
    this.early = undefined
    early?.then((r) => r.destroy()).catch(() => undefined)
    const s = this.server
    this.server = undefined
    if (!s) return
    const closed = new Promise<void>((resolve) => s.close(() => resolve()))
    for (const sock of this.sockets) sock.destroy()
    await closed
  }

  private fail(err: Error): void {
    if (this.failed) return
    this.failed = err
    this.log.info({ err: errorMessage(err) }, 'input stream stopped')
    for (const r of this.originRequests) r.destroy()
    for (const sock of this.sockets) sock.destroy()
    try {
      this.opts.onFail?.(err)
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'relay failure listener threw')
    }
  }

  private describe(status: number): Error {
    const t = this.opts.target
    if (status === 403) {
      return new TransferRefusedError(
        `node ${t.origin} refused the input of job ${t.jobId}: it is no longer queued there, or its payload changed`,
      )
    }
    if (status === 409) {
      return new InputChangedError(
        `the input of job ${t.jobId} (${this.opts.name}) is gone or changed on node ${t.origin} since it was queued. Queue it again.`,
      )
    }
    return new TransferError(`node ${t.origin} answered HTTP ${status} to the input of job ${t.jobId}`)
  }

  /** One origin request for bytes `start`–`end`, its answer checked against the job's size. */
  private openOnce(start: number, end: number): Promise<IncomingMessage> {
    const t = this.opts.target
    const url = `${t.baseUrl}/jobs/${encodeURIComponent(t.jobId)}/input`
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method: 'GET',
        headers: {
          Authorization: `Bearer ${t.token}`,
          Range: `bytes=${start}-${end}`,
          [STREAM_HEADER]: '1',
        },
      })
      this.stats.originRequests++
      this.originRequests.add(req)
      // A host that vanished answers nothing at all (not even a refusal): give up on this attempt after the idle time.
      const idleMs = this.opts.idleTimeoutMs ?? 30_000
      const noAnswer = setTimeout(() => req.destroy(new Error(`no answer for ${idleMs} ms`)), idleMs)
      req.once('close', () => {
        clearTimeout(noAnswer)
        this.originRequests.delete(req)
      })
      req.on('error', reject)
      req.on('response', (res) => {
        clearTimeout(noAnswer)
        const fail = (err: Error): void => {
          res.resume()
          req.destroy()
          reject(err)
        }
        if (res.statusCode !== 206 && res.statusCode !== 200) {
          fail(new OriginStatus(res.statusCode ?? 0))
          return
        }
        const want = end - start + 1
        const length = Number(res.headers['content-length'])
        if (res.statusCode === 200) {
          // A whole-file answer (an origin that ignores Range): only right when the whole file was asked for.
          if (start !== 0 || length !== this.opts.size) {
            fail(new TransferError(`node ${t.origin} sent ${length} bytes of a ${this.opts.size}-byte input`))
            return
          }
        } else {
          const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))
          if (!m || Number(m[3]) !== this.opts.size) {
            // The file the origin serves is not the size the job was queued with.
            fail(this.describe(409))
            return
          }
          if (Number(m[1]) !== start || Number(m[2]) !== end || length !== want) {
            fail(new TransferError(`node ${t.origin} sent an unexpected range for job ${t.jobId}`))
            return
          }
        }
        // Errors of a held or finished answer are seen by pump() (or by nobody): never an uncaught 'error'.
        res.on('error', () => undefined)
        resolve(res)
      })
      req.end()
    })
  }

  /** {@link openOnce} with the retry policy: a refusal ends at once, dropped connections are retried. */
  private async openWithRetries(start: number, end: number, failures = 0): Promise<IncomingMessage> {
    const maxFailures = this.opts.maxFailures ?? 5
    let delay = (this.opts.retryDelayMs ?? 250) * 2 ** Math.max(0, failures - 1)
    for (let n = failures; ;) {
      this.throwIfFailed()
      try {
        return await this.openOnce(start, end)
      } catch (err) {
        // Failed meanwhile (cancelled, or another request gave up): that reason wins.
        this.throwIfFailed()
        if (err instanceof OriginStatus && (err.status === 403 || err.status === 409))
          throw this.describe(err.status)
        // A checked answer that is wrong (another size, a bad range) is final: asking again gets the same.
        if (err instanceof TransferError || err instanceof InputChangedError) throw err
        if (++n >= maxFailures) throw this.giveUp(err)
        await this.sleep(delay)
        delay = Math.min(delay * 2, 5000)
      }
    }
  }

  private throwIfFailed(): void {
    if (this.failed) throw this.failed
  }

  private giveUp(err: unknown): Error {
    const t = this.opts.target
    if (err instanceof OriginStatus) {
      return new TransferError(`streaming the input of job ${t.jobId} failed: ${err.message}`, { cause: err })
    }
    if (isConnectionError(err) || /no (data|answer) for|aborted|socket hang up/i.test(errorMessage(err))) {
      return new OriginUnavailableError(
        `node ${t.origin} does not answer (${errorMessage(err)}); the job waits for it`,
        t.origin,
      )
    }
    return new TransferError(`streaming the input of job ${t.jobId} failed: ${errorMessage(err)}`, {
      cause: err,
    })
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref())
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++
    // The origin's first answer serves ffmpeg's first request when that asks for the whole file; else it goes.
    let early = this.early
    this.early = undefined
    if (req.url !== this.inputUrlPath || (req.method !== 'GET' && req.method !== 'HEAD') || this.failed) {
      early?.then((r) => r.destroy()).catch(() => undefined)
      res.writeHead(this.failed ? 502 : 404, { 'Content-Length': 0, Connection: 'close' }).end()
      return
    }
    const size = this.opts.size
    const range = requestedRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, size)
    if (range === 'bad') {
      early?.then((r) => r.destroy()).catch(() => undefined)
      res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': 0 }).end()
      return
    }
    const start = range?.start ?? 0
    const end = range?.end ?? size - 1
    if (early && (start !== 0 || end !== size - 1 || req.method !== 'GET')) {
      early.then((r) => r.destroy()).catch(() => undefined)
      early = undefined
    }
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Content-Length': end - start + 1,
      'Accept-Ranges': 'bytes',
    }
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`
    if (req.method === 'HEAD') {
      res.writeHead(range ? 206 : 200, headers).end()
      return
    }
    // ffmpeg closing this connection (a seek, or the end) stops the origin's transfer for it.
    let gone = false
    let current: IncomingMessage | undefined
    res.once('close', () => {
      gone = true
      current?.destroy()
    })
    let at = start
    let failures = 0
    let first = true
    while (at <= end && !gone) {
      let origin: IncomingMessage
      const held = early
      early = undefined
      try {
        origin = held ? await held : await this.openWithRetries(at, end, failures)
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)))
        throw err
      }
      if (first) {
        res.writeHead(range ? 206 : 200, headers)
        first = false
      }
      if (gone) {
        origin.destroy()
        return
      }
      current = origin
      const before = at
      const err = await this.pump(origin, res, (n) => {
        at += n
        this.stats.bytes += n
      })
      current = undefined
      if (gone || this.failed) return
      if (err === null) {
        if (at > end) break
        // The origin ended its answer early without an error: treat as a drop.
      }
      failures = at > before ? 1 : failures + 1
      if (failures >= (this.opts.maxFailures ?? 5)) {
        const e = this.giveUp(err ?? new Error('connection closed before the end of the range'))
        this.fail(e)
        throw e
      }
      this.stats.resumes++
      this.log.info(
        { at, err: err ? errorMessage(err) : 'short answer' },
        'origin connection dropped; resuming',
      )
      await this.sleep(Math.min((this.opts.retryDelayMs ?? 250) * 2 ** (failures - 1), 5000))
    }
    if (!gone) res.end()
  }

  /**
   * Copies an origin answer into ffmpeg's response (without ending it), with backpressure and an idle timeout.
   * Resolves with null at the end of the answer, or the error that cut it.
   */
  private pump(
    origin: IncomingMessage,
    res: ServerResponse,
    count: (n: number) => void,
  ): Promise<Error | null> {
    const idleMs = this.opts.idleTimeoutMs ?? 30_000
    return new Promise((resolve) => {
      let settled = false
      let last = Date.now()
      /** Waiting for ffmpeg (backpressure): then a silent origin is not idle. */
      let waiting = false
      // One timer for the whole answer (not one per chunk): checks how long ago the origin last sent something.
      const timer = setInterval(
        () => {
          if (!waiting && Date.now() - last > idleMs) done(new Error(`no data for ${idleMs} ms`))
        },
        Math.max(50, Math.min(1000, idleMs / 4)),
      )
      const done = (err: Error | null): void => {
        if (settled) return
        settled = true
        clearInterval(timer)
        origin.off('data', onData)
        res.off('drain', onDrain)
        if (err) origin.destroy()
        resolve(err)
      }
      const onData = (chunk: Buffer): void => {
        last = Date.now()
        count(chunk.length)
        if (!res.write(chunk)) {
          waiting = true
          origin.pause()
        }
      }
      const onDrain = (): void => {
        waiting = false
        last = Date.now()
        origin.resume()
      }
      origin.on('data', onData)
      res.on('drain', onDrain)
      const ended = (): void =>
        done(origin.complete ? null : new Error('connection closed before the end of the file'))
      origin.once('end', ended)
      origin.once('close', ended)
      origin.once('error', (e: Error) => done(e))
      origin.once('aborted', () => done(new Error('aborted')))
      origin.resume()
    })
  }
}

/** Starts a relay for one job (see the module comment). */
export async function startRelay(opts: RelayOptions): Promise<InputRelay> {
  const relay = new InputRelay(opts)
  await relay.start()
  return relay
}
