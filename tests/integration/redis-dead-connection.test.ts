/**
 * A worker must never be left with a Redis connection in status `end` (ioredis then fails every command with
 * "Connection is closed." and never reconnects): the worker would log that error every `retryProcessDelay` and take
 * no job again, while the rest of the process looks healthy.
 *
 * The way in found: Bull's local pause (and close) forces its blocking connection to reconnect with `disconnect()`
 * then `connect()`. Done while Redis is away, ioredis keeps the manual-close flag through connect(), so the next
 * failed attempt ends the connection for good. RedisConnections clears the flag on an explicit connect(), and
 * reconnects (loudly) any connection still in use that ends anyway.
 */
import type Redis from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { TranscodeQueue } from '../../src/main/core/queue'
import type { JobData } from '../../src/shared/spec'
import { fakeJobData } from '../helpers/jobs'
import { startRedisServer, uniquePrefix, waitFor } from '../helpers/redis'

function jobData(label: string): JobData {
  return fakeJobData(`/media/in/dead-connection-${label}.mp4`)
}

const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined)
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Bull's three connections of a queue. */
function connectionsOf(q: TranscodeQueue): { client: Redis; subscriber: Redis; bclient: Redis } {
  const b = q.bull as unknown as { client: Redis; eclient: Redis; bclient: Redis }
  return { client: b.client, subscriber: b.eclient, bclient: b.bclient }
}

async function worker(label: string, redisUrl: string): Promise<{ q: TranscodeQueue; ran: string[] }> {
  const q = new TranscodeQueue({
    redisUrl,
    prefix: uniquePrefix(label),
    worker: { lockDuration: 4000, stalledInterval: 2000, retryProcessDelay: 300, drainDelay: 1 },
  })
  cleanups.push(() => q.close({ handBack: true, closeTimeoutMs: 2000 }))
  const ran: string[] = []
  await q.process(1, async (job) => {
    ran.push(String(job.id))
    await sleep(100)
    return 'ok'
  })
  return { q, ran }
}

/** Queues a fresh job and waits until the worker has completed it. */
async function freshJobCompletes(q: TranscodeQueue, label: string, timeoutMs = 30_000): Promise<string> {
  const { id } = await q.add(jobData(label))
  await waitFor(
    async () => (await q.get(id))?.state === 'completed',
    `fresh job ${id} (${label}) to complete; connections ${JSON.stringify(
      Object.fromEntries(Object.entries(connectionsOf(q)).map(([k, c]) => [k, c.status])),
    )}`,
    timeoutMs,
    100,
  )
  return id
}

describe('no Redis connection of a worker stays dead', () => {
  it('a local pause while Redis is away does not kill the blocking connection (deterministic)', async () => {
    const redis = await startRedisServer()
    cleanups.push(() => redis.stop())
    const { q } = await worker('pause-outage', redis.url)
    await freshJobCompletes(q, 'before')

    await redis.kill('SIGKILL')
    await sleep(300) // every connection is now reconnecting
    // Bull disconnects and connects the blocking connection here; with Redis away the pause itself may report the
    // failed reconnection, but it is applied.
    const paused = q.pauseLocal().then(
      () => null,
      (err: unknown) => err,
    )
    await sleep(1500) // several failed connection attempts
    await redis.restart()
    await paused
    await q.resumeLocal()

    await freshJobCompletes(q, 'after')
    expect(connectionsOf(q).bclient.status).toBe('ready')
    await q.obliterate()
  })

  it('a connection ended behind the queue is reconnected, and the worker goes on', async () => {
    const redis = await startRedisServer()
    cleanups.push(() => redis.stop())
    const { q, ran } = await worker('ended', redis.url)
    const completedEvents: string[] = []
    q.events.on('completed', ({ jobId }) => completedEvents.push(jobId))
    await freshJobCompletes(q, 'before')
    const conns = connectionsOf(q)
    for (const kind of ['bclient', 'client', 'subscriber'] as const) {
      // What any stray disconnect() (or an ioredis path that gives up) does: status `end`, no retry of its own.
      const ended = new Promise((r) => conns[kind].once('end', r))
      conns[kind].disconnect()
      await ended
      await waitFor(() => conns[kind].status === 'ready', `${kind} to be reconnected`, 10_000)
      const id = await freshJobCompletes(q, `after-${kind}`)
      // The subscriber came back subscribed: queue events still arrive.
      await waitFor(() => completedEvents.includes(id), `the completed event of job ${id}`, 5000)
    }
    expect(ran).toHaveLength(4)
    await q.obliterate()
  })

  it('stress: Redis killed at varied moments, a fresh job completes after every restart', async () => {
    const redis = await startRedisServer()
    cleanups.push(() => redis.stop())
    const q = new TranscodeQueue({
      redisUrl: redis.url,
      prefix: uniquePrefix('restarts'),
      worker: { lockDuration: 4000, stalledInterval: 2000, retryProcessDelay: 500, drainDelay: 1 },
    })
    cleanups.push(() => q.close({ handBack: true, closeTimeoutMs: 2000 }))
    await q.process(2, async () => {
      await sleep(300 + Math.random() * 1200)
      return 'ok'
    })
    // Moments: idle, mid-job, right after a job was queued, with a local pause during the outage.
    const plans = [
      { busy: 0, before: 200, down: 400, pause: false },
      { busy: 3, before: 700, down: 100, pause: false },
      { busy: 2, before: 0, down: 1500, pause: true },
      { busy: 4, before: 1200, down: 600, pause: false },
      { busy: 1, before: 50, down: 50, pause: true },
    ]
    for (const [round, plan] of plans.entries()) {
      for (let i = 0; i < plan.busy; i++) await q.add(jobData(`busy-${round}-${i}`))
      await sleep(plan.before)
      await redis.kill('SIGKILL')
      let paused = Promise.resolve()
      if (plan.pause) {
        await sleep(300) // the connections are reconnecting
        paused = q.pauseLocal().catch(() => undefined)
      }
      await sleep(plan.down)
      await redis.restart()
      await paused
      if (plan.pause) await q.resumeLocal()
      await freshJobCompletes(q, `round-${round}`)
    }
    await q.obliterate()
  })
})
