/**
 * The transcode queue on real Redis: priorities, de-duplication, retention, retries, invalid payloads, priority
 * changes, cancel across two nodes, pause (local vs pool), clean, stats, hand-back.
 */
import { createHash } from 'node:crypto'
import type Bull from 'bull'
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidJobError, JobCancelledError, UnrecoverableJobError } from '../../src/main/core/errors'
import { TranscodeQueue, type TranscodeQueueOptions } from '../../src/main/core/queue'
import { RedisConnections } from '../../src/main/core/redis'
import { JOB_DATA_VERSION, type JobData, type Priority } from '../../src/shared/spec'
import { TEST_REDIS_URL, uniquePrefix, waitFor } from '../helpers/redis'

const queues: TranscodeQueue[] = []

function makeQueue(prefix: string, options: Partial<TranscodeQueueOptions> = {}): TranscodeQueue {
  const q = new TranscodeQueue({
    redisUrl: TEST_REDIS_URL,
    prefix,
    name: 'transcode',
    backoffDelayMs: 100,
    worker: { drainDelay: 1 },
    ...options,
  })
  queues.push(q)
  return q
}

afterEach(async () => {
  const qs = queues.splice(0)
  await Promise.all(qs.map((q) => q.close({ handBack: true })))
  const prefixes = new Set(qs.map((q) => q.prefix))
  for (const prefix of prefixes) {
    const cleaner = new TranscodeQueue({ redisUrl: TEST_REDIS_URL, prefix })
    await cleaner.obliterate()
    await cleaner.close()
  }
})

let n = 0
function jobData(overrides: Partial<JobData> & { file?: string } = {}): JobData {
  const { file, ...rest } = overrides
  const path = file ?? `/media/in/file-${++n}-${Math.random().toString(36).slice(2)}.mp4`
  return {
    v: JOB_DATA_VERSION,
    input: { path, size: 1000, mtimeMs: 1_700_000_000_000 },
    outputDir: '/media/out',
    spec: { format: 'webm', subtitles: 'keep' },
    priority: 'normal',
    origin: 'node-a',
    summary: { durationSec: 10, hasVideo: true, hasAudio: true, width: 640, height: 360 },
    dedupeKey: createHash('sha256').update(path).digest('hex').slice(0, 32),
    createdAt: Date.now(),
    ...rest,
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Runs the queue with concurrency 1 and records the order in which files are processed. */
async function recordOrder(q: TranscodeQueue, count: number): Promise<string[]> {
  const order: string[] = []
  await q.process(1, async (job) => {
    order.push(job.data.input.path)
    await sleep(5)
    return { ok: true }
  })
  await waitFor(async () => (await q.stats()).completed === count, `${count} completions`)
  return order
}

describe('TranscodeQueue', () => {
  it('runs high before normal before low, FIFO within a priority', async () => {
    const q = makeQueue(uniquePrefix('prio'))
    await q.pausePool()
    const plan: [string, Priority][] = [
      ['/m/l1.mp4', 'low'],
      ['/m/n1.mp4', 'normal'],
      ['/m/h1.mp4', 'high'],
      ['/m/n2.mp4', 'normal'],
      ['/m/h2.mp4', 'high'],
      ['/m/l2.mp4', 'low'],
    ]
    for (const [file, priority] of plan) await q.add(jobData({ file, priority }))
    const waiting = await q.list('paused')
    expect(waiting.total).toBe(6)
    expect(waiting.items.map((j) => j.data?.input.path)).toEqual([
      '/m/h1.mp4',
      '/m/h2.mp4',
      '/m/n1.mp4',
      '/m/n2.mp4',
      '/m/l1.mp4',
      '/m/l2.mp4',
    ])
    expect(waiting.items[0]?.priority).toBe('high')
    await q.resumePool()
    expect(await recordOrder(q, 6)).toEqual([
      '/m/h1.mp4',
      '/m/h2.mp4',
      '/m/n1.mp4',
      '/m/n2.mp4',
      '/m/l1.mp4',
      '/m/l2.mp4',
    ])
  })

  it('does not queue the same file twice while a copy is live, even with 20 parallel adds; re-adds once done', async () => {
    const q = makeQueue(uniquePrefix('dedupe'))
    const other = makeQueue(q.prefix) // a second node on the same queue
    const data = jobData()
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? q : other).add({ ...data, createdAt: Date.now() + i }),
      ),
    )
    const ids = new Set(results.map((r) => r.id))
    expect(ids.size).toBe(1)
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1)
    const s = await q.stats()
    expect(s.waiting).toBe(1)

    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    await q.process(1, async () => {
      await gate
      return 'done'
    })
    const [first] = [...ids]
    await waitFor(async () => (await q.get(first!))?.state === 'active', 'the job to be active')
    expect(await q.add(data)).toEqual({ id: first, duplicate: true })
    release()
    await waitFor(async () => (await q.get(first!))?.state === 'completed', 'completion')
    const again = await q.add(data)
    expect(again.duplicate).toBe(false)
    expect(again.id).not.toBe(first)
  })

  it('frees the file when its waiting copy is removed or cancelled', async () => {
    const q = makeQueue(uniquePrefix('dedupe-free'))
    await q.pausePool()
    const data = jobData()
    const a = await q.add(data)
    expect(await q.add(data)).toEqual({ id: a.id, duplicate: true })
    await q.remove(a.id)
    const b = await q.add(data)
    expect(b.duplicate).toBe(false)
    expect(await q.cancel(b.id)).toBe('removed')
    const c = await q.add(data)
    expect(c.duplicate).toBe(false)
    expect(new Set([a.id, b.id, c.id]).size).toBe(3)
    expect((await q.stats()).paused).toBe(1)
  })

  it('frees the file of an active job whose cancel waits for its node (one that died, say)', async () => {
    const q = makeQueue(uniquePrefix('dedupe-cancelled'))
    const data = jobData()
    const a = await q.add(data)
    // Taken as by a node that then died: active and locked, with nobody here to see the cancel request.
    expect(String((await q.bull.getNextJob())?.id)).toBe(a.id)
    expect(await q.cancel(a.id)).toBe('requested')
    // Queueing the file again makes a new job: attached to the old one, it would only have been cancelled too.
    const b = await q.add(data)
    expect(b.duplicate).toBe(false)
    expect(b.id).not.toBe(a.id)
    expect(await q.add(data)).toEqual({ id: b.id, duplicate: true })
  })

  it('keeps the last 100 completed jobs', async () => {
    const q = makeQueue(uniquePrefix('keep'))
    for (let i = 0; i < 106; i++) await q.add(jobData())
    const done: string[] = []
    q.events.on('completed', ({ jobId }) => done.push(jobId))
    await q.process(4, () => Promise.resolve(1))
    await waitFor(() => done.length === 106, '106 completions', 30_000)
    await waitFor(async () => (await q.stats()).completed === 100, '100 kept')
    const page = await q.list('completed', { offset: 0, limit: 200 })
    expect(page.total).toBe(100)
    expect(page.items).toHaveLength(100)
  })

  it('retries with exponential backoff: fails twice, then succeeds on the third attempt', async () => {
    const q = makeQueue(uniquePrefix('retry'), { backoffDelayMs: 500 })
    const { id } = await q.add(jobData())
    const times: number[] = []
    await q.process(1, (job: Bull.Job<JobData>) => {
      times.push(Date.now())
      if (job.attemptsMade < 2) return Promise.reject(new Error(`transient failure ${job.attemptsMade + 1}`))
      return Promise.resolve('ok')
    })
    await waitFor(async () => (await q.get(id))?.state === 'completed', 'completion', 20_000)
    const info = await q.get(id)
    expect(info?.attemptsMade).toBe(2)
    expect(times).toHaveLength(3)
    const d1 = times[1]! - times[0]!
    const d2 = times[2]! - times[1]!
    expect(d1).toBeGreaterThanOrEqual(480) // 500 ms, then 1000 ms: exponential
    expect(d2).toBeGreaterThanOrEqual(980)
    expect(d2).toBeGreaterThan(d1)
  })

  it('fails invalid payloads at once, without retries, and never calls the handler', async () => {
    const q = makeQueue(uniquePrefix('invalid'))
    const base = jobData()
    const bad: Record<string, unknown>[] = [
      { ...base, outputDir: '/media/out/../../etc/passwd' },
      { ...base, outputDir: '../../etc/passwd' },
      { ...base, ffmpegArgs: ['-i', '/etc/passwd'] },
      { ...base, spec: { format: 'mp4', subtitles: 'keep', resize: { width: 100000 } } },
      { ...base, input: { ...base.input, path: 'relative/file.mp4' } },
    ]
    // add() refuses them…
    for (const b of bad) await expect(q.add(b as JobData)).rejects.toBeInstanceOf(InvalidJobError)
    // …but anyone who can reach Redis can write a job: put them in through Bull directly.
    const ids: string[] = []
    for (const b of bad) {
      const job = await q.bull.add(b as unknown as JobData, {
        attempts: 3,
        backoff: { type: 'fixed', delay: 50 },
      })
      ids.push(String(job.id))
    }
    let calls = 0
    await q.process(2, () => {
      calls++
      return Promise.resolve('should not run')
    })
    await waitFor(async () => (await q.stats()).failed === bad.length, 'all to fail')
    await sleep(300) // room for a (wrong) retry
    expect(calls).toBe(0)
    for (const id of ids) {
      const info = await q.get(id)
      expect(info?.state).toBe('failed')
      expect(info?.attemptsMade).toBe(1)
      expect(info?.data).toBeNull()
      expect(info?.failedReason).toMatch(/invalid payload/)
    }
    const reasons = await Promise.all(ids.map(async (id) => (await q.get(id))?.failedReason ?? ''))
    expect(reasons[0]).toMatch(/outputDir/)
    expect(reasons[2]).toMatch(/ffmpegArgs|unrecognized/i)
    expect(reasons[3]).toMatch(/width/)
    expect(reasons[4]).toMatch(/input\.path/)
  })

  it('fails a job whose data or options in Redis are not JSON, and lists and removes around it', async () => {
    const q = makeQueue(uniquePrefix('not-json'))
    await q.pausePool()
    const good = await q.add(jobData())
    const garbage: string[] = []
    for (const field of ['data', 'opts']) {
      const job = await q.bull.add(jobData(), { attempts: 3 })
      await q.connections.client.hset(`${q.prefix}:${q.name}:${job.id}`, field, '{not json')
      garbage.push(String(job.id))
    }
    // Listing the state they are in works (it threw for every job there).
    expect((await q.list('paused')).items.map((j) => j.id).sort()).toEqual([good.id, ...garbage].sort())
    const ran: string[] = []
    await q.process(1, (job) => {
      ran.push(String(job.id))
      return Promise.resolve('ok')
    })
    await q.resumePool()
    await waitFor(async () => {
      const s = await q.stats()
      return s.completed === 1 && s.failed === 2
    }, 'the good job done, the two others failed at once (they stayed active until they stalled out)')
    expect(ran).toEqual([good.id])
    const failed = await q.list('failed')
    expect(failed.items.map((j) => [j.id, j.failedReason]).sort()).toEqual([
      [garbage[0], `job ${garbage[0]} has an invalid payload: its data in Redis is not JSON`],
      [garbage[1], `job ${garbage[1]} has an invalid payload: its opts in Redis is not JSON`],
    ])
    await q.remove(garbage[0] as string)
    expect((await q.stats()).failed).toBe(1)
  })

  it('does not retry unrecoverable errors', async () => {
    const q = makeQueue(uniquePrefix('unrec'))
    const { id } = await q.add(jobData())
    let calls = 0
    await q.process(1, () => {
      calls++
      return Promise.reject(new UnrecoverableJobError('input is not media'))
    })
    await waitFor(async () => (await q.get(id))?.state === 'failed', 'failure')
    await sleep(300)
    expect(calls).toBe(1)
    expect((await q.get(id))?.failedReason).toBe('input is not media')
  })

  it('changes the priority of a waiting job atomically, and the processing order follows', async () => {
    const q = makeQueue(uniquePrefix('setprio'))
    await q.pausePool()
    const a = await q.add(jobData({ file: '/m/a.mp4', priority: 'normal' }))
    const b = await q.add(jobData({ file: '/m/b.mp4', priority: 'normal' }))
    const c = await q.add(jobData({ file: '/m/c.mp4', priority: 'low' }))
    const d = await q.add(jobData({ file: '/m/d.mp4', priority: 'high' }))
    await q.add(jobData({ file: '/m/e.mp4', priority: 'normal' }))
    await q.setPriority(c.id, 'high') // c: low → high, behind d
    await q.setPriority(d.id, 'low') // d: high → low, last
    await q.moveToTop(b.id) // b first of all
    await q.setPriority(a.id, 'normal') // unchanged: a keeps its place
    const listed = await q.list('paused')
    expect(listed.items.map((j) => j.data?.input.path)).toEqual([
      '/m/b.mp4',
      '/m/c.mp4',
      '/m/a.mp4',
      '/m/e.mp4',
      '/m/d.mp4',
    ])
    expect(listed.items.map((j) => j.priority)).toEqual(['high', 'high', 'normal', 'normal', 'low'])
    expect((await q.getBullJob(d.id))?.opts.priority).toBe(10)
    await q.resumePool()
    expect(await recordOrder(q, 5)).toEqual(['/m/b.mp4', '/m/c.mp4', '/m/a.mp4', '/m/e.mp4', '/m/d.mp4'])
    await expect(q.setPriority(a.id, 'high')).rejects.toThrow(
      /job \d+ is completed; only waiting jobs can be reprioritised/,
    )
    await expect(q.setPriority('999999', 'high')).rejects.toThrow(/does not exist/)
    // Ids that would name other keys of the queue are refused, not looked up.
    await expect(q.setPriority('wait', 'high')).rejects.toThrow('"wait" is not a job id')
    await expect(q.remove('1:lock')).rejects.toThrow(/is not a job id/)
    expect(await q.get('priority')).toBeNull()
    expect(await q.cancel('wait')).toBe('not-found')
  })

  it('refuses to reprioritise an active job', async () => {
    const q = makeQueue(uniquePrefix('setprio-active'))
    const { id } = await q.add(jobData())
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    await q.process(1, async () => gate)
    await waitFor(async () => (await q.get(id))?.state === 'active', 'active')
    await expect(q.setPriority(id, 'high')).rejects.toThrow(
      `job ${id} is active; only waiting jobs can be reprioritised`,
    )
    await expect(q.moveToTop(id)).rejects.toThrow(/is active/)
    release()
  })

  it('cancels a waiting job (removed) and an active one on another node (failed "cancelled", no retry)', async () => {
    const prefix = uniquePrefix('cancel')
    const worker = makeQueue(prefix, { nodeId: 'worker-node', cancelPollMs: 60_000 })
    const ui = makeQueue(prefix, { nodeId: 'ui-node' })
    await ui.ready()
    const removed: string[] = []
    ui.events.on('removed', ({ jobId }) => removed.push(jobId))
    const actives: { jobId: string; node: string }[] = []
    ui.events.on('active', (e) => actives.push(e))

    const running = await ui.add(jobData())
    let aborted = 0
    let calls = 0
    const requested: string[] = []
    worker.onCancelRequest((id) => requested.push(id))
    await worker.process(1, (_job, signal) => {
      calls++
      return new Promise((_, reject) => {
        signal.addEventListener('abort', () => {
          aborted++
          reject(new Error('ffmpeg killed'))
        })
      })
    })
    await waitFor(async () => (await ui.get(running.id))?.state === 'active', 'active')
    // The node's mark and message follow within its worker batch (a few ms).
    await waitFor(() => actives.some((a) => a.jobId === running.id), 'active message')
    const waiting = await ui.add(jobData())
    expect(await ui.cancel(waiting.id)).toBe('removed')
    expect(await ui.get(waiting.id)).toBeNull()
    await waitFor(() => removed.includes(waiting.id), 'removed event')
    // The file may be queued again at once.
    expect(actives).toContainEqual({ jobId: running.id, node: 'worker-node' })
    expect((await ui.get(running.id))?.node).toBe('worker-node')

    expect(await ui.cancel(running.id)).toBe('requested')
    await waitFor(async () => (await ui.get(running.id))?.state === 'failed', 'cancelled job to fail')
    const info = await ui.get(running.id)
    expect(info?.failedReason).toBe('cancelled')
    expect(info?.attemptsMade).toBe(1)
    expect(aborted).toBe(1)
    expect(requested).toContain(running.id)
    await sleep(300)
    expect(calls).toBe(1)
    expect(await ui.cancel(running.id)).toBe('finished')
    expect(await ui.cancel('424242')).toBe('not-found')
    expect(new JobCancelledError().message).toBe('cancelled')
  })

  it('a node that missed the cancel message still sees the request when it checks', async () => {
    const prefix = uniquePrefix('cancel-key')
    const worker = makeQueue(prefix, { cancelPollMs: 100 })
    const { id } = await worker.add(jobData())
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    await worker.process(1, async () => {
      await gate
      return 'ran to the end'
    })
    await waitFor(async () => (await worker.get(id))?.state === 'active', 'active')
    // Write the request key only, as if the message had been lost.
    await worker.connections.client.set(`${prefix}:transcode:bp:cancel:${id}`, '1', 'PX', 60_000)
    expect(await worker.isCancelRequested(id)).toBe(true)
    await waitFor(async () => (await worker.get(id))?.state === 'failed', 'cancelled by the poll')
    expect((await worker.get(id))?.failedReason).toBe('cancelled')
    release()
  })

  it('pauses this node only, or the whole pool', async () => {
    const prefix = uniquePrefix('pause')
    const a = makeQueue(prefix, { nodeId: 'a' })
    const b = makeQueue(prefix, { nodeId: 'b' })
    const ranOn: { a: string[]; b: string[] } = { a: [], b: [] }
    const handler = (name: 'a' | 'b') => async (job: Bull.Job<JobData>) => {
      ranOn[name].push(String(job.id))
      await sleep(20)
      return name
    }
    await a.process(1, handler('a'))
    await b.process(1, handler('b'))
    await a.pauseLocal()
    expect(a.isLocalPaused()).toBe(true)
    expect(await a.isPoolPaused()).toBe(false)
    for (let i = 0; i < 4; i++) await a.add(jobData())
    await waitFor(async () => (await a.stats()).completed === 4, 'b to do all four')
    expect(ranOn.a).toHaveLength(0)
    expect(ranOn.b).toHaveLength(4)

    await a.resumeLocal()
    const pausedSeen = a.events.next('paused')
    await b.pausePool()
    await pausedSeen
    expect(await a.isPoolPaused()).toBe(true)
    const s0 = await a.stats()
    expect(s0.poolPaused).toBe(true)
    for (let i = 0; i < 3; i++) await b.add(jobData())
    await sleep(400)
    const s1 = await a.stats()
    expect(s1.paused).toBe(3)
    expect(s1.waiting).toBe(0)
    expect(s1.completed).toBe(4)
    const resumedSeen = b.events.next('resumed')
    await a.resumePool()
    await resumedSeen
    await waitFor(async () => (await a.stats()).completed === 7, 'all seven')
  })

  it('reports stats, removes, retries and cleans', async () => {
    const q = makeQueue(uniquePrefix('admin'), { attempts: 1 })
    const good = await q.add(jobData())
    const bad = await q.add(jobData({ file: '/m/fail.mp4' }))
    await q.process(1, (job) =>
      job.data.input.path === '/m/fail.mp4' ? Promise.reject(new Error('boom')) : Promise.resolve('fine'),
    )
    await waitFor(async () => {
      const s = await q.stats()
      return s.completed === 1 && s.failed === 1
    }, 'one done, one failed')
    expect(await q.stats()).toMatchObject({
      waiting: 0,
      active: 0,
      completed: 1,
      failed: 1,
      delayed: 0,
      paused: 0,
    })
    const failedInfo = await q.get(bad.id)
    expect(failedInfo).toMatchObject({ state: 'failed', failedReason: 'boom', attemptsMade: 1, attempts: 1 })
    expect((await q.get(good.id))?.result).toBe('fine')

    // A failed job blocks nothing: the same file can be queued again; retrying the old one is then refused.
    const copy = await q.add(jobData({ file: '/m/fail.mp4' }))
    expect(copy.duplicate).toBe(false)
    await waitFor(async () => (await q.stats()).failed === 2, 'the copy to fail too')
    await q.retry(bad.id)
    await waitFor(async () => (await q.get(bad.id))?.state === 'failed', 'retried job to fail again')
    expect((await q.get(bad.id))?.attemptsMade).toBe(1) // attempts were reset by retry
    await expect(q.retry(good.id)).rejects.toThrow(/only failed jobs can be retried/)

    await q.remove(copy.id)
    expect(await q.get(copy.id)).toBeNull()
    const dedupeKeys = async (): Promise<number> =>
      (await q.connections.client.keys(`${q.prefix}:transcode:bp:dedupe:*`)).length
    // Keys of finished jobs are released when they end (good.mp4 completed, fail.mp4 failed for good).
    await waitFor(async () => (await dedupeKeys()) === 0, 'keys of finished jobs released', 5_000)
    await q.pauseLocal()
    const waiting = await q.add(jobData())
    expect(await dedupeKeys()).toBe(1)
    expect(await q.clean(60_000)).toEqual({ completed: 0, failed: 0 })
    // The waiting job's key survives a clean and still blocks a copy.
    expect(await dedupeKeys()).toBe(1)
    expect(await q.add(jobData({ file: (await q.get(waiting.id))?.data?.input.path ?? '' }))).toEqual({
      id: waiting.id,
      duplicate: true,
    })
    await sleep(20)
    expect(await q.clean(0)).toEqual({ completed: 1, failed: 1 })
    expect(await q.stats()).toMatchObject({ completed: 0, failed: 0, waiting: 1 })
  })

  it('streams progress objects to every node', async () => {
    const prefix = uniquePrefix('progress')
    const worker = makeQueue(prefix)
    const viewer = makeQueue(prefix)
    await viewer.ready()
    const seen: unknown[] = []
    viewer.events.on('progress', (e) => seen.push(e))
    const completed = viewer.events.next('completed')
    const { id } = await viewer.add(jobData())
    await worker.process(1, async (job) => {
      for (const percent of [10, 50, 90]) {
        await job.progress({ percent, fps: 30, speed: 1.5, etaSec: 3, stage: 'encode' })
        await sleep(30)
      }
      await job.log('frame=  100 fps=30')
      return { bytes: 123 }
    })
    expect(await completed).toEqual({ jobId: id, result: { bytes: 123 } })
    await waitFor(() => seen.length === 3, 'three progress events')
    expect(seen[1]).toEqual({
      jobId: id,
      progress: { percent: 50, fps: 30, speed: 1.5, etaSec: 3, stage: 'encode' },
    })
    expect(await viewer.logs(id)).toEqual(['frame=  100 fps=30'])
  })

  it('hands running jobs back on close, without counting an attempt, and another node finishes them', async () => {
    const prefix = uniquePrefix('handback')
    const leaving = makeQueue(prefix, { nodeId: 'leaving' })
    const { id } = await leaving.add(jobData())
    let sawAbort = false
    await leaving.process(1, (_job, signal) => {
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          sawAbort = true
          reject(new Error('aborted'))
        }),
      )
    })
    await waitFor(async () => (await leaving.get(id))?.state === 'active', 'active')
    const t0 = Date.now()
    await leaving.close({ handBack: true })
    expect(Date.now() - t0).toBeLessThan(3000)
    expect(sawAbort).toBe(true)

    const staying = makeQueue(prefix, { nodeId: 'staying' })
    const info = await staying.get(id)
    expect(info?.state).toBe('waiting')
    expect(info?.attemptsMade).toBe(0)
    await staying.process(1, () => Promise.resolve('finished elsewhere'))
    await waitFor(async () => (await staying.get(id))?.state === 'completed', 'completion on the other node')
    expect((await staying.get(id))?.node).toBe('staying')
    expect((await staying.get(id))?.attemptsMade).toBe(0)
  })

  it('closes gracefully: stops taking jobs and lets the running one finish', async () => {
    const q = makeQueue(uniquePrefix('graceful'))
    const first = await q.add(jobData())
    const second = await q.add(jobData())
    const started: string[] = []
    await q.process(1, async (job) => {
      started.push(String(job.id))
      await sleep(300)
      return 'ok'
    })
    await waitFor(() => started.length === 1, 'first to start')
    const observer = makeQueue(q.prefix)
    await q.close()
    expect(started).toEqual([first.id])
    expect((await observer.get(first.id))?.state).toBe('completed')
    expect((await observer.get(second.id))?.state).toBe('waiting')
  })

  // 0 ms: the request comes while close() is still pausing the worker (the escalation must not be lost then).
  it.each([0, 200])(
    'a hand-back request %i ms into a graceful close hands the running job back at once',
    async (delayMs) => {
      const prefix = uniquePrefix('escalate')
      const q = makeQueue(prefix)
      const { id } = await q.add(jobData())
      await q.process(1, (_job, signal) => {
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('aborted'))),
        )
      })
      await waitFor(async () => (await q.get(id))?.state === 'active', 'active')
      const graceful = q.close() // would wait for ever: the handler only ends when aborted
      await sleep(delayMs)
      const t0 = Date.now()
      await q.close({ handBack: true })
      await graceful
      expect(Date.now() - t0).toBeLessThan(3000)
      const observer = makeQueue(prefix)
      expect(await observer.get(id)).toMatchObject({ state: 'waiting', attemptsMade: 0 })
    },
  )

  it('shares one set of connections between queues; closing one leaves the others working', async () => {
    const conns = new RedisConnections(TEST_REDIS_URL)
    const prefix = uniquePrefix('shared')
    const one = new TranscodeQueue({ connections: conns, prefix, name: 'one' })
    const two = new TranscodeQueue({ connections: conns, prefix, name: 'two', worker: { drainDelay: 1 } })
    const same = new TranscodeQueue({ connections: conns, prefix, name: 'two' })
    try {
      await Promise.all([one.ready(), two.ready(), same.ready()])
      expect(one.connections.client).toBe(two.connections.client)
      await one.process(1, () => Promise.resolve('one'))
      await same.close()
      await one.close()
      expect(conns.client.status).toBe('ready')
      const removed = two.events.next('removed')
      await two.pausePool()
      const { id } = await two.add(jobData())
      await two.remove(id) // the bus channel of 'two' still delivers after 'same' (same channel) closed
      expect(await removed).toEqual({ jobId: id })
      await two.resumePool()
      const { id: id2 } = await two.add(jobData())
      await two.process(1, () => Promise.resolve('two'))
      await waitFor(
        async () => (await two.get(id2))?.state === 'completed',
        'completion on the remaining queue',
      )
    } finally {
      await two.obliterate()
      await two.close()
      const cleaner = new TranscodeQueue({ connections: conns, prefix, name: 'one' })
      await cleaner.obliterate()
      await cleaner.close()
      await conns.close()
    }
  })
})

describe('de-duplication keys', () => {
  it('are dropped when their jobs end, so Redis does not keep one per job ever queued', async () => {
    const q = makeQueue(uniquePrefix('dedupe-gc'), { attempts: 1 })
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push((await q.add(jobData())).id)
    const failing = ids[5]
    await q.process(2, (job) =>
      String(job.id) === failing ? Promise.reject(new Error('boom')) : Promise.resolve('ok'),
    )
    await waitFor(async () => {
      const s = await q.stats()
      return s.completed === 5 && s.failed === 1
    }, 'all jobs ended')
    const dedupeKeys = async (): Promise<string[]> =>
      q.connections.client.keys(`${q.prefix}:${q.name}:bp:dedupe:*`)
    await waitFor(async () => (await dedupeKeys()).length === 0, 'dedupe keys released', 5_000)
    expect(await dedupeKeys()).toEqual([])
  })

  it('holding garbage (written into Redis by someone else) block nothing', async () => {
    const q = makeQueue(uniquePrefix('dedupe-garbage'))
    const data = jobData()
    const { id } = await q.add(data)
    const key = (await q.connections.client.keys(`${q.prefix}:${q.name}:bp:dedupe:*`))[0] as string
    await q.remove(id)
    // 'id' names the queue's counter key, which exists: read as a job id, it blocked the file for good.
    for (const garbage of ['id', 'stalled-check', '']) {
      await q.connections.client.set(key, garbage)
      const again = await q.add(data)
      expect(again.duplicate, garbage).toBe(false)
      await q.remove(again.id)
    }
  })

  it('left by a job removed behind our back are swept by the worker after its start delay, not before', async () => {
    const q = makeQueue(uniquePrefix('dedupe-sweep'), { dedupeSweepDelayMs: 1_000 })
    const { id } = await q.add(jobData())
    const dedupeKeys = async (): Promise<string[]> =>
      q.connections.client.keys(`${q.prefix}:${q.name}:bp:dedupe:*`)
    expect(await dedupeKeys()).toHaveLength(1)
    // Removed with Bull's own API (as Bull Board does): our bookkeeping never sees it.
    await (await q.bull.getJob(id))?.remove()
    await q.process(1, () => Promise.resolve('ok'))
    await sleep(300)
    expect(await dedupeKeys()).toHaveLength(1)
    await waitFor(async () => (await dedupeKeys()).length === 0, 'leftover dedupe key swept', 5_000)
  })
})

describe('one round trip per add, batched worker bookkeeping', () => {
  it("adds the very job Bull's own add makes: hash fields, opts, priority set, waiting list and event", async () => {
    const prefix = uniquePrefix('add-same')
    const q = makeQueue(prefix, { keepCompleted: 7, keepFailed: 9, attempts: 4, backoffDelayMs: 321 })
    await q.ready()
    await q.pausePool()
    const waiting: string[] = []
    q.events.on('waiting', ({ jobId }) => waiting.push(jobId))
    const data = jobData({ priority: 'high' })
    const ours = await q.add(data)
    // The same job through Bull's public add, with the options Bullpen uses.
    const theirs = await q.bull.add(
      { ...data, dedupeKey: 'f'.repeat(32) },
      {
        priority: 1,
        attempts: 4,
        backoff: { type: 'exponential', delay: 321 },
        removeOnComplete: 7,
        removeOnFail: 9,
      },
    )
    // Ids come from Bull's counter, one per add.
    expect(Number(theirs.id)).toBe(Number(ours.id) + 1)
    const client = q.connections.client
    const a = await client.hgetall(`${prefix}:transcode:${ours.id}`)
    const b = await client.hgetall(`${prefix}:transcode:${String(theirs.id)}`)
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort())
    const strip = (h: Record<string, string>): Record<string, unknown> => ({
      ...h,
      opts: { ...(JSON.parse(h['opts'] ?? '{}') as Record<string, unknown>), timestamp: 0 },
      data: { ...(JSON.parse(h['data'] ?? '{}') as Record<string, unknown>), dedupeKey: '' },
      timestamp: 0,
    })
    expect(strip(a)).toEqual(strip(b))
    expect(JSON.parse(a['opts'] ?? '{}')).toMatchObject({ priority: 1, attempts: 4, removeOnComplete: 7 })
    expect(await client.zscore(`${prefix}:transcode:priority`, ours.id)).toBe('1')
    expect(await client.lrange(`${prefix}:transcode:paused`, 0, -1)).toEqual([String(theirs.id), ours.id])
    await waitFor(() => waiting.includes(ours.id), "the 'waiting' event of every node")
    expect(await client.get(`${prefix}:transcode:bp:dedupe:${data.dedupeKey}`)).toBe(ours.id)
  })

  it('a failed add leaves no de-duplication key, and the file can be queued once Redis accepts it', async () => {
    const prefix = uniquePrefix('add-fail')
    const q = makeQueue(prefix)
    await q.ready()
    const client = q.connections.client
    // Make Bull's part of the script fail: the waiting list is not a list.
    await client.set(`${prefix}:transcode:wait`, 'not a list')
    const data = jobData()
    await expect(q.add(data)).rejects.toThrow(/WRONGTYPE/)
    expect(await client.exists(`${prefix}:transcode:bp:dedupe:${data.dedupeKey}`)).toBe(0)
    await client.del(`${prefix}:transcode:wait`)
    const again = await q.add(data)
    expect(again.duplicate).toBe(false)
    expect(await q.add(data)).toEqual({ id: again.id, duplicate: true })
  })

  it('releases every key when many jobs end in the same turn, but keeps the key of a job that will be retried', async () => {
    const q = makeQueue(uniquePrefix('batch-release'), { attempts: 2, backoffDelayMs: 1500 })
    const ids: string[] = []
    for (let i = 0; i < 40; i++) ids.push((await q.add(jobData())).id)
    const retried = ids[3]
    const dedupeKeys = async (): Promise<string[]> =>
      q.connections.client.keys(`${q.prefix}:${q.name}:bp:dedupe:*`)
    await q.process(8, (job) =>
      String(job.id) === retried && job.attemptsMade === 0
        ? Promise.reject(new Error('transient'))
        : Promise.resolve('ok'),
    )
    await waitFor(async () => (await q.stats()).completed === 39, '39 completions')
    // The failed attempt waits for its retry (delayed): its key still blocks a copy.
    await waitFor(async () => (await dedupeKeys()).length === 1, 'the other keys released', 5_000)
    const info = await q.get(retried!)
    expect(info?.state).toBe('delayed')
    expect(await q.add(info!.data!)).toEqual({ id: retried, duplicate: true })
    await waitFor(async () => (await q.get(retried!))?.state === 'completed', 'the retry', 10_000)
    await waitFor(async () => (await dedupeKeys()).length === 0, 'its key released', 5_000)
  })

  it('records the node of every job; announces it as active before it completes, never after', async () => {
    const prefix = uniquePrefix('active-order')
    const worker = makeQueue(prefix, { nodeId: 'fast-node' })
    const viewer = makeQueue(prefix, { nodeId: 'viewer' })
    await viewer.ready()
    const seen: string[] = []
    viewer.events.on('active', ({ jobId, node }) => seen.push(`active ${jobId} ${node}`))
    viewer.events.on('completed', ({ jobId }) => seen.push(`completed ${jobId}`))
    const ids: string[] = []
    for (let i = 0; i < 20; i++) ids.push((await viewer.add(jobData())).id)
    // Most handlers return at once (within the worker's batch window: their 'active' would come after the end, so
    // none is sent); every fifth runs 100 ms, long enough to be announced.
    const slow = new Set(ids.filter((_, i) => i % 5 === 0))
    await worker.process(4, (job) =>
      slow.has(String(job.id)) ? new Promise((r) => setTimeout(() => r('ok'), 100)) : Promise.resolve('ok'),
    )
    await waitFor(() => seen.filter((s) => s.startsWith('completed')).length === 20, '20 completions')
    for (const id of ids) {
      const a = seen.indexOf(`active ${id} fast-node`)
      if (slow.has(id)) expect(a, `job ${id}`).toBeGreaterThanOrEqual(0)
      if (a >= 0) expect(a, `job ${id}`).toBeLessThan(seen.indexOf(`completed ${id}`))
      expect((await viewer.get(id))?.node).toBe('fast-node')
    }
    expect(seen.filter((s) => s.startsWith('active')).every((s) => s.endsWith(' fast-node'))).toBe(true)
  })

  it('a cancel requested before the job starts aborts it as soon as the worker sees the request', async () => {
    const prefix = uniquePrefix('cancel-early')
    const q = makeQueue(prefix, { cancelPollMs: 60_000 })
    const { id } = await q.add(jobData())
    // Only the key, as if the message had gone out before this node took the job (no poll within the test).
    await q.connections.client.set(`${prefix}:transcode:bp:cancel:${id}`, '1', 'PX', 60_000)
    let aborted = false
    await q.process(1, (_job, signal) => {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => resolve('ran to the end'), 5_000)
        signal.addEventListener('abort', () => {
          clearTimeout(t)
          aborted = true
          reject(new Error('ffmpeg killed'))
        })
      })
    })
    await waitFor(async () => (await q.get(id))?.state === 'failed', 'the job to be cancelled', 4_000)
    const info = await q.get(id)
    expect(info?.failedReason).toBe('cancelled')
    expect(info?.attemptsMade).toBe(1)
    expect(aborted).toBe(true)
    expect(await q.isCancelRequested(id)).toBe(false)
  })

  it('one cancel check covers every running job', async () => {
    const prefix = uniquePrefix('cancel-poll')
    const q = makeQueue(prefix, { cancelPollMs: 100 })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await q.add(jobData())).id)
    const aborted: string[] = []
    await q.process(3, (job, signal) => {
      return new Promise((_, reject) => {
        signal.addEventListener('abort', () => {
          aborted.push(String(job.id))
          reject(new Error('stopped'))
        })
      })
    })
    await waitFor(() => q.runningJobs().length === 3, 'three running jobs')
    const [first, , third] = ids
    for (const id of [first, third]) {
      await q.connections.client.set(`${prefix}:transcode:bp:cancel:${id}`, '1', 'PX', 60_000)
    }
    await waitFor(() => aborted.length === 2, 'two jobs aborted by the poll')
    expect(aborted.sort()).toEqual([first, third].sort())
    await waitFor(async () => (await q.get(third!))?.failedReason === 'cancelled', 'cancelled')
    await sleep(300)
    expect(q.runningJobs()).toEqual([ids[1]])
  })
})
