/**
 * The Redis connection: where it is (flag → settings → env → default), how Bull's three connection kinds are
 * made and shared, and `ensureRedis()`, which checks that Redis answers and, for the default local URL, starts a
 * managed `redis-server` when none runs.
 */
import { spawn } from 'node:child_process'
import { mkdir, readFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { access, constants } from 'node:fs/promises'
import Redis, { type RedisOptions } from 'ioredis'
import { RedisUnavailableError, errorMessage } from './errors'
import { logger as rootLogger, type Logger } from './logger'

/** The URL used when nothing else says where Redis is: a local server on the standard port. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
/** Environment variable that names the Redis URL. */
export const REDIS_URL_ENV = 'BULLPEN_REDIS_URL'

/** What to install, or set, when no Redis answers. */
export const REDIS_INSTALL_HINT =
  'Install Redis (Debian/Ubuntu: `sudo apt install redis-server`; macOS: `brew install redis`; ' +
  'Windows: Memurai, or Redis inside WSL), or point Bullpen at a running server with ' +
  `\`--redis redis://host:port\` or the ${REDIS_URL_ENV} environment variable.`

/**
 * Picks the Redis URL: the command-line flag, then the saved settings, then `BULLPEN_REDIS_URL`, then
 * {@link DEFAULT_REDIS_URL}. Empty strings count as unset.
 */
export function resolveRedisUrl(
  sources: { flag?: string | undefined; settings?: string | undefined; env?: NodeJS.ProcessEnv } = {},
): string {
  const env = sources.env ?? process.env
  for (const candidate of [sources.flag, sources.settings, env[REDIS_URL_ENV]]) {
    const v = candidate?.trim()
    if (v) return v
  }
  return DEFAULT_REDIS_URL
}

/** The parts of a Redis URL. */
export interface RedisTarget {
  host: string
  port: number
  tls: boolean
  username: string | undefined
  password: string | undefined
  db: number
}

/**
 * Parses `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS).
 * @throws RedisUnavailableError naming the (masked) URL when it is not a Redis URL.
 */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new RedisUnavailableError(
      `"${describeRedisUrl(url)}" is not a Redis URL; expected redis://host:port or rediss://host:port (TLS)`,
    )
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new RedisUnavailableError(
      `"${describeRedisUrl(url)}" is not a Redis URL: the scheme must be redis:// or rediss:// (TLS)`,
    )
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1'
  const port = u.port === '' ? 6379 : Number(u.port)
  const dbText = u.pathname.replace(/^\//, '')
  const db = dbText === '' ? 0 : Number(dbText)
  if (!Number.isInteger(db) || db < 0) {
    throw new RedisUnavailableError(
      `"${describeRedisUrl(url)}": the database after the slash must be a number`,
    )
  }
  return {
    host,
    port,
    tls: u.protocol === 'rediss:',
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
    db,
  }
}

/** The URL with its password replaced by `***`, safe for messages and logs. Never throws. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString().replace(/\/$/, '')
  } catch {
    // Not parseable: mask anything between "://user:" and "@" by hand.
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@')
  }
}

/** Reconnection delay for attempt `times` (1, 2, …): exponential from 100 ms, capped at 3 s, never gives up. */
export function reconnectDelay(times: number): number {
  return Math.min(100 * 2 ** Math.max(0, times - 1), 3000)
}

/** Bull's three connection kinds (Bull PATTERNS.md, "Reusing Redis connections"). */
export type ConnectionKind = 'client' | 'subscriber' | 'bclient'

/**
 * ioredis options for one connection kind. Every kind keeps reconnecting with a capped backoff, so a worker comes
 * back by itself after Redis restarts. `bclient` and `subscriber` get `maxRetriesPerRequest: null` and
 * `enableReadyCheck: false` as Bull requires; `client` also waits (`maxRetriesPerRequest: null`) instead of
 * failing commands while Redis is away, so a job's completion is written once Redis is back (Bull #2417).
 */
export function redisOptions(url: string, kind: ConnectionKind): RedisOptions {
  const t = parseRedisUrl(url)
  const opts: RedisOptions = {
    host: t.host,
    port: t.port,
    db: t.db,
    connectionName: `bullpen-${kind}`,
    retryStrategy: reconnectDelay,
    maxRetriesPerRequest: null,
    connectTimeout: 10_000,
  }
  if (t.username !== undefined) opts.username = t.username
  if (t.password !== undefined) opts.password = t.password
  if (t.tls) opts.tls = { servername: t.host }
  if (kind !== 'client') opts.enableReadyCheck = false
  return opts
}

/** How long after an unexpected `end` a connection still in use is reconnected (see RedisConnections). */
const END_RECONNECT_MS = 250

/** Connection state of the shared Redis client, as shown to people. */
export type ConnectionState = 'ready' | 'reconnecting' | 'down'

/**
 * The Redis connections of one process for one URL: Bull's `client` and `subscriber` shared by every queue, a new
 * `bclient` per queue (blocking commands cannot share). Pass {@link RedisConnections.createClient} as Bull's
 * `createClient`. Close the queues first, then this (CONVENTIONS 9).
 */
export class RedisConnections {
  readonly url: string
  private shared: Partial<Record<'client' | 'subscriber', Redis>> = {}
  private readonly blocking = new Set<Redis>()
  private readonly channels = new Map<string, number>()
  private readonly stateListeners = new Set<(state: ConnectionState) => void>()
  private lastState: ConnectionState | undefined
  private closed = false
  private readonly log: Logger

  constructor(url: string, options: { logger?: Logger } = {}) {
    parseRedisUrl(url) // fail early on a malformed URL
    this.url = url
    this.log = (options.logger ?? rootLogger).child({ redis: describeRedisUrl(url) })
  }

  /** Bull's `createClient`: shared `client`/`subscriber`, a fresh `bclient`. */
  readonly createClient = (kind: ConnectionKind): Redis => {
    if (this.closed) throw new RedisUnavailableError('the Redis connections of this process are closed')
    if (kind === 'bclient') {
      // Tracked until release()/close(), not until its first 'end': Bull ends and reconnects it on every local pause.
      const c = this.make(kind)
      this.blocking.add(c)
      return c
    }
    let c = this.shared[kind]
    if (!c) {
      c = this.make(kind)
      // Each Bull queue adds its own listeners to the shared connections; many queues are not a leak.
      c.setMaxListeners(200)
      this.shared[kind] = c
      if (kind === 'client') this.watchState(c)
    }
    return c
  }

  /** The shared command connection (created on first use). */
  get client(): Redis {
    return this.createClient('client')
  }

  /** The shared subscriber connection (created on first use). */
  get subscriber(): Redis {
    return this.createClient('subscriber')
  }

  /** Current state of the shared client, `down` before it first connects. */
  get state(): ConnectionState {
    return this.lastState ?? 'down'
  }

  /** Listens to state changes of the shared client; returns the unsubscribe function. */
  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener)
    return () => this.stateListeners.delete(listener)
  }

  /**
   * Subscribes the shared subscriber to `channel`, counting users so that one queue's `unsubscribe` does not cut
   * another's messages.
   */
  async subscribe(channel: string): Promise<void> {
    const n = this.channels.get(channel) ?? 0
    this.channels.set(channel, n + 1)
    if (n === 0) await this.subscriber.subscribe(channel)
  }

  /** Drops one user of `channel`; unsubscribes when it was the last. */
  async unsubscribe(channel: string): Promise<void> {
    const n = this.channels.get(channel) ?? 0
    if (n <= 1) {
      this.channels.delete(channel)
      if (n === 1 && !this.closed) await this.subscriber.unsubscribe(channel)
    } else {
      this.channels.set(channel, n - 1)
    }
  }

  /** Disconnects a `bclient` of a queue that has closed (the shared ones stay). */
  release(client: Redis): void {
    if (!this.blocking.delete(client)) return
    client.disconnect()
  }

  /** Closes every connection (queues must be closed first). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const all = [...this.blocking, ...Object.values(this.shared)]
    this.blocking.clear()
    this.shared = {}
    await Promise.all(
      all.map(async (c) => {
        if (c.status === 'end') return
        try {
          // quit() waits for pending replies; a dead server would make it hang, so disconnect then.
          if (c.status === 'ready') await c.quit()
          else c.disconnect()
        } catch {
          c.disconnect()
        }
      }),
    )
    this.stateListeners.clear()
  }

  private make(kind: ConnectionKind): Redis {
    const c = new Redis(redisOptions(this.url, kind))
    // Workaround (Bull #2417-like dead worker): Bull's local pause and close force the blocking connection to
    // reconnect with `disconnect()` then `connect()`. While Redis is away, ioredis' disconnect() of a reconnecting
    // connection only sets its manual-close flag, and connect() keeps it: the next failed attempt then ends the
    // connection for good (status `end`) and the worker fails every fetch with "Connection is closed.". An explicit
    // connect() asks for a live connection, so it clears that flag and the retry strategy applies again.
    const connect = c.connect.bind(c)
    c.connect = (callback) => {
      ;(c as unknown as { manuallyClosing: boolean }).manuallyClosing = false
      return connect(callback)
    }
    // Safety net: a connection still in use that ends (nothing but release()/close() should end one) is reconnected,
    // loudly, instead of leaving the queue failing every command with "Connection is closed." for ever. Checked a
    // moment later: Bull's forced reconnection ends the connection and connects it again itself.
    // Who last called disconnect() (ioredis' own calls included), for that log: the rare culprit is named.
    let lastDisconnect: string | undefined
    const disconnect = c.disconnect.bind(c)
    c.disconnect = (reconnect) => {
      lastDisconnect = new Error('disconnect() called').stack
      disconnect(reconnect)
    }
    c.on('end', () => {
      if (!this.inUse(c)) return
      setTimeout(() => {
        if (!this.inUse(c) || c.status !== 'end') return
        this.log.error(
          { kind, lastDisconnect },
          'redis connection ended while in use (status end); reconnecting it',
        )
        c.connect().catch(() => undefined)
      }, END_RECONNECT_MS).unref()
    })
    // Every connection gets an error listener: ioredis would otherwise log "Unhandled error event" (or crash).
    // While Redis is away each reconnect attempt fails again: warn once per outage, the rest at debug level.
    let quiet = false
    c.on('ready', () => (quiet = false))
    c.on('error', (err: unknown) => {
      if (this.closed) return
      this.log[quiet ? 'debug' : 'warn']({ kind, err: errorMessage(err) }, 'redis connection error')
      quiet = true
    })
    return c
  }

  /** True while `c` is one of this process's connections that queues use (not released, not closed). */
  private inUse(c: Redis): boolean {
    return !this.closed && (this.blocking.has(c) || this.shared.client === c || this.shared.subscriber === c)
  }

  private watchState(c: Redis): void {
    const set = (s: ConnectionState): void => {
      if (s === this.lastState || this.closed) return
      this.lastState = s
      if (s === 'ready') this.log.info('redis ready')
      else this.log.warn(`redis ${s}`)
      for (const l of this.stateListeners) l(s)
    }
    // ready → down (lost) → reconnecting (until it answers again) → ready; failed attempts do not flap the state.
    c.on('ready', () => set('ready'))
    c.on('close', () => {
      if (this.lastState === 'ready') set('down')
    })
    c.on('reconnecting', () => set('reconnecting'))
    c.on('end', () => set('down'))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Ping and the managed local server

/** Why a ping failed. */
export type PingFailure = 'unreachable' | 'auth' | 'tls' | 'database' | 'other'

export type PingResult = { ok: true } | { ok: false; reason: PingFailure; message: string }

const TLS_CODES = /^(ERR_TLS|ERR_SSL|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|ERR_OSSL|HOSTNAME_MISMATCH)/

function classify(err: unknown, tls: boolean): PingFailure {
  const msg = errorMessage(err)
  const code = (err as { code?: unknown } | null)?.code
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password|AUTH.*without any password/i.test(msg)) {
    return 'auth'
  }
  if (/DB index is out of range|invalid DB index/i.test(msg)) return 'database'
  if (
    (typeof code === 'string' && TLS_CODES.test(code)) ||
    /SSL|TLS|certificate|wrong version number/i.test(msg)
  ) {
    return 'tls'
  }
  if (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN|ENETUNREACH)$/.test(code)
  ) {
    return 'unreachable'
  }
  // A TLS client talking to a plain server (or the reverse) mostly sees the socket close or time out.
  if (tls && /ECONNRESET|socket hang up|Connection is closed|timed? ?out/i.test(msg)) return 'tls'
  if (/ECONNREFUSED|ETIMEDOUT|timed? ?out|Connection is closed|ECONNRESET/i.test(msg)) return 'unreachable'
  return 'other'
}

/** Pings `url` once, without retrying, within `timeoutMs`. Never throws. */
export async function pingRedis(url: string, timeoutMs = 2000): Promise<PingResult> {
  let target: RedisTarget
  try {
    target = parseRedisUrl(url)
  } catch (err) {
    return { ok: false, reason: 'other', message: errorMessage(err) }
  }
  const opts = redisOptions(url, 'client')
  const c = new Redis({
    ...opts,
    // The database is selected below, where a refusal is an error: ioredis's own SELECT on connect only logs it
    // and stays on database 0 (a /99 that does not exist queued into database 0).
    db: 0,
    connectionName: 'bullpen-ping',
    lazyConnect: true,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  })
  let firstError: unknown
  c.on('error', (err: unknown) => {
    firstError ??= err
  })
  let timer: NodeJS.Timeout | undefined
  try {
    const attempt = (async () => {
      await c.connect()
      if (opts.db) await c.select(opts.db)
      await c.ping()
    })()
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms (timed out)`)), timeoutMs)
    })
    await Promise.race([attempt, timeout])
    attempt.catch(() => undefined)
    return { ok: true }
  } catch (err) {
    const e = firstError && classify(firstError, target.tls) !== 'unreachable' ? firstError : err
    return { ok: false, reason: classify(e, target.tls), message: errorMessage(e) }
  } finally {
    if (timer) clearTimeout(timer)
    c.disconnect()
  }
}

/** Options of {@link ensureRedis}. */
export interface EnsureRedisOptions {
  /** The URL to use (see {@link resolveRedisUrl}). */
  url: string
  /** Bullpen's data directory; a managed server keeps its files in `<dataDir>/redis`. */
  dataDir: string
  /** Start a managed `redis-server` when the local default does not answer (default true). */
  manage?: boolean
  /** Where the managed server listens; the URL counts as "the local default" when it points here. */
  managedHost?: string
  managedPort?: number
  /** The `redis-server` to run (default: found on PATH). */
  redisServer?: string
  /** Ping timeout (default 1500 ms). */
  pingTimeoutMs?: number
  /** How long to wait for a started server to answer (default 15 s). */
  startTimeoutMs?: number
  logger?: Logger
}

/** What {@link ensureRedis} found or did. */
export interface EnsureRedisResult {
  url: string
  /** True when this call started a managed `redis-server`. */
  started: boolean
  /** Directory of the managed server (when the URL is the managed one). */
  managedDir?: string
}

/** Finds an executable on PATH; undefined when absent. */
export async function findOnPath(
  name: string,
  pathEnv = process.env['PATH'] ?? '',
): Promise<string | undefined> {
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', ''] : ['']
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue
    for (const ext of exts) {
      const p = join(dir, name + ext)
      try {
        await access(p, constants.X_OK)
        return p
      } catch {
        // not here
      }
    }
  }
  return undefined
}

function isManagedUrl(t: RedisTarget, host: string, port: number): boolean {
  const localNames = new Set(['127.0.0.1', 'localhost', '::1', host])
  return (
    !t.tls &&
    t.password === undefined &&
    t.username === undefined &&
    localNames.has(t.host) &&
    t.port === port
  )
}

function failure(url: string, r: Extract<PingResult, { ok: false }>, extra = ''): RedisUnavailableError {
  const where = describeRedisUrl(url)
  switch (r.reason) {
    case 'auth':
      return new RedisUnavailableError(
        `Redis at ${where} refused the credentials (wrong user name or password): ${r.message}. ` +
          `Check the password in --redis or ${REDIS_URL_ENV}.`,
      )
    case 'tls':
      return new RedisUnavailableError(
        `TLS connection to Redis at ${where} failed: ${r.message}. Use rediss:// only for servers that speak TLS, ` +
          'redis:// for those that do not, and check the server certificate.',
      )
    case 'database':
      return new RedisUnavailableError(
        `Redis at ${where} answers, but not for that database: ${r.message}. Use a database number the server ` +
          'has (0–15 unless its `databases` setting says more).',
      )
    default:
      return new RedisUnavailableError(
        `Redis at ${where} does not answer (${r.message}).${extra} ${REDIS_INSTALL_HINT}`,
      )
  }
}

async function runDaemon(bin: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, output }))
  })
}

/**
 * Makes sure Redis answers at `url`. When it does not, the URL is the local default and `redis-server` is on PATH
 * (or given), starts a managed server (`--daemonize yes`, AOF `everysec`, files in `<dataDir>/redis`) and waits
 * until it answers. The server keeps running after this process exits: other nodes share it and jobs persist.
 *
 * @throws RedisUnavailableError saying what to install or set; wrong passwords and TLS failures are reported as
 * such, with the URL's password masked.
 */
export async function ensureRedis(options: EnsureRedisOptions): Promise<EnsureRedisResult> {
  const {
    url,
    dataDir,
    manage = true,
    managedHost = '127.0.0.1',
    managedPort = 6379,
    pingTimeoutMs = 1500,
    startTimeoutMs = 15_000,
  } = options
  const log = options.logger ?? rootLogger
  const target = parseRedisUrl(url)
  const managed = isManagedUrl(target, managedHost, managedPort)
  const dir = join(dataDir, 'redis')
  const first = await pingRedis(url, pingTimeoutMs)
  if (first.ok) return managed ? { url, started: false, managedDir: dir } : { url, started: false }
  if (!managed || first.reason !== 'unreachable') throw failure(url, first)
  if (!manage) throw failure(url, first, ' Starting a local redis-server is turned off.')

  const bin = options.redisServer ?? (await findOnPath('redis-server'))
  if (!bin) throw failure(url, first, ' No redis-server was found on PATH to start one.')

  await mkdir(dir, { recursive: true })
  const args = [
    '--port',
    String(managedPort),
    '--bind',
    managedHost,
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--daemonize',
    'yes',
    '--pidfile',
    join(dir, 'redis.pid'),
    '--logfile',
    join(dir, 'redis.log'),
  ]
  log.info({ bin, args }, 'starting a managed redis-server')
  const run = await runDaemon(bin, args).catch((err: unknown) => ({ code: -1, output: errorMessage(err) }))
  if (run.code !== 0) {
    throw new RedisUnavailableError(
      `Could not start ${bin} for ${describeRedisUrl(url)} (exit ${String(run.code)}): ${run.output.trim()}`,
    )
  }
  const deadline = Date.now() + startTimeoutMs
  let last: PingResult = first
  while (Date.now() < deadline) {
    last = await pingRedis(url, pingTimeoutMs)
    if (last.ok) {
      log.info({ dir }, 'managed redis-server is up')
      return { url, started: true, managedDir: dir }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const tail = await readFile(join(dir, 'redis.log'), 'utf8')
    .then((t) => t.trim().split('\n').slice(-5).join(' | '))
    .catch(() => '')
  throw failure(
    url,
    last.ok ? { ok: false, reason: 'other', message: 'unknown' } : last,
    ` A redis-server was started in ${dir} but did not answer within ${startTimeoutMs} ms${tail ? `; its log: ${tail}` : ''}.`,
  )
}
