/**
 * Routing between "pool" and "my jobs only" nodes, with real nodes (in one process), real Redis and real ffmpeg:
 * a node in `own` mode works only on the jobs it queued, and nobody else takes them; the pool's jobs are left to
 * pool nodes.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BullpenNode } from '../../src/main/core/node'
import { TEST_REDIS_URL, deleteKeys, uniquePrefix, waitFor } from '../helpers/redis'

const media = resolve(__dirname, '..', '..', '..', 'shared', 'media')
const prefix = uniquePrefix('routing')
const nodes: BullpenNode[] = []
let dir: string

async function node(name: string, opts: { mode: 'pool' | 'own'; work: boolean }): Promise<BullpenNode> {
  const n = await BullpenNode.start({
    kind: opts.work ? 'worker' : 'serve',
    name,
    dataDir: join(dir, name),
    redisUrl: TEST_REDIS_URL,
    manageRedis: false,
    prefix,
    work: opts.work,
    serve: true,
    pool: { mode: opts.mode },
  })
  nodes.push(n)
  return n
}

afterAll(async () => {
  for (const n of nodes) await n.stop({ handBack: true }).catch(() => undefined)
  await deleteKeys(TEST_REDIS_URL, prefix)
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('pool and "my jobs only" nodes', () => {
  it('keeps an own-mode node to its own jobs, and its jobs to itself', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bullpen-routing-'))
    const mine = join(dir, 'mine.flv')
    const theirs = join(dir, 'theirs.flv')
    await copyFile(join(media, "te[s]t_ video ' _ .flv"), mine)
    await copyFile(join(media, "te[s]t_ video ' _ .flv"), theirs)

    const own = await node('private', { mode: 'own', work: true })
    const origin = await node('desk', { mode: 'pool', work: false })
    expect(own.queue.name).toBe(`transcode-own-${own.id}`)
    expect(origin.queue.name).toBe('transcode')

    // A pool job while only the own-mode node works: nobody takes it.
    const [j] = await origin.enqueue({ paths: [theirs], spec: { format: 'mp4' }, priority: 'normal' })
    expect(j?.error).toBeNull()
    const tokenKey = `${prefix}:transcode:pool:token:${j?.id}`
    expect(await origin.queue.connections.client.exists(tokenKey)).toBe(1)
    // The own-mode node's job: it does it.
    const [k] = await own.enqueue({ paths: [mine], spec: { format: 'mp4' }, priority: 'normal' })
    const [kDone] = await own.follow([k?.id as string])
    expect(kDone?.state).toBe('completed')
    expect(kDone?.result?.node).toBe('private')
    expect(kDone?.result?.outputPath).toBe(join(dir, 'mine.mp4'))
    // Meanwhile the pool job stayed waiting.
    expect((await origin.view(j?.id as string))?.state).toBe('waiting')
    // Both nodes are in one registry, whatever queue they use.
    expect((await origin.listNodes()).map((n) => n.name).sort()).toEqual(['desk', 'private'])

    // A pool worker joins and takes the pool job (fetching it from the origin: no shared storage declared).
    await node('helper', { mode: 'pool', work: true })
    const [jDone] = await origin.follow([j?.id as string])
    expect(jDone?.state).toBe('completed')
    expect(jDone?.result?.node).toBe('helper')
    expect(jDone?.result?.outputPath).toBe(join(dir, 'theirs.mp4'))
    // Its transfer token is not kept once the job is done.
    await waitFor(
      async () => (await origin.queue.connections.client.exists(tokenKey)) === 0,
      'the token to be deleted',
      5000,
    )
    // The own queue never saw the pool job, nor the pool queue the private one.
    expect((await own.queue.stats()).completed).toBe(1)
    expect((await origin.queue.stats()).completed).toBe(1)
  })
})
