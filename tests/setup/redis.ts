/**
 * vitest global setup: the tests that share a Redis use 127.0.0.1:6379 when it answers (as on CI); on a machine
 * without one, a private redis-server is started for the run, so `npm test` needs nothing but the packages.
 */
import { Redis } from 'ioredis'
import { startRedisServer, type RedisServerHandle } from '../helpers/redis'

async function answers(url: string): Promise<boolean> {
  const r = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
  })
  r.on('error', () => undefined)
  try {
    await r.connect()
    return (await r.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}

let own: RedisServerHandle | undefined

export async function setup(): Promise<void> {
  const url = process.env['BULLPEN_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379'
  if (await answers(url)) return
  own = await startRedisServer({ appendonly: false })
  process.env['BULLPEN_TEST_REDIS_URL'] = own.url
}

export async function teardown(): Promise<void> {
  await own?.stop()
}
