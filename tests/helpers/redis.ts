/**
 * Test helpers for real Redis: the shared test server's URL, unique queue prefixes, free ports, and a private
 * `redis-server` (own port, own temp dir, AOF) that a test can SIGKILL and restart on the same data — for crash and
 * restart tests.
 *
 * ```ts
 * const redis = await startRedisServer()          // AOF on, temp dir, free port
 * …use redis.url…
 * await redis.kill()                              // SIGKILL, like a crash
 * await redis.restart()                           // same port, same dir: the AOF is replayed
 * await redis.stop()                              // shut down and delete the temp dir (call in afterEach/afterAll)
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'

/** The Redis the ordinary tests use (the machine's server; override with BULLPEN_TEST_REDIS_URL). */
export const TEST_REDIS_URL = process.env['BULLPEN_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379'

/** A key prefix no other test uses, e.g. `bptest-queue-k3x9…`. Use it as the Bull prefix of a test queue. */
export function uniquePrefix(label = 'test'): string {
  return `bptest-${label}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Waits until `fn` returns true (polling every `intervalMs`), or throws after `timeoutMs` with `what`. */
export async function waitFor(
  fn: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await fn()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Deletes every key under `prefix:` on `url` (for prefixes a test created by hand). */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 })
  let n = 0
  try {
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) n += await r.del(...keys)
    } while (cursor !== '0')
  } finally {
    r.disconnect()
  }
  return n
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Data directory; default a new temp dir, deleted by `stop()`. */
  dir?: string
  /** Port; default a free one. */
  port?: number
  /** AOF on (default true). */
  appendonly?: boolean
  /** `always` | `everysec` (default) | `no`. */
  appendfsync?: 'always' | 'everysec' | 'no'
  /** Require this password (`--requirepass`). */
  password?: string
  /** Further `redis-server` arguments. */
  extraArgs?: string[]
  /** The binary (default `redis-server` on PATH). */
  bin?: string
}

/** A private redis-server started by a test. */
export interface RedisServerHandle {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` (with the password when one was set). */
  readonly url: string
  readonly dir: string
  /** PID of the running server, undefined while it is down. */
  readonly pid: number | undefined
  /** Kills the server (default SIGKILL: a crash, nothing flushed beyond what AOF already has) and waits for it. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port and dir (after `kill`), and waits until it answers. */
  restart(): Promise<void>
  /** Stops it (SIGTERM) and deletes the dir if this helper created it. Idempotent. */
  stop(): Promise<void>
  /** The last lines of its log (for failure messages). */
  logTail(lines?: number): Promise<string>
}

/** Starts a private `redis-server` on 127.0.0.1 and waits until it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const ownDir = options.dir === undefined
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'bullpen-redis-')))
  const port = options.port ?? (await freePort())
  const host = '127.0.0.1'
  const bin = options.bin ?? 'redis-server'
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`
  const url = `redis://${auth}${host}:${port}`
  const logfile = join(dir, 'redis.log')
  const args = [
    '--port',
    String(port),
    '--bind',
    host,
    '--dir',
    dir,
    '--appendonly',
    options.appendonly === false ? 'no' : 'yes',
    '--appendfsync',
    options.appendfsync ?? 'everysec',
    '--save',
    '',
    '--daemonize',
    'no',
    '--logfile',
    logfile,
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
    ...(options.extraArgs ?? []),
  ]

  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let stopped = false

  const logTail = async (lines = 15): Promise<string> =>
    readFile(logfile, 'utf8')
      .then((t) => t.trim().split('\n').slice(-lines).join('\n'))
      .catch(() => '(no log)')

  const launch = async (): Promise<void> => {
    const c = spawn(bin, args, { stdio: 'ignore' })
    child = c
    exited = new Promise((resolve) => c.once('exit', () => resolve()))
    c.once('exit', () => {
      if (child === c) child = undefined
    })
    const spawnError = new Promise<never>((_, reject) => c.once('error', reject))
    const probe = new Redis({
      host,
      port,
      ...(options.password === undefined ? {} : { password: options.password }),
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    })
    probe.on('error', () => undefined)
    try {
      await Promise.race([
        spawnError,
        waitFor(
          async () => {
            if (!child) throw new Error(`redis-server exited at start:\n${await logTail()}`)
            try {
              if (probe.status !== 'ready') await probe.connect()
              return (await probe.ping()) === 'PONG'
            } catch {
              probe.disconnect()
              return false
            }
          },
          `redis-server on port ${port}`,
          15_000,
          50,
        ),
      ])
    } finally {
      probe.disconnect()
    }
  }

  await launch()

  return {
    host,
    port,
    url,
    dir,
    get pid() {
      return child?.pid
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const c = child
      if (!c) return
      c.kill(signal)
      await exited
    },
    async restart() {
      if (child) throw new Error('redis-server is still running; kill() it first')
      await launch()
    },
    async stop() {
      if (stopped) return
      stopped = true
      const c = child
      if (c) {
        c.kill('SIGTERM')
        const t = setTimeout(() => c.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(t)
      }
      if (ownDir) await rm(dir, { recursive: true, force: true })
    },
    logTail,
  }
}
