/**
 * The file service of an origin node: an HTTP server that lets the worker of one of this node's queued jobs read
 * that job's input and hand back its output — and nothing else.
 *
 * - `GET /jobs/:id/input` — the input file, with `Range` (resume), `X-Checksum-SHA256` of the whole file.
 * - `PUT /jobs/:id/output` — the output, streamed to a hidden partial file in the job's output folder; with
 *   `Content-Range: bytes a-b/total` it appends from exactly the offset held (else 409). When the last byte is in,
 *   the whole file is checked against `X-Checksum-SHA256` and its size, then committed without overwriting anything
 *   (" (1)" names, never over the input). Idempotent per job: a second upload of a job already delivered returns
 *   the first output. A partial cut off by a dropped connection is kept so the upload can resume.
 * - `HEAD /jobs/:id/output` — `Upload-Offset`: how many bytes of this job's output it holds (0 when none, or when
 *   the partial held is of another file than the `X-Checksum-SHA256` sent).
 *
 * Every request needs `Authorization: Bearer <token>` where the token is the job's HMAC (see tokens.ts), recomputed
 * over the job's current payload. Anything else — no or a wrong token, another job's token, an unknown or finished
 * job, a job of another origin, an invalid payload, a path that is not exactly one of the two above (traversal,
 * encoded dots, query strings) — gets 403 with an empty body.
 *
 * Binds 127.0.0.1 by default; see docs/pooling.md for exposing it on a LAN.
 */
import { createHash } from 'node:crypto'
import { constants as fsConstants, createReadStream } from 'node:fs'
import { lstat, open, readdir, rm, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { hostname } from 'node:os'
import { extname, join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type Redis from 'ioredis'
import { type JobData, JobDataSchema } from '../../../shared/spec'
import { errorMessage } from '../errors'
import { commitOutput, isTempOf, planOutput, safeJobId, samePath, tempPathFor } from '../ffmpeg/output'
import { logger as rootLogger, type Logger } from '../logger'
import { keepWhatArrives } from './body'
import { JOB_ID_PATTERN, jobToken, tokensEqual } from './tokens'

/** States in which a job's files may be transferred. */
const SERVABLE_STATES = new Set(['active', 'waiting', 'delayed', 'paused'])

/** What the file service needs to know about a job (from the queue). */
export interface JobLookup {
  /** Bull state name (`active`, `waiting`, `completed`, …). */
  state: string
  /** The raw payload: validated here. */
  data: unknown
}

/** What an accepted upload became. */
export interface DeliveredOutput {
  path: string
  size: number
  sha256: string
  /** True when this job had already been delivered and the earlier output was kept. */
  duplicate: boolean
}

export interface FileServiceOptions {
  nodeId: string
  secret: Buffer
  /** The job and its state by id, or null when there is no such job. */
  lookupJob(id: string): Promise<JobLookup | null>
  /** Where delivered outputs are remembered (idempotent uploads). */
  redis: Redis
  keyPrefix: string
  /** Bind address; default 127.0.0.1. */
  bind?: string
  /** Port; default 0 (any free one). */
  port?: number
  /** Host other nodes use; default the bind address (this host's name when binding every interface). */
  advertiseHost?: string
  /** Idle time after which a silent connection is dropped. */
  idleTimeoutMs?: number
  /**
   * An upload of a job that has received nothing for this long gives way to a new upload of the same job (a
   * connection that died without a word: the worker's retry would otherwise wait for the idle timeout). Keep it
   * below the workers' idle timeout. Default 10 s.
   */
  uploadStallMs?: number
  /** Called when an output has been committed (not for duplicates). */
  onDelivered?(jobId: string, output: DeliveredOutput): void
  logger?: Logger
}

/** Checksum header of both directions. */
export const CHECKSUM_HEADER = 'x-checksum-sha256'

/** Header by which a worker asks for the input without its whole-file checksum (it streams it: see relay.ts). */
export const STREAM_HEADER = 'x-bullpen-stream'

/** How many bytes of an output the origin holds (answer to HEAD, and to a PUT at the wrong offset). */
export const OFFSET_HEADER = 'upload-offset'

/** Read buffer of served inputs (the default 64 KiB makes many small reads and writes of a large file). */
const READ_BUFFER_BYTES = 1024 * 1024

const ROUTE = /^\/jobs\/([A-Za-z0-9_:-]{1,128})\/(input|output)$/

/** sha256 (hex) of a whole file. */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256')
  await pipeline(
    createReadStream(file, { highWaterMark: READ_BUFFER_BYTES }),
    h,
    ...(signal ? [{ signal }] : []),
  )
  return h.digest('hex')
}

/** Parses a single `bytes=a-b` / `bytes=a-` range against a size; undefined when absent, null when unsatisfiable. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | null | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d{1,16})-(\d{0,16})$/.exec(header.trim())
  if (!m) return null
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) return null
  return { start, end }
}

/** Parses `Content-Range: bytes a-b/total` of an upload of `length` bytes; null when malformed or inconsistent. */
export function parseContentRange(
  header: string,
  length: number,
): { start: number; end: number; total: number } | null {
  const m = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16})$/.exec(header.trim())
  if (!m) return null
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (!Number.isSafeInteger(total) || end < start || end >= total || end - start + 1 !== length) return null
  return { start, end, total }
}

/** The marker of a job's upload partials in a file name. */
function partialMarker(jobId: string): string {
  return `.bullpen-${safeJobId(jobId)}.part-`
}

/**
 * The partial file of an upload: the job's temp name (hidden, beside the destination) with the first 16 hex digits
 * of the whole file's SHA-256 and its size, so that only the same file resumes it:
 * `.clip.bullpen-<job>.part-<sha16>-<size>.mp4`.
 */
function partialPathFor(dest: string, jobId: string, sum: string, total: number): string {
  const temp = tempPathFor(dest, jobId)
  const ext = extname(dest)
  return `${temp.slice(0, temp.length - ext.length)}-${sum.slice(0, 16)}-${total}${ext}`
}

interface HeldPartial {
  path: string
  /** First 16 hex digits of the SHA-256 of the whole file it is part of. */
  sum16: string
  total: number
  /** Bytes held. */
  size: number
}

/** The upload partial of a job in `dir` (a regular file, not a link), if any. */
async function findPartial(dir: string, jobId: string): Promise<HeldPartial | null> {
  const marker = partialMarker(jobId)
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const at = name.indexOf(marker)
    if (!name.startsWith('.') || at < 0) continue
    const m = /^([0-9a-f]{16})-(\d{1,16})(\.[^./]*)?$/.exec(name.slice(at + marker.length))
    if (!m) continue
    const path = join(dir, name)
    const st = await lstat(path).catch(() => null)
    if (!st?.isFile()) continue
    return { path, sum16: m[1] as string, total: Number(m[2]), size: st.size }
  }
  return null
}

/** Removes the upload partials of a job in `dir` (a job that completed, failed or was removed resumes nothing). */
export async function removeUploadPartials(dir: string, jobId: string, inputPath: string): Promise<number> {
  const marker = partialMarker(jobId)
  let n = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.includes(marker) && isTempOf(name, inputPath, jobId)) {
      await rm(join(dir, name), { force: true })
      n++
    }
  }
  return n
}

/** The file service of one node. */
export class FileService {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private readonly checksums = new Map<string, Promise<string>>()
  private readonly knownChecksums = new Map<string, string>()
  /** Uploads in progress: when the last bytes came, how to stop one, and when it is over. */
  private readonly uploading = new Map<
    string,
    { lastData: number; receiving: boolean; stop(): void; done: Promise<void> }
  >()
  /** Output folders of the jobs that uploaded here since start (to drop their partials when they end). */
  private readonly uploadDirs = new Map<string, { dir: string; inputPath: string }>()
  private readonly log: Logger
  private boundPort = 0

  constructor(private readonly opts: FileServiceOptions) {
    this.log = (opts.logger ?? rootLogger).child({ module: 'file-service' })
  }

  /** Starts listening; resolves with the URL other nodes use. */
  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err) }, 'file service request failed')
        if (!res.headersSent) deny(res, 500)
        else res.destroy()
      })
    })
    // Large files over slow links: no overall request deadline, but drop connections that go silent.
    server.requestTimeout = 0
    server.headersTimeout = 30_000
    server.setTimeout(this.opts.idleTimeoutMs ?? 120_000, (s) => s.destroy())
    server.on('connection', (s) => {
      this.sockets.add(s)
      s.once('close', () => this.sockets.delete(s))
    })
    const bind = this.opts.bind ?? '127.0.0.1'
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port ?? 0, bind, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.server = server
    this.boundPort = (server.address() as AddressInfo).port
    this.log.info({ bind, port: this.boundPort, url: this.url }, 'file service listening')
    return this.url
  }

  get port(): number {
    return this.boundPort
  }

  /** The base URL other nodes use to reach this service. */
  get url(): string {
    const bind = this.opts.bind ?? '127.0.0.1'
    let host = this.opts.advertiseHost || (bind === '0.0.0.0' || bind === '::' ? hostname() : bind)
    if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`
    return `http://${host}:${this.boundPort}`
  }

  /** Stops listening and drops open connections (uploads in progress clean up their temp files). */
  async close(): Promise<void> {
    const s = this.server
    if (!s) return
    this.server = undefined
    const closed = new Promise<void>((resolve) => s.close(() => resolve()))
    for (const sock of this.sockets) sock.destroy()
    await closed
  }

  /**
   * Drops what this node holds of a job's interrupted upload: call when the job completes, fails or is removed.
   * Knows the jobs that uploaded here since this service started (a partial older than that is removed when its
   * job runs again: a fresh upload, or the run's own clean-up, removes it).
   */
  async discardUpload(jobId: string): Promise<void> {
    const held = this.uploadDirs.get(jobId)
    if (held === undefined || this.uploading.has(jobId)) return
    this.uploadDirs.delete(jobId)
    const { dir, inputPath } = held
    const n = await removeUploadPartials(dir, jobId, inputPath)
    if (n > 0) this.log.info({ jobId, dir }, 'interrupted upload of a finished job removed')
  }

  /** Key of the record of a delivered output. */
  outputKey(jobId: string): string {
    return `${this.opts.keyPrefix}:pool:output:${jobId}`
  }

  private async authorize(
    req: IncomingMessage,
  ): Promise<{ jobId: string; kind: string; data: JobData } | null> {
    const m = ROUTE.exec(req.url ?? '')
    if (!m) return null
    const [, jobId, kind] = m as unknown as [string, string, string]
    if (!JOB_ID_PATTERN.test(jobId)) return null
    if (kind === 'input' ? req.method !== 'GET' : req.method !== 'PUT' && req.method !== 'HEAD') return null
    const auth = req.headers.authorization
    const bearer = typeof auth === 'string' ? /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(auth) : null
    if (!bearer?.[1]) return null
    const job = await this.opts.lookupJob(jobId)
    if (!job || !SERVABLE_STATES.has(job.state)) return null
    const parsed = JobDataSchema.safeParse(job.data)
    if (!parsed.success || parsed.data.origin !== this.opts.nodeId) return null
    if (!tokensEqual(bearer[1], jobToken(this.opts.secret, jobId, parsed.data))) return null
    return { jobId, kind, data: parsed.data }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ok = await this.authorize(req)
    if (!ok) {
      this.log.debug({ method: req.method, url: (req.url ?? '').slice(0, 200) }, 'file service: refused')
      deny(res, 403)
      return
    }
    if (ok.kind === 'input') await this.serveInput(req, res, ok.jobId, ok.data)
    else if (req.method === 'HEAD') await this.reportOffset(req, res, ok.jobId, ok.data)
    else await this.receiveOutput(req, res, ok.jobId, ok.data)
  }

  /** The checksum of a file when it is already known (never computed here). */
  private cachedChecksum(file: string, size: number, mtimeMs: number): string | undefined {
    return this.knownChecksums.get(`${file}\0${size}\0${mtimeMs}`)
  }

  private checksumOf(file: string, size: number, mtimeMs: number): Promise<string> {
    const key = `${file}\0${size}\0${mtimeMs}`
    let p = this.checksums.get(key)
    if (!p) {
      p = sha256File(file)
      this.checksums.set(key, p)
      p.then((sum) => this.knownChecksums.set(key, sum)).catch(() => undefined)
      if (this.knownChecksums.size > 1000)
        this.knownChecksums.delete(this.knownChecksums.keys().next().value as string)
      p.catch(() => this.checksums.delete(key))
      // Keep the cache small: inputs of queued jobs only matter while they are queued.
      if (this.checksums.size > 1000) this.checksums.delete(this.checksums.keys().next().value as string)
    }
    return p
  }

  private async serveInput(
    req: IncomingMessage,
    res: ServerResponse,
    jobId: string,
    data: JobData,
  ): Promise<void> {
    const { path, size, mtimeMs } = data.input
    // Open first, then check the open file: what we check is what we send.
    let fh
    try {
      fh = await open(path, 'r')
    } catch {
      deny(res, 409)
      return
    }
    try {
      const st = await fh.stat()
      if (!st.isFile() || st.size !== size || Math.trunc(st.mtimeMs) !== Math.trunc(mtimeMs)) {
        deny(res, 409)
        return
      }
      // A streaming worker (relay.ts) checks sizes per request and the output by ffprobe: it needs no whole-file
      // checksum, and computing one (a full read of the file) would hold up its first byte.
      const streaming = req.headers[STREAM_HEADER] === '1'
      const sum = streaming
        ? this.cachedChecksum(path, size, mtimeMs)
        : await this.checksumOf(path, size, mtimeMs)
      const range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, size)
      if (range === null) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': 0 })
        res.end()
        return
      }
      const start = range?.start ?? 0
      const end = range?.end ?? size - 1
      const headers: Record<string, string | number> = {
        'Content-Type': 'application/octet-stream',
        'Content-Length': end - start + 1,
        'Accept-Ranges': 'bytes',
      }
      if (sum !== undefined) {
        headers[CHECKSUM_HEADER] = sum
        headers['ETag'] = `"${sum}"`
      }
      if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`
      res.writeHead(range ? 206 : 200, headers)
      this.log.debug({ jobId, start, end }, 'serving input')
      const stream = fh.createReadStream({ start, end, autoClose: false, highWaterMark: READ_BUFFER_BYTES })
      await pipeline(stream, res).catch((err: unknown) => {
        this.log.debug({ jobId, err: errorMessage(err) }, 'input transfer interrupted')
      })
    } finally {
      await fh.close().catch(() => undefined)
    }
  }

  /** HEAD: how many bytes of this job's output are held (of the file with the checksum sent, when one is). */
  private async reportOffset(
    req: IncomingMessage,
    res: ServerResponse,
    jobId: string,
    data: JobData,
  ): Promise<void> {
    const sumText = req.headers[CHECKSUM_HEADER]
    const p = await findPartial(data.outputDir, jobId)
    const matches = !p || typeof sumText !== 'string' || sumText.slice(0, 16) === p.sum16
    const offset = p && matches ? Math.min(p.size, p.total) : 0
    res.writeHead(200, { [OFFSET_HEADER]: offset, 'Cache-Control': 'no-store', 'Content-Length': 0 })
    res.end()
  }

  private async receiveOutput(
    req: IncomingMessage,
    res: ServerResponse,
    jobId: string,
    data: JobData,
  ): Promise<void> {
    const lengthText = req.headers['content-length']
    const sumText = req.headers[CHECKSUM_HEADER]
    const rangeText = req.headers['content-range']
    const length = typeof lengthText === 'string' && /^\d{1,16}$/.test(lengthText) ? Number(lengthText) : NaN
    if (
      !Number.isSafeInteger(length) ||
      length < 1 ||
      typeof sumText !== 'string' ||
      !/^[a-f0-9]{64}$/.test(sumText)
    ) {
      deny(res, 400)
      return
    }
    // No Content-Range: the whole file in one request.
    const range =
      typeof rangeText === 'string'
        ? parseContentRange(rangeText, length)
        : { start: 0, end: length - 1, total: length }
    if (!range) {
      deny(res, 400)
      return
    }
    try {
      if (!(await stat(data.outputDir)).isDirectory()) throw new Error('not a folder')
    } catch {
      deny(res, 409)
      return
    }
    const running = this.uploading.get(jobId)
    if (running) {
      const silent = Date.now() - running.lastData
      const stallMs = this.opts.uploadStallMs ?? 10_000
      if (silent < stallMs || !running.receiving) {
        // Another upload of this job is running here; the worker retries later.
        res.writeHead(409, {
          'Retry-After': Math.max(1, Math.ceil((stallMs - silent) / 1000)),
          'Content-Length': 0,
          Connection: 'close',
        })
        res.end()
        return
      }
      this.log.info({ jobId, silentMs: silent }, 'a stalled upload gives way to a new one')
      running.stop()
      await running.done
      if (this.uploading.has(jobId)) {
        deny(res, 409)
        return
      }
    }
    let finished = (): void => undefined
    const entry = {
      lastData: Date.now(),
      receiving: true,
      stop: () => req.destroy(new Error('superseded by a new upload')),
      done: new Promise<void>((r) => (finished = r)),
    }
    this.uploading.set(jobId, entry)
    this.uploadDirs.set(jobId, { dir: data.outputDir, inputPath: data.input.path })
    let temp: string | undefined
    try {
      let flags: string | number
      if (range.start === 0) {
        // A fresh start: whatever an earlier attempt left is of no use.
        await removeStaleTemps(data.outputDir, jobId, data.input.path)
        const dest = await planOutput(data.input.path, data.outputDir, data.spec.format)
        temp = partialPathFor(dest, jobId, sumText, range.total)
        flags = 'wx'
      } else {
        const p = await findPartial(data.outputDir, jobId)
        const held = p && p.sum16 === sumText.slice(0, 16) && p.total === range.total ? p.size : 0
        if (!p || held !== range.start) {
          this.log.info({ jobId, offset: range.start, held }, 'output upload resumed at the wrong offset')
          res.writeHead(409, { [OFFSET_HEADER]: held, 'Content-Length': 0, Connection: 'close' })
          res.end()
          return
        }
        temp = p.path
        // Append to what is there, and never through a link someone put in its place.
        flags = fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW
      }
      let received = 0
      const hash = createHash('sha256')
      const limit = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          received += chunk.length
          entry.lastData = Date.now()
          hash.update(chunk)
          cb(received > length ? new Error('more bytes than announced') : null, chunk)
        },
      })
      const out = (await open(temp, flags, 0o644)).createWriteStream()
      try {
        await pipeline(keepWhatArrives(req), limit, out)
        if (received !== length) throw new Error('fewer bytes than announced')
      } catch (err) {
        entry.receiving = false
        if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()))
        this.log.info({ jobId, err: errorMessage(err) }, 'output upload interrupted; partial kept to resume')
        temp = undefined
        res.destroy()
        return
      }
      entry.receiving = false
      const held = (await stat(temp)).size
      if (held < range.total) {
        // A piece of the file: acknowledged, more to come.
        res.writeHead(204, { [OFFSET_HEADER]: held })
        res.end()
        temp = undefined
        return
      }
      // Sent in one go, the streamed hash is the file's; resumed, the whole file is read again.
      const sum = held !== range.total ? '' : range.start === 0 ? hash.digest('hex') : await sha256File(temp)
      if (sum !== sumText) {
        await rm(temp, { force: true })
        temp = undefined
        this.log.warn({ jobId, held, total: range.total }, 'output upload did not match its checksum or size')
        deny(res, 422)
        return
      }
      const earlier = await this.earlierOutput(jobId)
      if (earlier) {
        await rm(temp, { force: true })
        temp = undefined
        sendJson(res, 200, { ...earlier, duplicate: true })
        return
      }
      // Planned again: names in the folder may have changed while the upload was interrupted.
      const dest = await planOutput(data.input.path, data.outputDir, data.spec.format)
      const finalPath = await commitOutput(temp, dest)
      temp = undefined
      const delivered: DeliveredOutput = { path: finalPath, size: held, sha256: sum, duplicate: false }
      await this.opts.redis.set(
        this.outputKey(jobId),
        JSON.stringify({ path: finalPath, size: held, sha256: sum }),
        'EX',
        30 * 24 * 3600,
      )
      this.uploadDirs.delete(jobId)
      this.log.info({ jobId, path: finalPath, resumed: range.start > 0 }, 'output delivered')
      this.opts.onDelivered?.(jobId, delivered)
      sendJson(res, 200, delivered)
    } finally {
      if (temp) await rm(temp, { force: true }).catch(() => undefined)
      this.uploading.delete(jobId)
      finished()
    }
  }

  /** The output already delivered for this job, when it is still there with the same size. */
  private async earlierOutput(jobId: string): Promise<Omit<DeliveredOutput, 'duplicate'> | null> {
    const raw = await this.opts.redis.get(this.outputKey(jobId))
    if (!raw) return null
    try {
      const rec = JSON.parse(raw) as { path?: unknown; size?: unknown; sha256?: unknown }
      if (typeof rec.path !== 'string' || typeof rec.size !== 'number' || typeof rec.sha256 !== 'string')
        return null
      const st = await stat(rec.path)
      return st.isFile() && st.size === rec.size
        ? { path: rec.path, size: rec.size, sha256: rec.sha256 }
        : null
    } catch {
      return null
    }
  }
}

/**
 * Removes the temp files an earlier, interrupted run or delivery of this job (of this input) left in `dir`; never
 * the input itself, nor a file of another job or input (see isTempOf).
 */
export async function removeStaleTemps(dir: string, jobId: string, inputPath: string): Promise<number> {
  let n = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (isTempOf(name, inputPath, jobId) && !samePath(join(dir, name), inputPath)) {
      await rm(join(dir, name), { force: true })
      n++
    }
  }
  return n
}

function deny(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': 0, Connection: 'close' })
  res.end()
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}
