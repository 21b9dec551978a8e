/**
 * A worker's local pause on real Redis takes effect at once: a job queued while pauseLocal() is still under way is
 * not taken (Bull's own local pause let the worker's blocking fetch run on for 500 ms and take such a job).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { TranscodeQueue } from '../../src/main/core/queue'
import { fakeJobData } from '../helpers/jobs'
import { TEST_REDIS_URL, uniquePrefix, waitFor } from '../helpers/redis'

const queues: TranscodeQueue[] = []
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function makeQueue(prefix: string): TranscodeQueue {
  const q = new TranscodeQueue({ redisUrl: TEST_REDIS_URL, prefix, name: 'transcode', nodeId: 'node-a' })
  queues.push(q)
  return q
}

afterEach(async () => {
  const qs = queues.splice(0)
  await Promise.all(qs.map((q) => q.close({ handBack: true })))
  for (const prefix of new Set(qs.map((q) => q.prefix))) {
    const cleaner = new TranscodeQueue({ redisUrl: TEST_REDIS_URL, prefix })
    await cleaner.obliterate()
    await cleaner.close()
  }
})

describe('pauseLocal', () => {
  it('takes no job queued while the pause is under way, and takes it once resumed', async () => {
    const prefix = uniquePrefix('pause')
    const worker = makeQueue(prefix)
    const producer = makeQueue(prefix)
    const taken: string[] = []
    await worker.process(1, async (job) => {
      taken.push(job.data.input.path)
      return Promise.resolve({ ok: true })
    })
    // The worker is idle, blocked in its fetch, when the pause comes.
    await producer.add(fakeJobData('/m/warm-up.mp4'))
    await waitFor(async () => (await producer.stats()).completed === 1, 'the warm-up job')
    await sleep(200)

    for (let round = 0; round < 3; round++) {
      const pausing = worker.pauseLocal()
      await sleep(50)
      const path = `/m/during-pause-${round}.mp4`
      const { id } = await producer.add(fakeJobData(path))
      await pausing
      await sleep(1000)
      expect(taken).not.toContain(path)
      expect((await producer.get(id))?.state).toBe('waiting')
      await worker.resumeLocal()
      await waitFor(async () => (await producer.get(id))?.state === 'completed', `job ${id} after the resume`)
      expect(taken).toContain(path)
      await sleep(200)
    }
  })
})
