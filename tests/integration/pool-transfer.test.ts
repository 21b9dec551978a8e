/**
 * A pooled job in one process, end to end over real HTTP: an origin (file service + registry + tokens) and a
 * worker node with its own scratch folder, real ffmpeg on real media. The worker fetches, encodes, uploads; the
 * output lands in the origin's folder (checked with ffprobe); nothing is left in scratch or as temp files. Also:
 * shared folders (read in place), an origin that is away (the job waits, attempts untouched).
 */
import { execFile } from 'node:child_process'
import {
  appendFile,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import {
  type AddressInfo,
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net'
import { promisify } from 'node:util'
import { hostname, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Bull from 'bull'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobData } from '../../src/shared/spec'
import {
  ffmpegPaths,
  keepProbe,
  probeFromJob,
  probeInput,
  runningJobs,
  transcodeFile,
  useFfmpeg,
} from '../../src/main/core/ffmpeg'
import { InputChangedError, OriginUnavailableError } from '../../src/main/core/pool/errors'
import { FileService } from '../../src/main/core/pool/fileService'
import { prepareHandBack } from '../../src/main/core/pool/handBack'
import { NodeRegistry, type NodeAnnouncement } from '../../src/main/core/pool/registry'
import {
  cleanScratch,
  runPooled,
  type EncodeRequest,
  type PoolWorkerContext,
} from '../../src/main/core/pool/remoteJob'
import { TokenStore, jobToken, loadOrCreateSecret } from '../../src/main/core/pool/tokens'
import { recordingFfmpeg } from '../helpers/files'
import { TEST_REDIS_URL, deleteKeys, uniquePrefix, waitFor } from '../helpers/redis'

const media = resolve(__dirname, '..', '..', '..', 'shared', 'media')
const prefix = uniquePrefix('pooltransfer')
const keyPrefix = `${prefix}:transcode`
const ORIGIN = 'origin-1'
const WORKER = 'worker-1'
let dir: string
let redis: Redis
let service: FileService
let registry: NodeRegistry
let secret: Buffer
let tokens: TokenStore
const jobs = new Map<string, JobData>()
/** Requests the origin's file service answered, per job (each one is looked up once). */
const lookups = new Map<string, number>()

function announce(id: string, patch: Partial<NodeAnnouncement>): NodeAnnouncement {
  return {
    id,
    name: id,
    host: hostname(),
    kind: 'worker',
    concurrency: 1,
    active: 0,
    paused: false,
    ffmpegVersion: 'test',
    encoders: [],
    fileServiceUrl: null,
    sharedFolders: [],
    mode: 'pool',
    startedAt: Date.now(),
    ...patch,
  }
}

async function inputFile(name: string, folder: string): Promise<JobData['input']> {
  await mkdir(folder, { recursive: true })
  const p = join(folder, name)
  await copyFile(join(media, name), p)
  const st = await stat(p)
  return { path: p, size: st.size, mtimeMs: st.mtimeMs }
}

async function queueAtOrigin(
  id: string,
  input: JobData['input'],
  outputDir: string,
  patch: Partial<JobData> = {},
): Promise<JobData> {
  const data: JobData = {
    v: 1,
    input,
    outputDir,
    spec: { format: 'mp4', subtitles: 'keep', resize: { height: 120 } },
    priority: 'normal',
    origin: ORIGIN,
    summary: { durationSec: 1.9, hasVideo: true, hasAudio: true, width: 320, height: 240 },
    dedupeKey: 'b'.repeat(32),
    createdAt: Date.now(),
    ...patch,
  }
  jobs.set(id, data)
  await tokens.put(id, jobToken(secret, id, data))
  return data
}

function workerCtx(scratchDir: string, patch: Partial<PoolWorkerContext> = {}): PoolWorkerContext {
  return {
    nodeId: WORKER,
    sharedFolders: [],
    getNode: (id) => registry.getNode(id),
    getToken: (id) => tokens.get(id),
    scratchDir,
    ...patch,
  }
}

/** The encoder as the processor wires it: a streamed input is read from the relay, described by the job's probe. */
const encode =
  (jobId: string, data: JobData) =>
  ({ inputPath, inputUrl, outputDir, signal }: EncodeRequest) =>
    transcodeFile({
      jobId,
      inputPath,
      outputDir,
      spec: data.spec,
      ...(inputUrl !== undefined ? { inputUrl } : {}),
      ...(data.media ? { info: probeFromJob(data.media, inputUrl ?? inputPath, data.input.size) } : {}),
      signal,
    })

/** The probe a job carries (as `bullpen add` stores it). */
async function probeOf(file: string): Promise<JobData['media']> {
  return keepProbe(await probeInput(file))
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bullpen-pooltransfer-'))
  redis = new Redis(TEST_REDIS_URL)
  secret = loadOrCreateSecret(join(dir, 'origin-data'))
  tokens = new TokenStore(redis, keyPrefix)
  service = new FileService({
    nodeId: ORIGIN,
    secret,
    redis,
    keyPrefix,
    lookupJob: (id) => {
      lookups.set(id, (lookups.get(id) ?? 0) + 1)
      return Promise.resolve(jobs.has(id) ? { state: 'active', data: jobs.get(id) } : null)
    },
  })
  const url = await service.start()
  registry = new NodeRegistry({
    redis,
    keyPrefix,
    self: announce(ORIGIN, {
      fileServiceUrl: url,
      sharedFolders: [{ name: 'media', path: join(dir, 'nas') }],
    }),
  })
  await registry.start()
})

afterAll(async () => {
  await registry.deregister()
  await service.close()
  await deleteKeys(TEST_REDIS_URL, prefix)
  redis.disconnect()
  await rm(dir, { recursive: true, force: true })
})

describe('a job whose input lives on another node', () => {
  it('is fetched, encoded on the worker and delivered into the origin folder', async () => {
    const originFolder = join(dir, 'origin-files')
    const input = await inputFile("te[s]t_ video ' _ .flv", originFolder)
    const data = await queueAtOrigin('11', input, originFolder)
    const scratch = join(dir, 'worker-scratch')
    await cleanScratch(scratch)
    const stages = new Set<string>()
    const r = await runPooled('11', data, workerCtx(scratch), encode('11', data), {
      onProgress: (p) => stages.add(p.stage),
    })
    expect(r.route).toBe('fetch')
    expect(r.duplicate).toBe(false)
    expect(r.result.outputPath).toBe(join(originFolder, "te[s]t_ video ' _ .mp4"))
    expect([...stages].sort()).toEqual(['download', 'upload'])
    const info = await probeInput(r.result.outputPath)
    expect(info.video?.codec).toBe('h264')
    expect(info.video?.height).toBe(120)
    expect(info.durationSec).toBeGreaterThan(1.5)
    // Only the input and the output at the origin; the worker's scratch is empty.
    expect((await readdir(originFolder)).sort()).toEqual(["te[s]t_ video ' _ .flv", "te[s]t_ video ' _ .mp4"])
    expect(await readdir(scratch)).toEqual([])
  })

  it('is read in place through a shared folder both nodes declare', async () => {
    // The "NAS": the origin sees it at <dir>/nas, the worker at <dir>/mnt-nas (a symlink, like another mount).
    const nas = join(dir, 'nas')
    const input = await inputFile('video-only.mp4', join(nas, 'clips'))
    await symlink(nas, join(dir, 'mnt-nas'))
    const data = await queueAtOrigin('12', input, join(nas, 'clips'))
    // A run of this job on a node that was killed left its temp file there.
    const stale = join(nas, 'clips', '.video-only (1).bullpen-12.part.mp4')
    await writeFile(stale, 'partial')
    const scratch = join(dir, 'worker-scratch-2')
    await cleanScratch(scratch)
    const ctx = workerCtx(scratch, { sharedFolders: [{ name: 'media', path: join(dir, 'mnt-nas') }] })
    const r = await runPooled('12', data, ctx, encode('12', data))
    expect(r.route).toBe('shared')
    expect(r.result.outputPath).toBe(join(dir, 'mnt-nas', 'clips', 'video-only (1).mp4'))
    expect((await probeInput(join(nas, 'clips', 'video-only (1).mp4'))).video?.height).toBe(120)
    expect((await readdir(join(nas, 'clips'))).sort()).toEqual(['video-only (1).mp4', 'video-only.mp4'])

    // A different file at the mapped path (size differs): not the same file, so it is fetched instead.
    const other = await inputFile('video-only.mp4', join(dir, 'elsewhere'))
    const data2 = await queueAtOrigin('13', { ...other, size: other.size }, join(dir, 'elsewhere'))
    const r2 = await runPooled(
      '13',
      data2,
      workerCtx(scratch, { sharedFolders: [{ name: 'media', path: join(dir, 'mnt-nas') }] }),
      encode('13', data2),
    )
    expect(r2.route).toBe('fetch')
  })

  it('waits, saying why, when the origin on another machine serves on its loopback only', async () => {
    const far = new NodeRegistry({
      redis,
      keyPrefix,
      self: announce('far-origin', { host: 'another-machine', fileServiceUrl: 'http://127.0.0.1:7420' }),
    })
    await far.start()
    try {
      const data = { ...(jobs.get('11') as JobData), origin: 'far-origin' }
      const err = await runPooled('15', data, workerCtx(join(dir, 's4')), encode('15', data)).catch(
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(OriginUnavailableError)
      expect((err as Error).message).toMatch(/only on its own machine .*--bind 0\.0\.0\.0/)
    } finally {
      await far.deregister()
    }
  })

  it('waits (OriginUnavailableError) while the origin is not running, without touching the job', async () => {
    const data = { ...(jobs.get('11') as JobData), origin: 'gone-node' }
    await expect(
      runPooled('14', data, workerCtx(join(dir, 's3')), encode('14', data)),
    ).rejects.toBeInstanceOf(OriginUnavailableError)
  })
})

/**
 * A TCP proxy in front of the origin's file service that passes the origin's bytes on at about `bytesPerSec`, and
 * after `cutAfter` bytes (all connections together) drops every connection and stops listening: the origin as seen
 * from a worker when it is killed mid-transfer.
 */
async function slowOrigin(
  bytesPerSec: number,
  cutAfter = Infinity,
): Promise<{ url: string; passed(): number; close(): Promise<void> }> {
  const target = new URL(service.url)
  let passed = 0
  const sockets = new Set<Socket>()
  const server: NetServer = createNetServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      upstream.pause()
      passed += chunk.length
      client.write(chunk)
      if (passed > cutAfter) {
        for (const s of sockets) s.destroy()
        server.close()
        return
      }
      setTimeout(() => upstream.resume(), (1000 * chunk.length) / bytesPerSec)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    passed: () => passed,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/** An mp4 of `loops` + 1 times the 17 s clip, stream-copied: its moov is at the end (ffmpeg must seek for it). */
async function longClip(name: string, loops: number): Promise<string> {
  const out = join(dir, 'made', name)
  await mkdir(join(dir, 'made'), { recursive: true })
  await promisify(execFile)(ffmpegPaths().ffmpeg, [
    '-v',
    'error',
    '-stream_loop',
    String(loops),
    '-i',
    join(media, 'real-360p-17s.mp4'),
    '-c',
    'copy',
    '-y',
    out,
  ])
  return out
}

async function portRefuses(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      r(false)
    })
    s.on('error', () => r(true))
  })
}

describe('a streamed input (the job carries its probe)', () => {
  it('is read by ffmpeg through the relay as it arrives: verified output, no token in ffmpeg argv, relay closed', async () => {
    const originFolder = join(dir, 'stream-files')
    await mkdir(originFolder, { recursive: true })
    const src = await longClip('moov-at-end.mp4', 0)
    const head = (await readFile(src)).subarray(0, 64).toString('latin1')
    expect(head).not.toContain('moov') // the moov is at the end: ffmpeg needs a Range request to reach it
    const input = { ...(await inputFile('real-360p-17s.mp4', originFolder)) }
    await copyFile(src, input.path)
    const st = await stat(input.path)
    const queued = { path: input.path, size: st.size, mtimeMs: st.mtimeMs }
    const data = await queueAtOrigin('21', queued, originFolder, { media: await probeOf(input.path) })
    const token = await tokens.get('21')
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)

    // An ffmpeg that writes down its argv and environment, then is the real one.
    const real = ffmpegPaths()
    const { wrapper, argvLog } = await recordingFfmpeg(dir, real.ffmpeg)
    useFfmpeg({ ffmpegPath: wrapper, ffprobePath: real.ffprobe })
    const scratch = join(dir, 'stream-scratch')
    await cleanScratch(scratch)
    const stages = new Set<string>()
    lookups.delete('21')
    try {
      const r = await runPooled('21', data, workerCtx(scratch), encode('21', data), {
        onProgress: (p) => stages.add(p.stage),
      })
      expect(r.route).toBe('stream')
      expect(r.result.outputPath).toBe(join(originFolder, 'real-360p-17s (1).mp4'))
      // No download stage: the encode reports its own progress, then the upload.
      expect([...stages]).toEqual(['upload'])
    } finally {
      useFfmpeg({ ffmpegPath: real.ffmpeg, ffprobePath: real.ffprobe })
    }
    const out = await probeInput(join(originFolder, 'real-360p-17s (1).mp4'))
    expect(out.video?.codec).toBe('h264')
    expect(out.video?.height).toBe(120)
    expect(out.durationSec).toBeGreaterThan(16)
    // ffmpeg read the relay (one URL on 127.0.0.1, a 32-hex path); nothing of the token or the origin's address.
    const argv = (await readFile(argvLog, 'utf8')).split('\n')
    const urls = argv.filter((a) => a.startsWith('http'))
    expect(urls).toHaveLength(1)
    expect(urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[a-f0-9]{32}\/real-360p-17s\.mp4$/)
    const everything = argv.join('\n') + (await readFile(`${argvLog}.env`, 'utf8'))
    expect(everything).not.toContain(token as string)
    expect(everything).not.toContain(service.url)
    // The origin answered more than one request (ffmpeg's seek to the moov at the end went through the relay).
    expect(lookups.get('21') ?? 0).toBeGreaterThanOrEqual(2)
    // The relay is gone (its port refuses), and nothing is left on either side.
    expect(await portRefuses(Number(new URL(urls[0] as string).port))).toBe(true)
    expect(await readdir(scratch)).toEqual([])
    expect((await readdir(originFolder)).sort()).toEqual(['real-360p-17s (1).mp4', 'real-360p-17s.mp4'])
  })

  it('is refused when the file at the origin changed after queueing, saying so, before any ffmpeg runs', async () => {
    const originFolder = join(dir, 'changed-files')
    const input = await inputFile('video-only.mp4', originFolder)
    const data = await queueAtOrigin('22', input, originFolder, { media: await probeOf(input.path) })
    await appendFile(input.path, 'more bytes')
    const scratch = join(dir, 'changed-scratch')
    await cleanScratch(scratch)
    let spawned = false
    const err = await runPooled('22', data, workerCtx(scratch), (req) => {
      spawned = true
      return encode('22', data)(req)
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InputChangedError)
    expect((err as Error).message).toMatch(
      /the input of job 22 \(video-only\.mp4\) is gone or changed on node origin-1 since it was queued\. Queue it again\./,
    )
    expect(spawned).toBe(false)
    expect(await readdir(scratch)).toEqual([])
    expect(await readdir(originFolder)).toEqual(['video-only.mp4'])
  })

  it('hands the job back when the origin goes away mid-stream: ffmpeg stopped, nothing left behind', async () => {
    const originFolder = join(dir, 'dying-files')
    await mkdir(originFolder, { recursive: true })
    const src = await longClip('four-times.mp4', 3)
    const p = join(originFolder, 'long.mp4')
    await copyFile(src, p)
    const st = await stat(p)
    const data = await queueAtOrigin('23', { path: p, size: st.size, mtimeMs: st.mtimeMs }, originFolder, {
      media: await probeOf(p),
      spec: { format: 'm4a', subtitles: 'keep' },
    })
    // The origin trickles 1 MB/s, then dies after 1.5 MB (the input is ~12 MB).
    const proxy = await slowOrigin(1024 * 1024, 1.5 * 1024 * 1024)
    const scratch = join(dir, 'dying-scratch')
    await cleanScratch(scratch)
    const ctx = workerCtx(scratch, {
      getNode: async (id) => {
        const n = await registry.getNode(id)
        return n ? { ...n, fileServiceUrl: proxy.url } : null
      },
      transfer: { maxFailures: 3, retryDelayMs: 50 },
    })
    let ffmpegRan = false
    const err = await runPooled('23', data, ctx, (req) => {
      ffmpegRan = true
      return encode('23', data)(req)
    }).catch((e: unknown) => e)
    await proxy.close()
    expect(ffmpegRan).toBe(true)
    expect(proxy.passed()).toBeGreaterThan(1024 * 1024)
    expect(err).toBeInstanceOf(OriginUnavailableError)
    expect((err as Error).message).toMatch(/node origin-1 does not answer .*the job waits for it/)
    expect(runningJobs()).toEqual([])
    expect(await readdir(scratch)).toEqual([])
    expect(await readdir(originFolder)).toEqual(['long.mp4'])
  })

  it('stops when the job is cancelled mid-stream', async () => {
    const originFolder = join(dir, 'cancel-files')
    await mkdir(originFolder, { recursive: true })
    const p = join(originFolder, 'long.mp4')
    await copyFile(join(dir, 'made', 'four-times.mp4'), p)
    const st = await stat(p)
    const data = await queueAtOrigin('24', { path: p, size: st.size, mtimeMs: st.mtimeMs }, originFolder, {
      media: await probeOf(p),
      spec: { format: 'm4a', subtitles: 'keep' },
    })
    const proxy = await slowOrigin(1024 * 1024)
    const scratch = join(dir, 'cancel-scratch')
    await cleanScratch(scratch)
    const ctx = workerCtx(scratch, {
      getNode: async (id) => {
        const n = await registry.getNode(id)
        return n ? { ...n, fileServiceUrl: proxy.url } : null
      },
    })
    const cancel = new AbortController()
    const started = Date.now()
    const run = runPooled('24', data, ctx, encode('24', data), { signal: cancel.signal }).catch(
      (e: unknown) => e,
    )
    await waitFor(() => proxy.passed() > 512 * 1024 && runningJobs().includes('24'), 'ffmpeg to read', 10_000)
    cancel.abort()
    const err = await run
    await proxy.close()
    expect((err as Error).name).toBe('JobCancelledError')
    expect(Date.now() - started).toBeLessThan(8000)
    expect(runningJobs()).toEqual([])
    expect(await readdir(scratch)).toEqual([])
    expect(await readdir(originFolder)).toEqual(['long.mp4'])
  })
})

describe('hand-back of a job whose origin is away', () => {
  it('moves the job to delayed without counting an attempt, and it runs later', async () => {
    const q = new Bull(`handback`, { redis: TEST_REDIS_URL, prefix })
    q.on('error', () => undefined)
    try {
      let calls = 0
      void q.process(1, (job: Bull.Job) => {
        calls++
        if (calls < 3)
          return Promise.reject(prepareHandBack(job, new OriginUnavailableError('away', 'x', 300)))
        return Promise.resolve('done')
      })
      const job = await q.add({ n: 1 }, { attempts: 2, backoff: { type: 'fixed', delay: 60_000 } })
      await waitFor(async () => (await q.getDelayed()).length === 1, 'the job to be delayed', 5000)
      const delayed = await q.getJob(job.id)
      expect(delayed?.attemptsMade).toBe(0)
      expect(delayed?.failedReason).toBe('away')
      // Two hand-backs with attempts: 2 would have failed the job for good if they counted.
      await waitFor(async () => (await q.getJob(job.id))?.finishedOn != null, 'the job to finish', 10_000)
      const done = await q.getJob(job.id)
      expect(await done?.getState()).toBe('completed')
      expect(done?.attemptsMade).toBe(0)
      expect(calls).toBe(3)
      // The job's own backoff is unchanged in Redis.
      expect(done?.opts.backoff).toEqual({ type: 'fixed', delay: 60_000 })
    } finally {
      await q.obliterate({ force: true }).catch(() => undefined)
      await q.close()
    }
  })
})
