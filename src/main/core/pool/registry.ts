/**
 * The node registry: every running node announces itself in Redis and renews that announcement with a heartbeat, so
 * every node (and the UI) can list the pool, and a worker can find an origin's file service.
 *
 * Keys, under the queue's key prefix (`<prefix>:<queue>`):
 * - `…:pool:nodes` — set of node ids (an index; entries whose hash has expired are pruned on read);
 * - `…:pool:node:<id>` — hash with the node's fields, expiring after {@link missedBeatsAllowed} missed beats;
 * - `…:pool:done:<id>` — sorted set of completions (score = time), trimmed to the last hour.
 *
 * Liveness is the hash's TTL, set by Redis itself, so clocks that disagree between machines do not matter.
 * Everything read back is validated: anyone who reaches Redis can write there, and a hostile entry is skipped.
 */
import type Redis from 'ioredis'
import { z } from 'zod'
import type { NodeInfo } from '../../../shared/api'
import { NodeIdSchema } from '../../../shared/spec'
import { errorMessage } from '../errors'
import { logger as rootLogger, type Logger } from '../logger'
import { POOL_MODES, type PoolMode, type SharedFolder, SharedFolderSchema } from './config'

/** How often a node renews its entry by default. */
export const HEARTBEAT_MS = 5000
/** Beats a node may miss before it drops out of the registry. */
export const missedBeatsAllowed = 3
const HOUR_MS = 3_600_000

export const NODE_KINDS = ['desktop', 'worker', 'serve', 'cli'] as const

/** What a node says about itself. */
export interface NodeAnnouncement {
  id: string
  name: string
  host: string
  kind: (typeof NODE_KINDS)[number]
  concurrency: number
  /** Jobs running on this node now. */
  active: number
  paused: boolean
  ffmpegVersion: string
  encoders: string[]
  /** Base URL of this node's file service as other nodes reach it (`http://host:port`), or null when it serves none. */
  fileServiceUrl: string | null
  sharedFolders: SharedFolder[]
  mode: PoolMode
  startedAt: number
}

/** A registry entry as read back: the announcement plus when it was last renewed. */
export interface NodeRecord extends NodeAnnouncement {
  lastSeen: number
}

const text = (max: number) =>
  z
    .string()
    .max(max)
    // eslint-disable-next-line no-control-regex -- control characters in names are refused
    .regex(/^[^\u0000-\u001f\u007f]*$/)

const jsonOf = <T extends z.ZodType>(schema: T) =>
  z.string().transform((s, ctx): z.infer<T> => {
    try {
      const parsed = schema.safeParse(JSON.parse(s))
      if (parsed.success) return parsed.data
    } catch {
      // falls through to the issue below
    }
    ctx.addIssue({ code: 'custom', message: 'invalid JSON field' })
    return z.NEVER
  })

const intText = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,16}$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))

/** The hash of one node as stored in Redis (all fields are strings there). */
const NodeHashSchema = z.object({
  id: NodeIdSchema,
  name: text(64),
  host: text(253),
  kind: z.enum(NODE_KINDS),
  concurrency: intText(0, 1024),
  active: intText(0, 1024),
  paused: z.enum(['0', '1']).transform((v) => v === '1'),
  ffmpegVersion: text(200),
  encoders: jsonOf(z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).max(1000)),
  fileServiceUrl: z
    .string()
    .max(300)
    .refine((u) => u === '' || isHttpBaseUrl(u), 'must be http://host:port')
    .transform((u) => (u === '' ? null : u)),
  sharedFolders: jsonOf(z.array(SharedFolderSchema).max(32)),
  mode: z.enum(POOL_MODES),
  startedAt: intText(0, Number.MAX_SAFE_INTEGER),
  lastSeen: intText(0, Number.MAX_SAFE_INTEGER),
})

/** True for `http://host[:port]` with nothing after it (no path, credentials, query). */
export function isHttpBaseUrl(u: string): boolean {
  try {
    const url = new URL(u)
    return (
      url.protocol === 'http:' &&
      url.username === '' &&
      url.password === '' &&
      url.search === '' &&
      url.hash === '' &&
      (url.pathname === '/' || url.pathname === '') &&
      !/\/$/.test(u)
    )
  } catch {
    return false
  }
}

/** Redis key names of the registry under one queue key prefix (`<prefix>:<queue>`). */
export function registryKeys(keyPrefix: string) {
  return {
    index: `${keyPrefix}:pool:nodes`,
    node: (id: string) => `${keyPrefix}:pool:node:${id}`,
    done: (id: string) => `${keyPrefix}:pool:done:${id}`,
  }
}

function toHash(a: NodeAnnouncement, lastSeen: number): Record<string, string> {
  return {
    id: a.id,
    name: a.name,
    host: a.host,
    kind: a.kind,
    concurrency: String(a.concurrency),
    active: String(a.active),
    paused: a.paused ? '1' : '0',
    ffmpegVersion: a.ffmpegVersion,
    encoders: JSON.stringify(a.encoders),
    fileServiceUrl: a.fileServiceUrl ?? '',
    sharedFolders: JSON.stringify(a.sharedFolders),
    mode: a.mode,
    startedAt: String(a.startedAt),
    lastSeen: String(lastSeen),
  }
}

/** Parses one node hash read from Redis; null (and a debug log) when it is not a valid entry for `id`. */
export function parseNodeHash(
  id: string,
  hash: Record<string, string>,
  log: Logger = rootLogger,
): NodeRecord | null {
  const r = NodeHashSchema.safeParse(hash)
  if (!r.success || r.data.id !== id) {
    if (Object.keys(hash).length > 0)
      log.warn({ node: id.slice(0, 64) }, 'invalid node entry in Redis skipped')
    return null
  }
  return r.data
}

/** Reads the live nodes under a key prefix (no registration needed: `bullpen nodes` uses this). */
export async function readNodes(
  redis: Redis,
  keyPrefix: string,
  log: Logger = rootLogger,
): Promise<NodeRecord[]> {
  const keys = registryKeys(keyPrefix)
  const ids = (await redis.smembers(keys.index)).filter((id) => NodeIdSchema.safeParse(id).success)
  if (ids.length === 0) return []
  const pipe = redis.pipeline()
  for (const id of ids) pipe.hgetall(keys.node(id))
  const replies = (await pipe.exec()) ?? []
  const out: NodeRecord[] = []
  const gone: string[] = []
  ids.forEach((id, i) => {
    const [err, hash] = replies[i] ?? [null, {}]
    if (err || !hash || typeof hash !== 'object' || Object.keys(hash).length === 0) {
      gone.push(id)
      return
    }
    const rec = parseNodeHash(id, hash as Record<string, string>, log)
    if (rec) out.push(rec)
  })
  // Expired entries leave their id in the index: prune it (a node that comes back re-adds itself).
  if (gone.length > 0) await redis.srem(keys.index, ...gone).catch(() => undefined)
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
}

/** Completions per node in the last hour. */
export async function readCompletions(
  redis: Redis,
  keyPrefix: string,
  ids: readonly string[],
  now = Date.now(),
): Promise<Map<string, number>> {
  const keys = registryKeys(keyPrefix)
  const out = new Map<string, number>()
  if (ids.length === 0) return out
  const pipe = redis.pipeline()
  for (const id of ids) pipe.zcount(keys.done(id), now - HOUR_MS, '+inf')
  const replies = (await pipe.exec()) ?? []
  ids.forEach((id, i) => {
    const v = replies[i]?.[1]
    out.set(id, typeof v === 'number' ? v : 0)
  })
  return out
}

/** The nodes as the UI shows them. */
export async function listNodeInfos(redis: Redis, keyPrefix: string, selfId?: string): Promise<NodeInfo[]> {
  const records = await readNodes(redis, keyPrefix)
  const done = await readCompletions(
    redis,
    keyPrefix,
    records.map((r) => r.id),
  )
  return records.map((r) => toNodeInfo(r, done.get(r.id) ?? 0, selfId))
}

export function toNodeInfo(r: NodeRecord, completedLastHour: number, selfId?: string): NodeInfo {
  return {
    id: r.id,
    name: r.name,
    host: r.host,
    kind: r.kind,
    concurrency: r.concurrency,
    active: r.active,
    paused: r.paused,
    ffmpegVersion: r.ffmpegVersion,
    encoders: r.encoders,
    lastSeen: r.lastSeen,
    completedLastHour,
    isSelf: r.id === selfId,
  }
}

export interface NodeRegistryOptions {
  redis: Redis
  /** The queue's key prefix, `<prefix>:<queue name>` (e.g. `bullpen:transcode`). */
  keyPrefix: string
  self: NodeAnnouncement
  heartbeatMs?: number
  /** Fields read fresh at every beat (e.g. running jobs, paused). */
  refresh?: () => Partial<Omit<NodeAnnouncement, 'id'>>
  logger?: Logger
}

/**
 * Deletes a node's entry only when this process wrote it: two processes of one data folder share a node id (say
 * `bullpen worker` and `bullpen add --wait`), and the one that stops must not remove the other's entry.
 */
const DEREGISTER_LUA = `
if redis.call('HGET', KEYS[1], 'instance') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0`

/**
 * The beat of a short-lived CLI process (`transcode`, `add --wait`). Every process started with one data folder is
 * the same node (one id): a CLI beat that overwrote the entry of that folder's worker, desktop or `serve` hid it
 * (kind, running jobs, paused) and, when the CLI exited, removed it, so `bullpen resume` found no worker to resume.
 * It writes only an entry that is absent, its own or another CLI process's.
 * KEYS: node hash, index. ARGV: instance, TTL ms, node id, then field/value pairs. Returns 1 if written.
 */
const CLI_BEAT_LUA = `
local holder = redis.call('HGET', KEYS[1], 'instance')
if holder and holder ~= ARGV[1] and redis.call('HGET', KEYS[1], 'kind') ~= 'cli' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1`

/** This node's registration: heartbeat, updates, completions, and reads of the whole pool. */
export class NodeRegistry {
  readonly keys: ReturnType<typeof registryKeys>
  readonly heartbeatMs: number
  private self: NodeAnnouncement
  private timer: NodeJS.Timeout | undefined
  private beating: Promise<void> | undefined
  private stopped = false
  private readonly log: Logger
  /** This process's registration (see DEREGISTER_LUA). */
  private readonly instance = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`

  constructor(private readonly opts: NodeRegistryOptions) {
    const id = NodeIdSchema.safeParse(opts.self.id)
    if (!id.success) throw new Error(`invalid node id "${opts.self.id}"`)
    this.keys = registryKeys(opts.keyPrefix)
    this.heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS
    this.self = { ...opts.self }
    this.log = (opts.logger ?? rootLogger).child({ module: 'registry' })
  }

  /** Milliseconds an entry lives without a beat. */
  get ttlMs(): number {
    return this.heartbeatMs * missedBeatsAllowed
  }

  get id(): string {
    return this.self.id
  }

  get announcement(): NodeAnnouncement {
    return { ...this.self }
  }

  /** Registers now and keeps beating until {@link deregister}. */
  async start(): Promise<void> {
    this.stopped = false
    await this.beat()
    this.timer ??= setInterval(() => {
      this.beat().catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'heartbeat failed'))
    }, this.heartbeatMs)
    this.timer.unref()
  }

  /** Changes what this node announces; written at once (and by every later beat). */
  async update(patch: Partial<Omit<NodeAnnouncement, 'id'>>): Promise<void> {
    this.self = { ...this.self, ...patch }
    if (this.timer) await this.beat().catch(() => undefined)
  }

  /** Writes the entry and renews its TTL. Beats do not pile up while Redis is away. */
  beat(): Promise<void> {
    if (this.stopped) return Promise.resolve()
    if (this.beating) return this.beating
    const { redis } = this.opts
    const key = this.keys.node(this.self.id)
    if (this.opts.refresh) this.self = { ...this.self, ...this.opts.refresh(), id: this.self.id }
    const fields = { ...toHash(this.self, Date.now()), instance: this.instance }
    this.beating = (async () => {
      if (this.self.kind === 'cli') {
        const pairs = Object.entries(fields).flat()
        await redis.eval(
          CLI_BEAT_LUA,
          2,
          key,
          this.keys.index,
          this.instance,
          this.ttlMs,
          this.self.id,
          ...pairs,
        )
        return
      }
      await redis
        .multi()
        .hset(key, fields)
        .pexpire(key, this.ttlMs)
        .sadd(this.keys.index, this.self.id)
        .exec()
    })().finally(() => {
      this.beating = undefined
    })
    return this.beating
  }

  /** Counts one completed job for this node (the "last hour" throughput). */
  async recordCompletion(jobId: string, at = Date.now()): Promise<void> {
    const key = this.keys.done(this.self.id)
    await this.opts.redis
      .multi()
      .zadd(key, at, `${at}:${jobId}`)
      .zremrangebyscore(key, '-inf', at - HOUR_MS)
      .pexpire(key, HOUR_MS + 60_000)
      .exec()
  }

  /** Live nodes, as the UI shows them. */
  listNodes(): Promise<NodeInfo[]> {
    return listNodeInfos(this.opts.redis, this.opts.keyPrefix, this.self.id)
  }

  /** Live nodes with every field (file service URL, shared folders, mode). */
  listRecords(): Promise<NodeRecord[]> {
    return readNodes(this.opts.redis, this.opts.keyPrefix, this.log)
  }

  /** One live node, or null when it is not registered (stopped, or missed its beats). */
  async getNode(id: string): Promise<NodeRecord | null> {
    if (!NodeIdSchema.safeParse(id).success) return null
    const hash = await this.opts.redis.hgetall(this.keys.node(id))
    if (Object.keys(hash).length === 0) return null
    return parseNodeHash(id, hash, this.log)
  }

  /** Stops beating and removes this node's entry (a clean stop). */
  async deregister(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.beating?.catch(() => undefined)
    await this.opts.redis.eval(
      DEREGISTER_LUA,
      2,
      this.keys.node(this.self.id),
      this.keys.index,
      this.instance,
      this.self.id,
    )
  }
}
