/**
 * A pooled job in one process, end to end over real HTTP: an origin (file service + registry + tokens) and a
 * worker node with its own scratch folder, real ffmpeg on real media. The worker fetches, encodes, uploads; the
 * output lands in the origin's folder (checked with ffprobe); nothing is left in scratch or as temp files. Also:
 * shared folders (read in place), an origin that is away (the job waits, attempts untouched).
 */
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Bull from 'bull'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobData } from '../../src/shared/spec'
import { probeInput, transcodeFile } from '../../src/main/core/ffmpeg'
import { OriginUnavailableError } from '../../src/main/core/pool/errors'
import { FileService } from '../../src/main/core/pool/fileService'
import { prepareHandBack } from '../../src/main/core/pool/handBack'
import { NodeRegistry, type NodeAnnouncement } from '../../src/main/core/pool/registry'
import { cleanScratch, runPooled, type PoolWorkerContext } from '../../src/main/core/pool/remoteJob'
import { TokenStore, jobToken, loadOrCreateSecret } from '../../src/main/core/pool/tokens'
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

async function queueAtOrigin(id: string, input: JobData['input'], outputDir: string): Promise<JobData> {
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

const encode =
  (jobId: string, data: JobData) =>
  ({ inputPath, outputDir }: { inputPath: string; outputDir: string }) =>
    transcodeFile({ jobId, inputPath, outputDir, spec: data.spec })

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
    lookupJob: (id) => Promise.resolve(jobs.has(id) ? { state: 'active', data: jobs.get(id) } : null),
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
