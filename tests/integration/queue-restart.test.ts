/**
 * Redis dies (SIGKILL) in the middle of a batch and comes back on the same data: the worker must reconnect by
 * itself and finish every job (Bull #2417 reports workers that silently stop after a reconnect).
 */
import { afterAll, describe, expect, it } from 'vitest'
import type { ConnectionState } from '../../src/main/core/redis'
import { TranscodeQueue } from '../../src/main/core/queue'
import type { JobData } from '../../src/shared/spec'
import { fakeJobData } from '../helpers/jobs'
import { startRedisServer, uniquePrefix, waitFor, type RedisServerHandle } from '../helpers/redis'

function jobData(i: number): JobData {
  return fakeJobData(`/media/in/restart-${i}.mp4`)
}

const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined)
})

describe('Redis restart', () => {
  // 1.5 s: locks survive the outage. 5 s: they expire meanwhile, and the stalled-job check must bring the jobs back.
  it.each([1500, 5000])(
    'after %i ms down the worker reconnects by itself; every job completes, none lost',
    async (downMs) => {
      // appendfsync always: this test is about the worker coming back, not about the last second AOF may lose.
      const redis: RedisServerHandle = await startRedisServer({ appendfsync: 'always' })
      cleanups.push(() => redis.stop())
      const queueOptions = {
        redisUrl: redis.url,
        prefix: uniquePrefix('restart'),
        worker: { lockDuration: 3000, stalledInterval: 1000, retryProcessDelay: 300, drainDelay: 1 },
      }
      const q = new TranscodeQueue(queueOptions)
      cleanups.push(() => q.close({ handBack: true }))
      const states: ConnectionState[] = []
      q.events.on('connection', ({ state }) => states.push(state))
      const stalled: string[] = []
      q.events.on('stalled', ({ jobId }) => stalled.push(jobId))

      const N = 24
      const ids: string[] = []
      for (let i = 0; i < N; i++) ids.push((await q.add(jobData(i))).id)
      const runs = new Map<string, number>()
      await q.process(2, async (job) => {
        runs.set(String(job.id), (runs.get(String(job.id)) ?? 0) + 1)
        await new Promise((r) => setTimeout(r, 150))
        return { ok: job.id }
      })
      const completedCount = async (): Promise<number> => (await q.stats()).completed
      await waitFor(async () => (await completedCount()) >= 5, 'five completions before the crash')

      await redis.kill('SIGKILL')
      const doneAtCrash = runs.size
      expect(doneAtCrash).toBeLessThan(N)
      await new Promise((r) => setTimeout(r, downMs))
      await redis.restart()

      await waitFor(
        async () => (await completedCount()) === N,
        `all ${N} jobs to complete after the restart`,
        60_000,
        200,
      ).catch(async (err: unknown) => {
        throw new Error(`${String(err)}; stats ${JSON.stringify(await q.stats())}\n${await redis.logTail()}`)
      })
      const completed = await q.list('completed', { limit: 100 })
      expect(completed.items.map((j) => j.id).sort()).toEqual([...ids].sort())
      expect(await q.stats()).toMatchObject({ waiting: 0, active: 0, failed: 0, delayed: 0 })
      expect(states.slice(-3)).toEqual(['down', 'reconnecting', 'ready'])
      // The worker kept going after the restart: jobs ran after it, not only the ones in flight at the crash.
      expect(runs.size).toBe(N)
      // Outages longer than the lock: the jobs in flight lost their locks and came back through the stalled check.
      if (downMs > 3000) expect(stalled.length).toBeGreaterThan(0)

      await q.obliterate()
    },
  )

  it('closes within bounds while Redis is down, and the job it held is recovered afterwards', async () => {
    const redis = await startRedisServer({ appendfsync: 'always' })
    cleanups.push(() => redis.stop())
    const options = {
      redisUrl: redis.url,
      prefix: uniquePrefix('down-close'),
      worker: { lockDuration: 2000, stalledInterval: 1000, retryProcessDelay: 300, drainDelay: 1 },
    }
    const q = new TranscodeQueue(options)
    const { id } = await q.add(jobData(0))
    let started!: () => void
    const running = new Promise<void>((r) => (started = r))
    await q.process(1, (_job, signal) => {
      started()
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))))
    })
    await running
    await redis.kill('SIGKILL')
    const t0 = Date.now()
    await q.close({ handBack: true, closeTimeoutMs: 1500 })
    expect(Date.now() - t0).toBeLessThan(6000)

    await redis.restart()
    const other = new TranscodeQueue(options)
    cleanups.push(() => other.close({ handBack: true }))
    await other.process(1, () => Promise.resolve('recovered'))
    await waitFor(
      async () => (await other.get(id))?.state === 'completed',
      'the stranded job to complete',
      20_000,
    )
    await other.obliterate()
  })

  it('an idle worker blocked on an empty queue takes new jobs after Redis restarts (Bull #2417)', async () => {
    const redis = await startRedisServer({ appendfsync: 'always' })
    cleanups.push(() => redis.stop())
    const q = new TranscodeQueue({
      redisUrl: redis.url,
      prefix: uniquePrefix('idle'),
      worker: { retryProcessDelay: 300, drainDelay: 2 },
    })
    cleanups.push(() => q.close({ handBack: true }))
    const ran: string[] = []
    await q.process(1, (job) => {
      ran.push(String(job.id))
      return Promise.resolve('ok')
    })
    await new Promise((r) => setTimeout(r, 300)) // the worker is now blocked in BRPOPLPUSH
    await redis.kill('SIGKILL')
    await new Promise((r) => setTimeout(r, 1000))
    await redis.restart()
    await waitFor(() => q.connections.state === 'ready', 'reconnection')
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await q.add(jobData(100 + i))).id)
    await waitFor(() => ran.length === 3, 'the idle worker to take the new jobs', 20_000)
    expect(ran.sort()).toEqual(ids.sort())
    await q.obliterate()
  })
})
