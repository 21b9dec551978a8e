import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  NodeRegistry,
  readNodes,
  registryKeys,
  type NodeAnnouncement,
} from '../../src/main/core/pool/registry'
import { TEST_REDIS_URL, deleteKeys, uniquePrefix, waitFor } from '../helpers/redis'

const prefix = uniquePrefix('registry')
const keyPrefix = `${prefix}:transcode`
let redis: Redis

function announce(id: string, patch: Partial<NodeAnnouncement> = {}): NodeAnnouncement {
  return {
    id,
    name: `node ${id}`,
    host: 'host-a',
    kind: 'worker',
    concurrency: 2,
    active: 0,
    paused: false,
    ffmpegVersion: '6.1',
    encoders: ['libx264', 'aac'],
    fileServiceUrl: 'http://127.0.0.1:7420',
    sharedFolders: [{ name: 'media', path: '/mnt/media' }],
    mode: 'pool',
    startedAt: Date.now(),
    ...patch,
  }
}

beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL)
})
afterAll(async () => {
  await deleteKeys(TEST_REDIS_URL, prefix)
  redis.disconnect()
})

describe('NodeRegistry', () => {
  it("a CLI process of a data folder whose worker runs leaves that worker's entry alone, and its exit removes nothing", async () => {
    const worker = new NodeRegistry({
      redis,
      keyPrefix,
      self: announce('node-f', { active: 1, paused: true }),
    })
    const cli = new NodeRegistry({ redis, keyPrefix, self: announce('node-f', { kind: 'cli', active: 2 }) })
    await worker.start()
    await cli.start()
    await cli.update({ active: 1 })
    expect(await worker.getNode('node-f')).toMatchObject({ kind: 'worker', active: 1, paused: true })
    await cli.deregister()
    expect(await worker.getNode('node-f')).toMatchObject({ kind: 'worker' })
    await worker.deregister()
    // Alone, a CLI process registers (its files are served from it) and deregisters as before.
    await cli.start()
    expect(await worker.getNode('node-f')).toMatchObject({ kind: 'cli', active: 1 })
    await cli.deregister()
    expect(await worker.getNode('node-f')).toBeNull()
  })

  it('registers, lists with every field, updates, counts completions and deregisters', async () => {
    const a = new NodeRegistry({ redis, keyPrefix, self: announce('node-a'), heartbeatMs: 1000 })
    const b = new NodeRegistry({
      redis,
      keyPrefix,
      self: announce('node-b', { name: 'Bee', kind: 'desktop' }),
    })
    await a.start()
    await b.start()
    const infos = await a.listNodes()
    // Sorted by name: "Bee" before "node node-a".
    expect(infos.map((n) => n.id)).toEqual(['node-b', 'node-a'])
    const selfInfo = infos.find((n) => n.id === 'node-a')
    expect(selfInfo).toMatchObject({
      isSelf: true,
      concurrency: 2,
      encoders: ['libx264', 'aac'],
      kind: 'worker',
    })
    expect(infos.find((n) => n.id === 'node-b')?.isSelf).toBe(false)

    const rec = await b.getNode('node-a')
    expect(rec?.fileServiceUrl).toBe('http://127.0.0.1:7420')
    expect(rec?.sharedFolders).toEqual([{ name: 'media', path: '/mnt/media' }])

    await a.update({ active: 1, paused: true })
    expect(await b.getNode('node-a')).toMatchObject({ active: 1, paused: true })

    await a.recordCompletion('1')
    await a.recordCompletion('2')
    await a.recordCompletion('3', Date.now() - 2 * 3_600_000) // older than an hour: not counted
    const again = await b.listNodes()
    expect(again.find((n) => n.id === 'node-a')?.completedLastHour).toBe(2)
    expect(again.find((n) => n.id === 'node-b')?.completedLastHour).toBe(0)

    await b.deregister()
    expect((await a.listNodes()).map((n) => n.id)).toEqual(['node-a'])
    await a.deregister()
    expect(await readNodes(redis, keyPrefix)).toEqual([])
  })

  it('lets a process remove only the entry it wrote (two processes of one data folder share an id)', async () => {
    const first = new NodeRegistry({ redis, keyPrefix, self: announce('node-shared', { name: 'first' }) })
    const second = new NodeRegistry({ redis, keyPrefix, self: announce('node-shared', { name: 'second' }) })
    await first.start()
    await second.start() // the entry is now the second process's
    await first.deregister()
    expect((await readNodes(redis, keyPrefix)).map((n) => n.name)).toEqual(['second'])
    await second.deregister()
    expect(await readNodes(redis, keyPrefix)).toEqual([])
  })

  it('drops a node that stops beating after about three missed beats', async () => {
    const a = new NodeRegistry({ redis, keyPrefix, self: announce('node-silent'), heartbeatMs: 200 })
    await a.start()
    const t0 = Date.now()
    // Simulate a crash: the timer stops, nothing is removed.
    ;(a as unknown as { timer: NodeJS.Timeout }).timer.unref()
    clearInterval((a as unknown as { timer: NodeJS.Timeout }).timer)
    expect((await readNodes(redis, keyPrefix)).map((n) => n.id)).toContain('node-silent')
    await waitFor(
      async () => (await readNodes(redis, keyPrefix)).length === 0,
      'the silent node to drop out',
      3000,
    )
    const elapsed = Date.now() - t0
    expect(elapsed).toBeGreaterThanOrEqual(400)
    expect(elapsed).toBeLessThan(1500)
    // Its id was pruned from the index too.
    expect(await redis.smembers(registryKeys(keyPrefix).index)).toEqual([])
  })

  it('skips hostile or malformed entries and keeps the valid ones', async () => {
    const good = new NodeRegistry({ redis, keyPrefix, self: announce('node-good') })
    await good.start()
    const k = registryKeys(keyPrefix)
    const hostile: Record<string, Record<string, string>> = {
      'node-evil1': { ...flat(announce('node-evil1')), encoders: '{"not":"an array"}' },
      'node-evil2': { ...flat(announce('node-evil2')), fileServiceUrl: 'http://x:1/../../etc?q=1' },
      'node-evil3': { ...flat(announce('node-evil3')), id: 'someone-else' },
      'node-evil4': { ...flat(announce('node-evil4')), name: 'bad\u0007name' },
      'node-evil5': { ...flat(announce('node-evil5')), concurrency: '-1' },
      'node-evil6': { ...flat(announce('node-evil6')), sharedFolders: '[{"name":"m","path":"relative/p"}]' },
    }
    for (const [id, hash] of Object.entries(hostile)) {
      await redis.hset(k.node(id), hash)
      await redis.sadd(k.index, id)
    }
    await redis.sadd(k.index, '../../weird id')
    const nodes = await good.listNodes()
    expect(nodes.map((n) => n.id)).toEqual(['node-good'])
    await good.deregister()
  })
})

function flat(a: NodeAnnouncement): Record<string, string> {
  return {
    id: a.id,
    name: a.name,
    host: a.host,
    kind: a.kind,
    concurrency: String(a.concurrency),
    active: String(a.active),
    paused: '0',
    ffmpegVersion: a.ffmpegVersion,
    encoders: JSON.stringify(a.encoders),
    fileServiceUrl: a.fileServiceUrl ?? '',
    sharedFolders: JSON.stringify(a.sharedFolders),
    mode: a.mode,
    startedAt: String(a.startedAt),
    lastSeen: String(Date.now()),
  }
}
