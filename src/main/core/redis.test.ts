import { describe, expect, it } from 'vitest'
import {
  DEFAULT_REDIS_URL,
  describeRedisUrl,
  parseRedisUrl,
  reconnectDelay,
  redisOptions,
  resolveRedisUrl,
} from './redis'
import { RedisUnavailableError } from './errors'

describe('resolveRedisUrl', () => {
  const env = { BULLPEN_REDIS_URL: 'redis://env:6379' }
  it('takes the flag, then settings, then the environment, then the default', () => {
    expect(resolveRedisUrl({ flag: 'redis://flag:1', settings: 'redis://set:2', env })).toBe('redis://flag:1')
    expect(resolveRedisUrl({ settings: 'redis://set:2', env })).toBe('redis://set:2')
    expect(resolveRedisUrl({ flag: '  ', settings: '', env })).toBe('redis://env:6379')
    expect(resolveRedisUrl({ env: {} })).toBe(DEFAULT_REDIS_URL)
  })
})

describe('parseRedisUrl / describeRedisUrl', () => {
  it('reads host, port, TLS, user, password and db', () => {
    expect(parseRedisUrl('rediss://alice:p%40ss@redis.example.com:6380/3')).toEqual({
      host: 'redis.example.com',
      port: 6380,
      tls: true,
      username: 'alice',
      password: 'p@ss',
      db: 3,
    })
    expect(parseRedisUrl('redis://:secret@10.0.0.5')).toMatchObject({
      port: 6379,
      username: undefined,
      password: 'secret',
      db: 0,
      tls: false,
    })
    expect(parseRedisUrl('redis://[::1]:7000')).toMatchObject({ host: '::1', port: 7000 })
  })

  it('refuses what is not a Redis URL, with the password masked', () => {
    expect(() => parseRedisUrl('http://u:topsecret@host:1')).toThrow(RedisUnavailableError)
    expect(() => parseRedisUrl('http://u:topsecret@host:1')).not.toThrow(/topsecret/)
    expect(() => parseRedisUrl('localhost:6379')).toThrow(/redis:\/\//)
    expect(() => parseRedisUrl('redis://host/abc')).toThrow(/database/)
  })

  it('masks the password for messages and logs', () => {
    expect(describeRedisUrl('rediss://alice:topsecret@host:6380/2')).toBe('rediss://alice:***@host:6380/2')
    expect(describeRedisUrl('redis://:topsecret@host')).toBe('redis://:***@host')
    expect(describeRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379')
    expect(describeRedisUrl('redis://u:top secret@ho st')).not.toContain('top secret')
  })
})

describe('redisOptions', () => {
  it('follows Bull: no ready check and no per-request retry limit for bclient/subscriber', () => {
    for (const kind of ['bclient', 'subscriber'] as const) {
      const o = redisOptions('redis://127.0.0.1:6379', kind)
      expect(o.enableReadyCheck).toBe(false)
      expect(o.maxRetriesPerRequest).toBeNull()
    }
    const c = redisOptions('rediss://u:pw@h:1/4', 'client')
    expect(c).toMatchObject({
      host: 'h',
      port: 1,
      db: 4,
      username: 'u',
      password: 'pw',
      tls: { servername: 'h' },
    })
    expect(c.maxRetriesPerRequest).toBeNull()
  })

  it('keeps reconnecting with a capped backoff', () => {
    const delays = [1, 2, 3, 5, 10, 100, 10_000].map(reconnectDelay)
    expect(delays[0]).toBe(100)
    expect(delays[1]).toBe(200)
    expect(delays.every((d) => d > 0 && d <= 3000)).toBe(true)
    expect(delays.at(-1)).toBe(3000)
    expect(redisOptions(DEFAULT_REDIS_URL, 'client').retryStrategy?.(50)).toBe(3000)
  })
})
