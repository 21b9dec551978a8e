/**
 * The origin's file service and the worker's transfer client, over real HTTP on loopback, with real files and
 * real Redis: only the holder of a job's token gets that job's input, nothing else leaks, uploads are verified and
 * committed without overwriting, and no temp file survives any failure.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer, request, type Server } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobData } from '../../src/shared/spec'
import { FileService, STREAM_HEADER, type JobLookup } from '../../src/main/core/pool/fileService'
import { startRelay } from '../../src/main/core/pool/relay'
import { isRelayUrl } from '../../src/main/core/ffmpeg/run'
import { jobToken, loadOrCreateSecret } from '../../src/main/core/pool/tokens'
import { fetchInput, uploadOutput } from '../../src/main/core/pool/transfer'
import {
  InputChangedError,
  OriginUnavailableError,
  TransferRefusedError,
} from '../../src/main/core/pool/errors'
import { TEST_REDIS_URL, deleteKeys, freePort, uniquePrefix } from '../helpers/redis'

const ORIGIN = 'origin-node-1'
const prefix = uniquePrefix('fileservice')
const keyPrefix = `${prefix}:transcode`
let dir: string
let inputDir: string
let outDir: string
let workDir: string
let redis: Redis
let service: FileService
let secret: Buffer
const jobs = new Map<string, JobLookup>()
let input: { path: string; size: number; mtimeMs: number; sha256: string }

function jobData(patch: Partial<JobData> = {}): JobData {
  return {
    v: 1,
    input: { path: input.path, size: input.size, mtimeMs: input.mtimeMs },
    outputDir: outDir,
    spec: { format: 'mp4', subtitles: 'keep' },
    priority: 'normal',
    origin: ORIGIN,
    summary: { durationSec: 1, hasVideo: true, hasAudio: false, width: 16, height: 16 },
    dedupeKey: 'a'.repeat(32),
    createdAt: Date.now(),
    ...patch,
  }
}

function addJob(id: string, state = 'active', patch: Partial<JobData> = {}): { id: string; token: string } {
  const data = jobData(patch)
  jobs.set(id, { state, data })
  return { id, token: jobToken(secret, id, data) }
}

/** Sends a raw HTTP request (exact bytes, no URL normalisation); resolves with status and body length. */
function raw(port: number, text: string): Promise<{ status: number; bodyBytes: number; head: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(Buffer.from(text, 'latin1')))
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', reject)
    s.on('close', () => {
      const all = Buffer.concat(chunks).toString('latin1')
      const [head = '', body = ''] = all.split('\r\n\r\n')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
      resolve({ status, bodyBytes: Buffer.byteLength(body, 'latin1'), head })
    })
  })
}

async function filesIn(d: string): Promise<string[]> {
  return (await readdir(d)).sort()
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bullpen-fs-'))
  inputDir = join(dir, 'in')
  outDir = join(dir, 'out')
  workDir = join(dir, 'work')
  await mkdir(inputDir)
  await mkdir(outDir)
  await mkdir(workDir)
  const bytes = randomBytes(3 * 1024 * 1024 + 123)
  const p = join(inputDir, 'clip.mov')
  await writeFile(p, bytes)
  const st = await stat(p)
  input = {
    path: p,
    size: st.size,
    mtimeMs: st.mtimeMs,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  }
  await writeFile(join(dir, 'secret-file.txt'), 'top secret')
  redis = new Redis(TEST_REDIS_URL)
  secret = loadOrCreateSecret(join(dir, 'data'))
  service = new FileService({
    nodeId: ORIGIN,
    secret,
    redis,
    keyPrefix,
    lookupJob: (id) => Promise.resolve(jobs.get(id) ?? null),
    // Short, so that the tests of stalled uploads need not wait the default 10 s.
    uploadStallMs: 200,
  })
  await service.start()
})

afterAll(async () => {
  await service.close()
  await deleteKeys(TEST_REDIS_URL, prefix)
  redis.disconnect()
  await rm(dir, { recursive: true, force: true })
})

describe('file service: who gets what', () => {
  it('serves the input to the holder of the token, with checksum and ranges', async () => {
    const { id, token } = addJob('101')
    const dest = join(workDir, 'fetched-101.mov')
    const seen: number[] = []
    const r = await fetchInput({ baseUrl: service.url, jobId: id, token, origin: ORIGIN }, dest, input.size, {
      onProgress: (done) => seen.push(done),
    })
    expect(r.sha256).toBe(input.sha256)
    expect(
      createHash('sha256')
        .update(await readFile(dest))
        .digest('hex'),
    ).toBe(input.sha256)
    expect(seen.at(-1)).toBe(input.size)
    expect(await filesIn(workDir)).toEqual(['fetched-101.mov'])

    const port = service.port
    const ranged = await raw(
      port,
      `GET /jobs/${id}/input HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nRange: bytes=10-19\r\nConnection: close\r\n\r\n`,
    )
    expect(ranged.status).toBe(206)
    expect(ranged.bodyBytes).toBe(10)
    expect(ranged.head.toLowerCase()).toContain(`x-checksum-sha256: ${input.sha256}`)
    expect(ranged.head).toContain(`Content-Range: bytes 10-19/${input.size}`)
  })

  it('answers 403 with no bytes to everything else', async () => {
    const { id, token } = addJob('201')
    const other = addJob('202')
    const foreign = addJob('203', 'active', { origin: 'someone-else' })
    const finished = addJob('204', 'completed')
    const tampered = addJob('205')
    // The payload in Redis is changed after the origin minted the token: the input now points elsewhere.
    jobs.set('205', {
      state: 'active',
      data: jobData({ input: { ...jobData().input, path: join(dir, 'secret-file.txt') } }),
    })
    jobs.set('206', { state: 'active', data: { v: 1, origin: ORIGIN, input: { path: '/etc/passwd' } } })
    const forged = randomBytes(32).toString('base64url')
    const bearer = (t: string) => `Authorization: Bearer ${t}\r\n`
    const cases: Array<[string, string]> = [
      ['missing token', `GET /jobs/${id}/input HTTP/1.1\r\nHost: x\r\n`],
      ['forged token', `GET /jobs/${id}/input HTTP/1.1\r\nHost: x\r\n${bearer(forged)}`],
      ['truncated token', `GET /jobs/${id}/input HTTP/1.1\r\nHost: x\r\n${bearer(token.slice(0, 20))}`],
      ['token of another job', `GET /jobs/${id}/input HTTP/1.1\r\nHost: x\r\n${bearer(other.token)}`],
      ['basic auth', `GET /jobs/${id}/input HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${token}\r\n`],
      ['job of another origin', `GET /jobs/203/input HTTP/1.1\r\nHost: x\r\n${bearer(foreign.token)}`],
      ['job no longer queued', `GET /jobs/204/input HTTP/1.1\r\nHost: x\r\n${bearer(finished.token)}`],
      ['payload changed in Redis', `GET /jobs/205/input HTTP/1.1\r\nHost: x\r\n${bearer(tampered.token)}`],
      ['invalid payload', `GET /jobs/206/input HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['unknown job', `GET /jobs/999/input HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['traversal', `GET /jobs/../../etc/passwd HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['traversal after id', `GET /jobs/${id}/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['encoded dots', `GET /jobs/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['encoded slash', `GET /jobs/${id}%2finput HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['query string', `GET /jobs/${id}/input?path=/etc/passwd HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['absolute URL', `GET http://x/jobs/${id}/input HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['other route', `GET / HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['wrong method on input', `DELETE /jobs/${id}/input HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      ['GET of output', `GET /jobs/${id}/output HTTP/1.1\r\nHost: x\r\n${bearer(token)}`],
      [
        'PUT with forged token',
        `PUT /jobs/${id}/output HTTP/1.1\r\nHost: x\r\n${bearer(forged)}Content-Length: 3\r\n`,
      ],
    ]
    for (const [what, head] of cases) {
      const r = await raw(service.port, `${head}Connection: close\r\n\r\n`)
      expect({ what, status: r.status, bodyBytes: r.bodyBytes }).toEqual({ what, status: 403, bodyBytes: 0 })
    }
    // Through the client: a clear, final error and no temp file.
    const dest = join(workDir, 'refused.mov')
    await expect(
      fetchInput({ baseUrl: service.url, jobId: id, token: forged, origin: ORIGIN }, dest, input.size),
    ).rejects.toBeInstanceOf(TransferRefusedError)
    expect((await filesIn(workDir)).filter((f) => f.startsWith('refused'))).toEqual([])
    expect(await filesIn(outDir)).toEqual([])
  })

  it('says the input changed (409) when the file at the origin is not what was queued', async () => {
    const { id, token } = addJob('301', 'active', { input: { ...jobData().input, size: input.size + 1 } })
    await expect(
      fetchInput(
        { baseUrl: service.url, jobId: id, token, origin: ORIGIN },
        join(workDir, 'changed.mov'),
        input.size,
      ),
    ).rejects.toBeInstanceOf(InputChangedError)
    expect((await filesIn(workDir)).filter((f) => f.startsWith('changed'))).toEqual([])
  })
})

describe('streaming workers (input relay)', () => {
  /** A fresh input of its own (so no checksum of it is cached), queued as job `id`. */
  async function streamedInput(id: string, bytes = 2 * 1024 * 1024 + 11) {
    const p = join(inputDir, `streamed-${id}.mov`)
    const content = randomBytes(bytes)
    await writeFile(p, content)
    const st = await stat(p)
    const job = addJob(id, 'active', { input: { path: p, size: st.size, mtimeMs: st.mtimeMs } })
    return { ...job, path: p, content, size: st.size, mtimeMs: st.mtimeMs }
  }

  function get(
    id: string,
    token: string,
    range: string,
  ): Promise<{ status: number; bodyBytes: number; head: string }> {
    return raw(
      service.port,
      `GET /jobs/${id}/input HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${STREAM_HEADER}: 1\r\n` +
        `Range: ${range}\r\nConnection: close\r\n\r\n`,
    )
  }

  it('serves ranges without a whole-file checksum, and refuses every request (409) once the file changed', async () => {
    const f = await streamedInput('701')
    const first = await get(f.id, f.token, 'bytes=100-199')
    expect(first.status).toBe(206)
    expect(first.bodyBytes).toBe(100)
    expect(first.head).toContain(`Content-Range: bytes 100-199/${f.size}`)
    expect(first.head.toLowerCase()).not.toContain('x-checksum-sha256')
    // Same size, another mtime (rewritten in place): refused, whatever the range.
    await utimes(f.path, new Date(), new Date(f.mtimeMs + 5000))
    for (const range of ['bytes=0-', 'bytes=100-199', `bytes=${f.size - 10}-`]) {
      expect(await get(f.id, f.token, range), range).toMatchObject({ status: 409, bodyBytes: 0 })
    }
    // Back to the queued mtime but longer: refused too.
    await writeFile(f.path, Buffer.concat([f.content, Buffer.from('x')]))
    await utimes(f.path, new Date(), new Date(f.mtimeMs))
    expect(await get(f.id, f.token, 'bytes=0-')).toMatchObject({ status: 409, bodyBytes: 0 })
  })

  it('relays the input to a local reader, resuming cut origin connections from where they were', async () => {
    const f = await streamedInput('702', 3 * 1024 * 1024 + 5)
    const proxy = await cuttingDownloadProxy(2, 700 * 1024)
    const relay = await startRelay({
      target: { baseUrl: proxy.url, jobId: f.id, token: f.token, origin: ORIGIN },
      size: f.size,
      name: 'streamed 702.mov',
      retryDelayMs: 10,
    })
    try {
      expect(isRelayUrl(relay.url)).toBe(true)
      expect(relay.url).toMatch(/\/streamed%20702\.mov$/)
      const whole = await httpGet(relay.url)
      expect(whole.status).toBe(200)
      expect(whole.body.equals(f.content)).toBe(true)
      const part = await httpGet(relay.url, 'bytes=1000-1999')
      expect(part.status).toBe(206)
      expect(part.body.equals(f.content.subarray(1000, 2000))).toBe(true)
      expect(relay.stats.resumes).toBe(2)
      // Each resume asked the origin for the rest from the byte reached, not from 0.
      const starts = proxy.ranges.map((r) => Number(/^bytes=(\d+)-/.exec(r ?? '')?.[1]))
      expect(starts[0]).toBe(0)
      expect(starts[1]).toBeGreaterThan(0)
      expect(starts[2]).toBeGreaterThan(starts[1] as number)
      // Anything but the relay's own path gets nothing.
      const wrong = new URL(relay.url)
      wrong.pathname = `/${'0'.repeat(32)}/x.mov`
      expect((await httpGet(wrong.toString())).status).toBe(404)
    } finally {
      await relay.close()
      await proxy.close()
    }
    expect(relay.failure).toBeNull()
    await expect(httpGet(relay.url)).rejects.toThrow(/ECONNREFUSED/)
  })

  it('refuses to start when the origin refuses the job, or serves another size than the job was queued with', async () => {
    const f = await streamedInput('703')
    const target = { baseUrl: service.url, jobId: f.id, token: 'A'.repeat(43), origin: ORIGIN }
    await expect(startRelay({ target, size: f.size, name: 'a.mov' })).rejects.toBeInstanceOf(
      TransferRefusedError,
    )
    await expect(
      startRelay({ target: { ...target, token: f.token }, size: f.size + 1, name: 'a.mov' }),
    ).rejects.toBeInstanceOf(InputChangedError)
  })
})

describe('streaming workers: an origin that says nothing', () => {
  it('gives up after the idle time per attempt: the job waits for the origin (OriginUnavailableError)', async () => {
    // Accepts connections and never answers (a machine that went away without a word looks like this, or worse).
    const held: Socket[] = []
    const silent = createNetServer((sock) => held.push(sock))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const started = Date.now()
    try {
      const err = await startRelay({
        target: {
          baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
          jobId: '704',
          token: 'A'.repeat(43),
          origin: ORIGIN,
        },
        size: 1000,
        name: 'a.mov',
        idleTimeoutMs: 200,
        maxFailures: 2,
        retryDelayMs: 10,
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(OriginUnavailableError)
      expect((err as Error).message).toMatch(/does not answer \(no answer for 200 ms\)/)
      expect(Date.now() - started).toBeLessThan(5000)
    } finally {
      for (const sock of held) sock.destroy()
      await new Promise<void>((r) => silent.close(() => r()))
    }
  })
})

/** GET `url` (optionally a range); the status and the whole body. */
function httpGet(url: string, range?: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: range ? { Range: range } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * A proxy in front of the file service that cuts the first `cuts` input answers after `after` body bytes, and
 * records the `Range` of each request. A cut comes once the bytes before it have reached the socket, so the reader
 * gets all of them and only then the end of the connection.
 */
async function cuttingDownloadProxy(
  cuts: number,
  after: number,
): Promise<{ url: string; ranges: Array<string | undefined>; close(): Promise<void> }> {
  const ranges: Array<string | undefined> = []
  let cut = 0
  const proxy: Server = createHttpServer((req, res) => {
    ranges.push(req.headers.range)
    const cutThis = cut < cuts
    if (cutThis) cut++
    const up = request(`${service.url}${req.url}`, { method: req.method, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 500, upRes.headers)
      let sent = 0
      upRes.on('data', (c: Buffer) => {
        sent += c.length
        if (!cutThis || sent <= after) {
          res.write(c)
          return
        }
        upRes.destroy()
        res.write(c, () => res.socket?.destroy())
      })
      upRes.on('end', () => res.end())
    })
    up.on('error', () => res.destroy())
    up.end()
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    ranges,
    close: () => new Promise<void>((r) => proxy.close(() => r())),
  }
}

describe('transfer client', () => {
  it('resumes a download after dropped connections, with a Range from what it has', async () => {
    const { id, token } = addJob('401')
    const proxy = await cuttingDownloadProxy(2, 1024 * 1024)
    try {
      const dest = join(workDir, 'resumed.mov')
      const r = await fetchInput({ baseUrl: proxy.url, jobId: id, token, origin: ORIGIN }, dest, input.size, {
        retryDelayMs: 20,
      })
      expect(r.sha256).toBe(input.sha256)
      const { ranges } = proxy
      expect(ranges.length).toBe(3)
      expect(ranges[0]).toBeUndefined()
      expect(ranges[1]).toMatch(/^bytes=\d+-$/)
      expect(ranges[2]).toMatch(/^bytes=\d+-$/)
      // Each resume starts from every byte that came before its cut: at least one more cut's worth each time.
      const starts = ranges.map((r) => Number(/=(\d+)-/.exec(r ?? '')?.[1] ?? 0))
      expect(starts[1]).toBeGreaterThan(1024 * 1024)
      expect(starts[2]).toBeGreaterThan((starts[1] as number) + 1024 * 1024)
      expect(
        createHash('sha256')
          .update(await readFile(dest))
          .digest('hex'),
      ).toBe(input.sha256)
    } finally {
      await proxy.close()
    }
  })

  it('is abortable and leaves no temp file', async () => {
    const { id, token } = addJob('402')
    const ac = new AbortController()
    const dest = join(workDir, 'aborted.mov')
    const p = fetchInput({ baseUrl: service.url, jobId: id, token, origin: ORIGIN }, dest, input.size, {
      signal: ac.signal,
      onProgress: (done) => {
        if (done > 512 * 1024) ac.abort(new Error('stop'))
      },
    })
    await expect(p).rejects.toThrow('stop')
    expect((await filesIn(workDir)).filter((f) => f.startsWith('aborted'))).toEqual([])
  })

  it('reports an origin that does not answer as unavailable (the job waits), leaving nothing behind', async () => {
    const port = await freePort()
    const dest = join(workDir, 'offline.mov')
    const t0 = Date.now()
    await expect(
      fetchInput({ baseUrl: `http://127.0.0.1:${port}`, jobId: '1', token: 'x', origin: ORIGIN }, dest, 10, {
        retryDelayMs: 10,
        maxFailures: 3,
      }),
    ).rejects.toBeInstanceOf(OriginUnavailableError)
    expect(Date.now() - t0).toBeLessThan(5000)
    await expect(
      uploadOutput(
        { baseUrl: `http://127.0.0.1:${port}`, jobId: '1', token: 'x', origin: ORIGIN },
        input.path,
        {
          retryDelayMs: 10,
          maxFailures: 2,
        },
      ),
    ).rejects.toBeInstanceOf(OriginUnavailableError)
    expect((await filesIn(workDir)).filter((f) => f.startsWith('offline'))).toEqual([])
  })
})

describe('uploads', () => {
  it('commits a verified output without overwriting, and a second delivery of the job keeps the first', async () => {
    // The input is "clip.mov" and the output folder already holds a "clip.mp4" of someone else.
    await writeFile(join(outDir, 'clip.mp4'), 'not ours')
    const { id, token } = addJob('501')
    const out = join(workDir, 'encoded.mp4')
    await writeFile(out, randomBytes(700_000))
    const target = { baseUrl: service.url, jobId: id, token, origin: ORIGIN }
    const progress: number[] = []
    const r = await uploadOutput(target, out, { onProgress: (d) => progress.push(d) })
    expect(r.path).toBe(join(outDir, 'clip (1).mp4'))
    expect(r.duplicate).toBe(false)
    expect(progress.at(-1)).toBe(700_000)
    expect((await readFile(r.path)).equals(await readFile(out))).toBe(true)
    expect(await readFile(join(outDir, 'clip.mp4'), 'utf8')).toBe('not ours')

    const again = await uploadOutput(target, out)
    expect(again).toMatchObject({ path: r.path, duplicate: true })
    expect(await filesIn(outDir)).toEqual(['clip (1).mp4', 'clip.mp4'])
  })

  it('never writes over the input when the output would take its name', async () => {
    const same = join(inputDir, 'same.mp4')
    await writeFile(same, 'the input')
    const st = await stat(same)
    const { id, token } = addJob('502', 'active', {
      input: { path: same, size: st.size, mtimeMs: st.mtimeMs },
      outputDir: inputDir,
    })
    const out = join(workDir, 'encoded2.mp4')
    await writeFile(out, randomBytes(1000))
    const r = await uploadOutput({ baseUrl: service.url, jobId: id, token, origin: ORIGIN }, out)
    expect(r.path).toBe(join(inputDir, 'same (1).mp4'))
    expect(await readFile(same, 'utf8')).toBe('the input')
  })

  it('refuses an upload whose bytes do not match its checksum, and one cut short, leaving no temp file', async () => {
    const { id, token } = addJob('503', 'active', { outputDir: join(dir, 'out2') })
    await mkdir(join(dir, 'out2'))
    const body = randomBytes(5000)
    const wrongSum = createHash('sha256').update('something else').digest('hex')
    const r = await raw(
      service.port,
      `PUT /jobs/${id}/output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n` +
        `X-Checksum-SHA256: ${wrongSum}\r\nConnection: close\r\n\r\n${body.toString('latin1')}`,
    )
    expect(r.status).toBe(422)
    expect(await filesIn(join(dir, 'out2'))).toEqual([])

    // Cut short: the client sends half the body and dies.
    const sum = createHash('sha256').update(body).digest('hex')
    await new Promise<void>((resolve) => {
      const s = connect(service.port, '127.0.0.1', () => {
        s.write(
          `PUT /jobs/${id}/output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n` +
            `X-Checksum-SHA256: ${sum}\r\n\r\n`,
        )
        s.write(body.subarray(0, 2000), () => setTimeout(() => s.destroy(), 100))
      })
      s.on('close', () => resolve())
    })
    await new Promise((r2) => setTimeout(r2, 200))
    // What arrived is kept, hidden, to be resumed — never an output — and dropped when the job ends.
    const held = await filesIn(join(dir, 'out2'))
    expect(held).toEqual([expect.stringMatching(/^\.clip\.bullpen-503\.part-[0-9a-f]{16}-5000\.mp4$/)])
    expect((await stat(join(dir, 'out2', held[0] ?? ''))).size).toBe(2000)
    await service.discardUpload(id)
    expect(await filesIn(join(dir, 'out2'))).toEqual([])
  })
})

/** Sends a raw PUT of `body` as bytes `start`… of a `total`-byte output; resolves with status and head. */
function rawPut(
  id: string,
  token: string,
  body: Buffer,
  start: number,
  total: number,
  sum: string,
): Promise<{ status: number; bodyBytes: number; head: string }> {
  return raw(
    service.port,
    `PUT /jobs/${id}/output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Length: ${body.length}\r\nContent-Range: bytes ${start}-${start + body.length - 1}/${total}\r\n` +
      `X-Checksum-SHA256: ${sum}\r\nConnection: close\r\n\r\n${body.toString('latin1')}`,
  )
}

function rawHead(id: string, token: string, sum?: string): Promise<{ status: number; head: string }> {
  return raw(
    service.port,
    `HEAD /jobs/${id}/output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
      `${sum ? `X-Checksum-SHA256: ${sum}\r\n` : ''}Connection: close\r\n\r\n`,
  )
}

function offsetIn(head: string): number {
  return Number(/\r\nupload-offset: (\d+)/i.exec(head)?.[1] ?? NaN)
}

/**
 * A proxy in front of the file service that cuts the first `cuts` uploads (PUT) after `after` bytes of each,
 * both ways, and counts the bytes of every PUT it passed on. With `stall`, it does not cut but stops passing
 * bytes on, and leaves the origin's side open whatever the worker does (a connection dead without a word).
 */
async function cuttingUploadProxy(
  cuts: number,
  after: number,
  stall = false,
  refuseHead = false,
): Promise<{ url: string; putBytes: number[]; ranges: string[]; heads: number; close(): Promise<void> }> {
  const state = { putBytes: [] as number[], ranges: [] as string[], heads: 0 }
  let cut = 0
  const proxy: Server = createHttpServer((req, res) => {
    if (refuseHead && req.method === 'HEAD') {
      // As an origin of an earlier version, which knew no HEAD.
      state.heads++
      res.writeHead(403, { 'Content-Length': 0 })
      res.end()
      return
    }
    const up = request(`${service.url}${req.url}`, { method: req.method, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 500, upRes.headers)
      upRes.pipe(res)
    })
    up.on('error', () => res.destroy())
    if (req.method === 'HEAD') state.heads++
    if (req.method !== 'PUT') {
      up.end()
      return
    }
    const i = state.putBytes.push(0) - 1
    state.ranges.push(String(req.headers['content-range']))
    const cutThis = cut < cuts
    if (cutThis) cut++
    let stalled = false
    let cutting = false
    req.on('data', (c: Buffer) => {
      if (up.destroyed || stalled || cutting) return
      state.putBytes[i] = (state.putBytes[i] ?? 0) + c.length
      if (!cutThis || (state.putBytes[i] ?? 0) <= after) {
        up.write(c)
        return
      }
      if (stall) {
        up.write(c)
        stalled = true
        req.pause()
        return
      }
      // Cut once the bytes before it have reached the socket, so the origin gets all of them.
      cutting = true
      up.write(c, () => {
        up.destroy()
        req.socket.destroy()
      })
    })
    req.on('end', () => {
      if (!stalled) up.end()
    })
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    ...state,
    get heads() {
      return state.heads
    },
    close: () => new Promise<void>((r) => proxy.close(() => r())),
  }
}

describe('resumable uploads', () => {
  it('an upload cut off twice completes by resuming from the offset the origin holds', async () => {
    const out = join(dir, 'out-resume')
    await mkdir(out)
    const { id, token } = addJob('601', 'active', { outputDir: out })
    const file = join(workDir, 'encoded-601.mp4')
    const bytes = randomBytes(3 * 1024 * 1024 + 7)
    await writeFile(file, bytes)
    const proxy = await cuttingUploadProxy(2, 1024 * 1024)
    try {
      const r = await uploadOutput({ baseUrl: proxy.url, jobId: id, token, origin: ORIGIN }, file, {
        retryDelayMs: 20,
      })
      expect(r).toMatchObject({ path: join(out, 'clip.mp4'), size: bytes.length, duplicate: false })
      expect((await readFile(r.path)).equals(bytes)).toBe(true)
      expect(await filesIn(out)).toEqual(['clip.mp4'])
      // Three PUTs, each starting further on, after asking the origin where it was.
      expect(proxy.ranges.length).toBe(3)
      const starts = proxy.ranges.map((cr) => Number(/^bytes (\d+)-/.exec(cr)?.[1]))
      expect(starts[0]).toBe(0)
      // The proxy cuts after 1 MB: the origin holds every byte that reached it, so each PUT starts a cut further on.
      expect(starts[1]).toBeGreaterThan(1024 * 1024)
      expect(starts[2]).toBeGreaterThan((starts[1] ?? 0) + 1024 * 1024)
      expect(proxy.ranges[2]).toBe(`bytes ${starts[2]}-${bytes.length - 1}/${bytes.length}`)
      expect(proxy.heads).toBeGreaterThanOrEqual(2)
      const sent = proxy.putBytes.reduce((a, b) => a + b, 0)
      expect(sent).toBeLessThan(3 * bytes.length)
      // Resumed, not restarted: little more than the file itself went over the wire.
      expect(sent).toBeLessThan(bytes.length + 2 * 256 * 1024)
    } finally {
      await proxy.close()
    }
  })

  it('resumes through a new connection when the old one went silent, and the stalled upload gives way', async () => {
    const out = join(dir, 'out-stall')
    await mkdir(out)
    const { id, token } = addJob('606', 'active', { outputDir: out })
    const file = join(workDir, 'encoded-606.mp4')
    const bytes = randomBytes(2 * 1024 * 1024)
    await writeFile(file, bytes)
    const proxy = await cuttingUploadProxy(1, 512 * 1024, true)
    try {
      const r = await uploadOutput({ baseUrl: proxy.url, jobId: id, token, origin: ORIGIN }, file, {
        retryDelayMs: 20,
        idleTimeoutMs: 300,
      })
      expect((await readFile(r.path)).equals(bytes)).toBe(true)
      expect(await filesIn(out)).toEqual(['clip.mp4'])
      const starts = proxy.ranges.map((cr) => Number(/^bytes (\d+)-/.exec(cr)?.[1]))
      expect(starts[0]).toBe(0)
      expect(starts.at(-1)).toBeGreaterThan(256 * 1024)
      expect(proxy.putBytes.reduce((a, b) => a + b, 0)).toBeLessThan(bytes.length + 512 * 1024)
    } finally {
      await proxy.close()
    }
  })

  it('starts again from zero when the origin knows no HEAD (an earlier version)', async () => {
    const out = join(dir, 'out-nohead')
    await mkdir(out)
    const { id, token } = addJob('608', 'active', { outputDir: out })
    const file = join(workDir, 'encoded-608.mp4')
    const bytes = randomBytes(2 * 1024 * 1024)
    await writeFile(file, bytes)
    const proxy = await cuttingUploadProxy(1, 512 * 1024, false, true)
    try {
      const r = await uploadOutput({ baseUrl: proxy.url, jobId: id, token, origin: ORIGIN }, file, {
        retryDelayMs: 20,
      })
      expect((await readFile(r.path)).equals(bytes)).toBe(true)
      expect(await filesIn(out)).toEqual(['clip.mp4'])
      expect(proxy.heads).toBe(1)
      expect(proxy.ranges.map((cr) => /^bytes (\d+)-/.exec(cr)?.[1])).toEqual(['0', '0'])
    } finally {
      await proxy.close()
    }
  })

  it('refuses a second upload of a job while the first is still receiving (409, Retry-After)', async () => {
    const out = join(dir, 'out-busy')
    await mkdir(out)
    const { id, token } = addJob('607', 'active', { outputDir: out })
    const body = randomBytes(5000)
    const sum = createHash('sha256').update(body).digest('hex')
    // A first upload sends 2000 bytes and keeps its connection open.
    const first = connect(service.port, '127.0.0.1')
    const firstClosed = new Promise<void>((r) => first.on('close', () => r()))
    first.on('error', () => undefined)
    first.write(
      `PUT /jobs/${id}/output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 5000\r\n` +
        `X-Checksum-SHA256: ${sum}\r\n\r\n`,
    )
    first.write(body.subarray(0, 2000))
    await new Promise((r) => setTimeout(r, 50))
    const busy = await rawPut(id, token, body.subarray(2000), 2000, 5000, sum)
    expect(busy.status).toBe(409)
    expect(busy.head).toMatch(/\r\nRetry-After: \d+/)
    // Silent for longer than uploadStallMs: the new upload takes over from what the first one left.
    await new Promise((r) => setTimeout(r, 300))
    const rest = await rawPut(id, token, body.subarray(2000), 2000, 5000, sum)
    expect(rest.status).toBe(200)
    await firstClosed
    expect((await readFile(join(out, 'clip.mp4'))).equals(body)).toBe(true)
    expect(await filesIn(out)).toEqual(['clip.mp4'])
  })

  it('takes pieces at exactly the offset it holds (409 otherwise) and answers HEAD per file', async () => {
    const out = join(dir, 'out-offset')
    await mkdir(out)
    const { id, token } = addJob('602', 'active', { outputDir: out })
    const body = randomBytes(5000)
    const sum = createHash('sha256').update(body).digest('hex')
    const other = createHash('sha256').update('another encode').digest('hex')
    expect(offsetIn((await rawHead(id, token, sum)).head)).toBe(0)
    const first = await rawPut(id, token, body.subarray(0, 1000), 0, 5000, sum)
    expect(first.status).toBe(204)
    expect(offsetIn(first.head)).toBe(1000)
    expect(offsetIn((await rawHead(id, token, sum)).head)).toBe(1000)
    expect(offsetIn((await rawHead(id, token)).head)).toBe(1000)
    // Another file's checksum: nothing of it is held.
    expect(offsetIn((await rawHead(id, token, other)).head)).toBe(0)

    const ahead = await rawPut(id, token, body.subarray(2000, 3000), 2000, 5000, sum)
    expect(ahead.status).toBe(409)
    expect(offsetIn(ahead.head)).toBe(1000)
    const behind = await rawPut(id, token, body.subarray(500, 1500), 500, 5000, sum)
    expect(behind.status).toBe(409)
    const otherFile = await rawPut(id, token, body.subarray(1000), 1000, 5000, other)
    expect(otherFile.status).toBe(409)
    expect(offsetIn(otherFile.head)).toBe(0)
    const badRange = await rawPut(id, token, body.subarray(1000, 2000), 1000, 1500, sum)
    expect(badRange.status).toBe(400)
    // Nothing of those was written: the rest at the right offset completes the file.
    const rest = await rawPut(id, token, body.subarray(1000), 1000, 5000, sum)
    expect(rest.status).toBe(200)
    expect((await readFile(join(out, 'clip.mp4'))).equals(body)).toBe(true)
    expect(await filesIn(out)).toEqual(['clip.mp4'])
    expect(offsetIn((await rawHead(id, token, sum)).head)).toBe(0)
  })

  it('a resumed upload whose tail is corrupt fails the checksum, leaving no output and no partial', async () => {
    const out = join(dir, 'out-corrupt')
    await mkdir(out)
    const { id, token } = addJob('603', 'active', { outputDir: out })
    const body = randomBytes(5000)
    const sum = createHash('sha256').update(body).digest('hex')
    expect((await rawPut(id, token, body.subarray(0, 2500), 0, 5000, sum)).status).toBe(204)
    const tail = Buffer.from(body.subarray(2500))
    tail[tail.length - 1] = (tail[tail.length - 1] ?? 0) ^ 0xff
    const r = await rawPut(id, token, tail, 2500, 5000, sum)
    expect(r.status).toBe(422)
    expect(await filesIn(out)).toEqual([])
    expect(offsetIn((await rawHead(id, token, sum)).head)).toBe(0)
    // The client, told so, sends the whole file again from zero, once: it gets there.
    const file = join(workDir, 'encoded-603.mp4')
    await writeFile(file, body)
    const ok = await uploadOutput({ baseUrl: service.url, jobId: id, token, origin: ORIGIN }, file)
    expect(ok.path).toBe(join(out, 'clip.mp4'))
    expect(await filesIn(out)).toEqual(['clip.mp4'])
  })

  it('answers HEAD with a forged token, or of an input, with 403 and no bytes', async () => {
    const { id, token } = addJob('604')
    const forged = randomBytes(32).toString('base64url')
    for (const head of [
      `HEAD /jobs/${id}/output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${forged}\r\n`,
      `HEAD /jobs/${id}/output HTTP/1.1\r\nHost: x\r\n`,
      `HEAD /jobs/${id}/input HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`,
      `POST /jobs/${id}/output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`,
    ]) {
      const r = await raw(service.port, `${head}Connection: close\r\n\r\n`)
      expect({ head, status: r.status, bodyBytes: r.bodyBytes }).toEqual({ head, status: 403, bodyBytes: 0 })
      expect(r.head.toLowerCase()).not.toContain('upload-offset')
    }
    expect((await rawHead(id, token)).status).toBe(200)
  })

  it('an upload is abortable by its signal', async () => {
    const out = join(dir, 'out-abort')
    await mkdir(out)
    const { id, token } = addJob('605', 'active', { outputDir: out })
    const file = join(workDir, 'encoded-605.mp4')
    await writeFile(file, randomBytes(3 * 1024 * 1024))
    const ac = new AbortController()
    const p = uploadOutput({ baseUrl: service.url, jobId: id, token, origin: ORIGIN }, file, {
      signal: ac.signal,
      onProgress: (done) => {
        if (done > 512 * 1024) ac.abort(new Error('stop'))
      },
    })
    await expect(p).rejects.toThrow('stop')
    await new Promise((r) => setTimeout(r, 200))
    expect((await filesIn(out)).filter((f) => !f.startsWith('.'))).toEqual([])
  })
})
