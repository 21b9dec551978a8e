/**
 * The serving node's inbox (browser uploads) is swept: an old upload no unfinished or failed job needs goes, every
 * other file stays. Real Redis, real jobs in each state, real files with real modification times.
 */
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BullpenNode } from '../../src/main/core/node'
import { ownQueueName } from '../../src/main/core/pool/routing'
import { TranscodeQueue } from '../../src/main/core/queue'
import { sweepInbox } from '../../src/main/core/server/inbox'
import { serveNode } from '../../src/main/core/server/serve'
import { fakeJobData } from '../helpers/jobs'
import { TEST_REDIS_URL, uniquePrefix, waitFor } from '../helpers/redis'

const DAY = 24 * 3600_000
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function workDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bullpen-inbox-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A file whose modification time is `ageMs` ago. */
async function file(path: string, ageMs: number): Promise<string> {
  await writeFile(path, 'x')
  const t = new Date(Date.now() - ageMs)
  await utimes(path, t, t)
  return path
}

describe('sweepInbox', () => {
  it('removes old uploads no waiting, active, delayed or failed job needs, and nothing else', async () => {
    const dir = await workDir()
    const inbox = join(dir, 'inbox')
    await mkdir(inbox)
    const old = 8 * DAY
    const unused = await file(join(inbox, 'unused.mp4'), old)
    const ofDone = await file(join(inbox, 'done.mp4'), old)
    const ofFailed = await file(join(inbox, 'fail.mp4'), old)
    const ofActive = await file(join(inbox, 'busy.mp4'), old)
    const ofWaiting = await file(join(inbox, 'waiting.mp4'), old)
    const recent = await file(join(inbox, 'recent.mp4'), 1 * DAY)
    const deadPart = await file(join(inbox, '.upload-0123456789abcdef.part'), 2 * 3600_000)
    const livePart = await file(join(inbox, '.upload-fedcba9876543210.part'), 60_000)
    // Any old regular file in the inbox counts as an upload, whatever its name.
    const oddName = await file(join(inbox, '.upload-notours.part'), old)
    await mkdir(join(inbox, 'a folder'))
    const outside = await file(join(dir, 'outside.mp4'), old)
    await symlink(outside, join(inbox, 'link.mp4'))

    const prefix = uniquePrefix('inbox')
    const queue = new TranscodeQueue({ redisUrl: TEST_REDIS_URL, prefix, nodeId: 'node-a', attempts: 1 })
    cleanups.push(async () => {
      await queue.close({ handBack: true })
      const cleaner = new TranscodeQueue({ redisUrl: TEST_REDIS_URL, prefix })
      await cleaner.obliterate()
      await cleaner.close()
    })
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    cleanups.push(() => Promise.resolve(release()))
    for (const path of [ofDone, ofFailed, ofActive]) await queue.add(fakeJobData(path))
    await queue.process(1, async (job) => {
      const p = job.data.input.path
      if (p === ofFailed) throw new Error('broken on purpose')
      if (p === ofActive) await held
      return { ok: true }
    })
    await waitFor(async () => (await queue.stats()).active === 1, 'the busy job to be active')
    await queue.add(fakeJobData(ofWaiting))
    const s = await queue.stats()
    expect([s.completed, s.failed, s.active, s.waiting]).toEqual([1, 1, 1, 1])

    const removed = await sweepInbox({
      dir: inbox,
      keepMs: 7 * DAY,
      inUse: () => queue.inputPaths(['delayed', 'paused', 'waiting', 'active', 'failed']),
    })
    expect(removed.sort()).toEqual([deadPart, oddName, ofDone, unused].sort())
    expect((await readdir(inbox)).sort()).toEqual(
      [
        'a folder',
        'busy.mp4',
        'fail.mp4',
        'link.mp4',
        'recent.mp4',
        'waiting.mp4',
        '.upload-fedcba9876543210.part',
      ].sort(),
    )
    expect(await readdir(dir)).toContain('outside.mp4')
    void [recent, livePart]
  })

  it('keeps a needed file when the inbox is reached through a link (jobs hold real paths)', async () => {
    const dir = await workDir()
    await mkdir(join(dir, 'disk2', 'inbox'), { recursive: true })
    await symlink(join(dir, 'disk2', 'inbox'), join(dir, 'inbox'))
    const needed = await file(join(dir, 'disk2', 'inbox', 'needed.mp4'), 30 * DAY)
    await file(join(dir, 'disk2', 'inbox', 'unneeded.mp4'), 30 * DAY)
    const real = await realpath(needed)
    const removed = await sweepInbox({
      dir: join(dir, 'inbox'),
      keepMs: DAY,
      inUse: () => Promise.resolve(new Set([real])),
    })
    expect(removed).toEqual([join(dir, 'inbox', 'unneeded.mp4')])
    expect(await readdir(join(dir, 'disk2', 'inbox'))).toEqual(['needed.mp4'])
  })

  it('deletes nothing when it cannot tell which files jobs need (Redis away)', async () => {
    const dir = await workDir()
    const old = await file(join(dir, 'old.mp4'), 30 * DAY)
    const err = await sweepInbox({
      dir,
      keepMs: DAY,
      inUse: () => Promise.reject(new Error('Connection is closed.')),
    }).catch((e: unknown) => e)
    expect(String(err)).toContain('Connection is closed')
    expect(await readdir(dir)).toEqual(['old.mp4'])
    void old
  })

  it('a serving node sweeps its inbox when it starts', async () => {
    const dir = await workDir()
    const inbox = join(dir, 'data', 'inbox')
    await mkdir(inbox, { recursive: true })
    await file(join(inbox, 'stale.mp4'), 2 * DAY)
    await file(join(inbox, 'fresh.mp4'), 0)
    const ownJobs = await file(join(inbox, 'own.mp4'), 2 * DAY)
    const tag = uniquePrefix('inbox-serve')
    const node = await BullpenNode.start({
      kind: 'serve',
      dataDir: join(dir, 'data'),
      redisUrl: TEST_REDIS_URL,
      manageRedis: false,
      work: false,
      prefix: tag,
      name: 'inbox-node',
    })
    cleanups.push(async () => {
      await node.stop()
      const cleaner = new TranscodeQueue({ redisUrl: TEST_REDIS_URL, prefix: tag })
      await cleaner.obliterate()
      await cleaner.close()
    })
    // A job queued while the node was in "my jobs only" mode waits in its own queue until that mode is back.
    const own = new TranscodeQueue({
      redisUrl: TEST_REDIS_URL,
      prefix: tag,
      name: ownQueueName('transcode', node.id),
      nodeId: node.id,
    })
    cleanups.push(() => own.close())
    await own.add(fakeJobData(await realpath(ownJobs)))
    const served = await serveNode(node, { port: 0, inboxKeepMs: DAY })
    cleanups.push(() => served.close())
    await waitFor(async () => !(await readdir(inbox)).includes('stale.mp4'), 'the stale upload to go')
    expect((await readdir(inbox)).sort()).toEqual(['fresh.mp4', 'own.mp4'])
  })
})
