/**
 * ensureRedis on real servers: an answering one, a managed start on a free port in a temp dir, and the failures a
 * person must be told about (nothing there, wrong password, TLS mismatch) with the password masked.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { RedisUnavailableError } from '../../src/main/core/errors'
import { ensureRedis, findOnPath, pingRedis, RedisConnections } from '../../src/main/core/redis'
import { TEST_REDIS_URL, freePort, startRedisServer, waitFor } from '../helpers/redis'

const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined)
})

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'bullpen-data-'))
  cleanups.push(() => rm(d, { recursive: true, force: true }))
  return d
}

async function failureOf(p: Promise<unknown>): Promise<RedisUnavailableError> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(RedisUnavailableError)
    return err as RedisUnavailableError
  }
  throw new Error('expected a RedisUnavailableError')
}

describe('ensureRedis', () => {
  it('accepts a server that answers, and starts nothing', async () => {
    const dataDir = await tempDir()
    const r = await ensureRedis({ url: TEST_REDIS_URL, dataDir })
    expect(r.started).toBe(false)
  })

  it('refuses a database the server does not have, instead of quietly using database 0', async () => {
    const dataDir = await tempDir()
    expect((await ensureRedis({ url: `${TEST_REDIS_URL}/15`, dataDir })).started).toBe(false)
    const e = await failureOf(ensureRedis({ url: `${TEST_REDIS_URL}/99`, dataDir, manage: false }))
    expect(e.message).toMatch(/answers, but not for that database: ERR DB index is out of range/)
  })

  it('starts a managed redis-server (AOF, own dir) for the local default URL when none answers', async () => {
    const dataDir = await tempDir()
    const port = await freePort()
    const url = `redis://127.0.0.1:${port}`
    expect((await pingRedis(url, 500)).ok).toBe(false)
    const r = await ensureRedis({ url, dataDir, managedPort: port })
    const dir = join(dataDir, 'redis')
    const pid = Number((await readFile(join(dir, 'redis.pid'), 'utf8')).trim())
    cleanups.push(async () => {
      process.kill(pid, 'SIGTERM')
      await waitFor(() => {
        try {
          process.kill(pid, 0)
          return false
        } catch {
          return true
        }
      }, 'managed redis-server to exit')
    })
    expect(r).toEqual({ url, started: true, managedDir: dir })
    const c = new Redis(url)
    try {
      expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'yes'])
      expect(await c.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec'])
      expect(await c.config('GET', 'dir')).toEqual(['dir', dir])
      await c.set('persisted', '1')
    } finally {
      c.disconnect()
    }
    expect((await stat(join(dir, 'redis.log'))).isFile()).toBe(true)
    // A second call finds it running.
    expect((await ensureRedis({ url, dataDir, managedPort: port })).started).toBe(false)
  })

  it('says what to install or set when a non-default URL does not answer', async () => {
    const port = await freePort()
    const err = await failureOf(
      ensureRedis({ url: `redis://:pw123456@127.0.0.1:${port}`, dataDir: await tempDir() }),
    )
    expect(err.message).toContain(`redis://:***@127.0.0.1:${port}`)
    expect(err.message).not.toContain('pw123456')
    expect(err.message).toMatch(/apt install redis-server/)
    expect(err.message).toMatch(/brew install redis/)
    expect(err.message).toMatch(/Memurai/)
    expect(err.message).toMatch(/BULLPEN_REDIS_URL/)
  })

  it('does not start one when managing is off, or when no redis-server can be run', async () => {
    const port = await freePort()
    const url = `redis://127.0.0.1:${port}`
    const off = await failureOf(
      ensureRedis({ url, dataDir: await tempDir(), managedPort: port, manage: false }),
    )
    expect(off.message).toMatch(/turned off/)
    const missing = await failureOf(
      ensureRedis({
        url,
        dataDir: await tempDir(),
        managedPort: port,
        redisServer: '/nonexistent/redis-server',
      }),
    )
    expect(missing.message).toMatch(/Could not start \/nonexistent\/redis-server/)
    expect(await findOnPath('redis-server', '')).toBeUndefined()
    expect((await pingRedis(url, 300)).ok).toBe(false)
  })

  it('reports a wrong or missing password as such, with the password masked', async () => {
    const server = await startRedisServer({ password: 'right-one', appendonly: false })
    cleanups.push(() => server.stop())
    const wrong = `redis://:hunter2x@127.0.0.1:${server.port}`
    const err = await failureOf(ensureRedis({ url: wrong, dataDir: await tempDir() }))
    expect(err.message).toMatch(/refused the credentials/)
    expect(err.message).not.toContain('hunter2x')
    expect(err.message).toContain('***')
    const none = await failureOf(
      ensureRedis({ url: `redis://127.0.0.1:${server.port}`, dataDir: await tempDir() }),
    )
    expect(none.message).toMatch(/credentials|password/)
    expect((await ensureRedis({ url: server.url, dataDir: await tempDir() })).started).toBe(false)
  })

  it('reports TLS failures as such', async () => {
    const port = new URL(TEST_REDIS_URL).port || '6379'
    const err = await failureOf(
      ensureRedis({
        url: `rediss://:sekrit99@127.0.0.1:${port}`,
        dataDir: await tempDir(),
        pingTimeoutMs: 2000,
      }),
    )
    expect(err.message).toMatch(/^TLS connection to Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1/)
    expect(err.message).not.toContain('sekrit99')
  })
})

describe('RedisConnections', () => {
  it('shares client and subscriber, makes a new bclient each time, and closes them all', async () => {
    const conns = new RedisConnections(TEST_REDIS_URL)
    const client = conns.createClient('client')
    expect(conns.createClient('client')).toBe(client)
    expect(conns.createClient('subscriber')).toBe(conns.subscriber)
    const b1 = conns.createClient('bclient')
    const b2 = conns.createClient('bclient')
    expect(b1).not.toBe(b2)
    expect(b1.options.enableReadyCheck).toBe(false)
    expect(b1.options.maxRetriesPerRequest).toBeNull()
    const states: string[] = []
    conns.onState((s) => states.push(s))
    await waitFor(() => conns.state === 'ready', 'ready')
    expect(await client.ping()).toBe('PONG')
    await conns.close()
    for (const c of [client, b1, b2])
      await waitFor(() => c.status === 'end', `${c.options.connectionName} to end`)
    expect(() => conns.createClient('client')).toThrow(RedisUnavailableError)
  })
})
