/**
 * The ONE module that owns the Bull queue (CONVENTIONS 9): typed job data validated on the way in and on the way
 * out, de-duplication, priorities that can be changed, pause (this node / the whole pool), cancel across nodes,
 * hand-back on shutdown, and Bull's global events mapped onto a typed bus.
 */
import { hostname } from 'node:os'
import Bull from 'bull'
import type Redis from 'ioredis'
import {
  InvalidJobError,
  JobCancelledError,
  UnrecoverableJobError,
  UserFacingError,
  errorMessage,
} from './errors'
import { EventBus, toJobProgress, type JobProgress, type QueueEventBus, type QueueEvents } from './events'
import { logger as rootLogger, type Logger } from './logger'
import { ADD_JOB_COMMAND, SCRIPTS, addJobWithDedupe, type ScriptName } from './queue/lua'
import { DEFAULT_REDIS_URL, RedisConnections, describeRedisUrl } from './redis'
import {
  JobDataSchema,
  NodeIdSchema,
  PRIORITY_VALUES,
  describeIssues,
  priorityName,
  type JobData,
  type Priority,
} from '../../shared/spec'

/** States a job can be listed by, and the counts of the queue: one definition, in the UI contract. */
import { JOB_STATES, type JobState, type QueueStats } from '../../shared/api'
export { JOB_STATES, type JobState, type QueueStats }

/** Worker lock settings (Bull `AdvancedSettings`), tuned for long encodes (Bull #1982, #2332). */
export interface WorkerSettings {
  /** How long a job's lock lives without renewal (default 60 s). */
  lockDuration: number
  /** How often the lock is renewed (default lockDuration / 4). */
  lockRenewTime: number
  /** How often active jobs are checked for lost locks (default 30 s). */
  stalledInterval: number
  /** How many times a job may stall before it fails (default 2). */
  maxStalledCount: number
  /** Wait after an error in the fetch loop before trying again, e.g. while Redis is away (default 2 s). */
  retryProcessDelay: number
  /** Seconds a worker blocks waiting for a new job (default 5). */
  drainDelay: number
}

export const DEFAULT_WORKER_SETTINGS: WorkerSettings = {
  lockDuration: 60_000,
  lockRenewTime: 15_000,
  stalledInterval: 30_000,
  maxStalledCount: 2,
  retryProcessDelay: 2_000,
  drainDelay: 5,
}

/** Options of {@link TranscodeQueue}. */
export interface TranscodeQueueOptions {
  /** Redis URL; ignored when `connections` is given. Default: the local default URL. */
  redisUrl?: string
  /** Shared connections of this process (not closed by `close()`); default: own ones for `url`. */
  connections?: RedisConnections
  /** Bull queue name (default `transcode`). */
  name?: string
  /** Bull key prefix (default `bullpen`). */
  prefix?: string
  /** This node's id, recorded on jobs it runs (default: from the host name). */
  nodeId?: string
  /** Attempts per job (default 3). */
  attempts?: number
  /** First retry delay; doubles each time (default 5000 ms). */
  backoffDelayMs?: number
  /** Completed jobs kept (default 100). */
  keepCompleted?: number
  /** Failed jobs kept (default 200). */
  keepFailed?: number
  /** Worker lock settings. */
  worker?: Partial<WorkerSettings>
  /** How long a cancel request stays visible to a node that missed the message (default 1 h). */
  cancelTtlMs?: number
  /** How often a running job checks for a missed cancel request (default 2 s). */
  cancelPollMs?: number
  /**
   * How long after `process()` the worker sweeps de-duplication keys left by jobs removed behind its back (e.g. from
   * Bull Board). Default 30 s: not during the first jobs (with 10,000 waiting, the sweep competed with them).
   */
  dedupeSweepDelayMs?: number
  /**
   * How long the worker gathers its bookkeeping (the node mark and `active` message of jobs that start here, the
   * de-duplication keys of jobs that end here) before sending it in one call. Default 5 ms: nothing a person sees,
   * and short jobs share one call instead of paying one or two each; 0 sends it every turn of the event loop.
   */
  workerBatchMs?: number
  /** Event bus to emit on (default: a new one, `queue.events`). */
  events?: QueueEventBus
  logger?: Logger
}

/** A plain, serialisable view of a job. */
export interface JobInfo {
  id: string
  state: JobState | 'unknown'
  /** The payload, or null when it does not pass validation (see `invalidReason`). */
  data: JobData | null
  invalidReason: string | null
  priority: Priority
  progress: JobProgress | null
  attemptsMade: number
  attempts: number
  failedReason: string | null
  result: unknown
  /** The node running (or that last ran) the job. */
  node: string | null
  createdAt: number
  processedOn: number | null
  finishedOn: number | null
}

/** Options of {@link TranscodeQueue.close}. */
export interface CloseOptions {
  /** Abort running jobs and put them back to waiting at once (default false: let them finish). */
  handBack?: boolean
  /** Graceful: how long to let running jobs finish before handing the rest back (default: as long as it takes). */
  graceMs?: number
  /** Upper bound for each Redis step of closing, e.g. while Redis is away (default 10 s). */
  closeTimeoutMs?: number
}

/** What `cancel()` did. */
export type CancelOutcome = 'removed' | 'requested' | 'finished' | 'not-found'

/** The handler a worker runs: gets a validated job and a signal that aborts on cancel or hand-back. */
export type JobHandler<R> = (job: Bull.Job<JobData>, signal: AbortSignal) => Promise<R>

/** Abort reason given to a handler when the job was cancelled. */
export class CancelRequested extends Error {
  constructor(readonly jobId: string) {
    super('cancelled')
    this.name = 'CancelRequested'
  }
}

/** Abort reason given to a handler when its node shuts down and hands the job back. */
export class HandedBack extends Error {
  constructor(readonly jobId: string) {
    super('handed back to the queue')
    this.name = 'HandedBack'
  }
}

interface BusMessage {
  t: 'cancel' | 'active' | 'removed' | 'pause-node' | 'resume-node' | 'retrying'
  jobId?: string
  node?: string
  /** With 'retrying': why the attempt failed. */
  reason?: string
}

interface Running {
  controller: AbortController
  /** Settles when the handler wrapper is done with the job (result, error or hand-back). */
  done: Promise<void>
}

/** Bull's `Queue.add` arguments for its `addJob` script: 6 keys, then 14 arguments. */
/**
 * Bull turns a job's Redis hash into a Job with `JSON.parse` of its `data` and `opts`, and throws when either is not
 * JSON, which anyone who reaches Redis can write. The worker then left such a job active until it stalled out (and
 * garbage `opts` broke Bull's stalled check for every job), and listing its state, retry and remove threw for every
 * other job too. Such a job is read instead with empty options and a payload that says what was unreadable, which
 * the worker refuses like any other invalid payload (`runJob`).
 */
type JobHash = Record<string, string | undefined>
/** The field of a job payload that stands for a job hash whose `data` or `opts` is not JSON. */
const UNREADABLE = 'bpUnreadable'
const BullJob = (Bull as unknown as { Job: { fromJSON(q: unknown, json: JobHash, id?: string): unknown } })
  .Job
const bullFromJSON = BullJob.fromJSON.bind(BullJob)
BullJob.fromJSON = (queue, json, jobId) => {
  try {
    return bullFromJSON(queue, json, jobId)
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err
    const readable = (text: string | undefined): boolean => {
      try {
        JSON.parse(text || '{}')
        return true
      } catch {
        return false
      }
    }
    const unreadable = (['opts', 'data'] as const).filter((k) => !readable(json[k]))
    const data = JSON.stringify({ [UNREADABLE]: unreadable.join(' and ') || 'payload' })
    return bullFromJSON(queue, { ...json, opts: readable(json['opts']) ? json['opts'] : '{}', data }, jobId)
  }
}

/** What was not JSON in the job hash that `data` was read from, or null. */
function unreadablePart(data: unknown): string | null {
  if (typeof data !== 'object' || data === null || !(UNREADABLE in data)) return null
  return String((data as Record<string, unknown>)[UNREADABLE])
}

const BULL_ADD_JOB_KEYS = 6
const BULL_ADD_JOB_ARGS = 14

/** What Bull's `Queue.add` hands to `client.addJob` (see {@link TranscodeQueue.add}). */
type BullAddJobCall = (args: unknown[]) => Promise<string>

/** A default node id from the host name, made safe for {@link NodeIdSchema}. */
export function defaultNodeId(): string {
  const h = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
  return (h || 'node').slice(0, 64)
}

/**
 * One Bull queue of transcode jobs (default `bullpen:transcode`), with the API the app, the CLI and the processor
 * use. Every node that shares the Redis makes one.
 */
export class TranscodeQueue {
  readonly name: string
  readonly prefix: string
  readonly nodeId: string
  /** Queue events, as every node sees them. */
  readonly events: QueueEventBus
  /** The underlying Bull queue (for Bull Board and tests; use the methods here for everything else). */
  readonly bull: Bull.Queue<JobData>
  readonly connections: RedisConnections

  private readonly ownConnections: boolean
  private readonly log: Logger
  private readonly attempts: number
  private readonly backoffDelayMs: number
  private readonly keepCompleted: number
  private readonly keepFailed: number
  private readonly cancelTtlMs: number
  private readonly cancelPollMs: number
  private readonly dedupeSweepDelayMs: number
  private readonly running = new Map<string, Running>()
  private readonly cancelHandlers = new Set<(jobId: string) => void>()
  private readonly busChannel: string
  private readonly readyPromise: Promise<void>
  private readonly offState: () => void
  private processing = false
  private localPaused = false
  private closing: Promise<void> | undefined
  /** Set by a hand-back request that arrives while a graceful close is under way. */
  private handBackRequested = false
  /** Ends the graceful wait of a close in progress (set while it waits). */
  private escalate: () => void = () => undefined
  /** Jobs that started here and are not yet marked as ours in Redis (sent in the next worker batch). */
  private readonly pendingMarks: {
    id: string
    /** The job ended before its mark went out: record the node, but announce no `active` after its end. */
    ended: boolean
    done: (code: number) => void
    fail: (err: unknown) => void
  }[] = []
  /** De-duplication keys of jobs that ended here, to release in the next worker batch. */
  private readonly pendingReleases = new Set<string>()
  private batchTimer: NodeJS.Timeout | NodeJS.Immediate | undefined
  private readonly workerBatchMs: number
  /** One timer for all running jobs: checks their cancel keys in one round trip. */
  private cancelPoll: NodeJS.Timeout | undefined
  /** The one delayed sweep of leftover de-duplication keys (see `dedupeSweepDelayMs`). */
  private sweepTimer: NodeJS.Timeout | undefined
  private cancelPollBusy = false

  constructor(options: TranscodeQueueOptions = {}) {
    this.name = options.name ?? 'transcode'
    this.prefix = options.prefix ?? 'bullpen'
    this.nodeId = NodeIdSchema.parse(options.nodeId ?? defaultNodeId())
    this.log = (options.logger ?? rootLogger).child({
      queue: `${this.prefix}:${this.name}`,
      node: this.nodeId,
    })
    this.attempts = options.attempts ?? 3
    this.backoffDelayMs = options.backoffDelayMs ?? 5000
    this.keepCompleted = options.keepCompleted ?? 100
    this.keepFailed = options.keepFailed ?? 200
    this.cancelTtlMs = options.cancelTtlMs ?? 3_600_000
    this.cancelPollMs = options.cancelPollMs ?? 2000
    this.dedupeSweepDelayMs = options.dedupeSweepDelayMs ?? 30_000
    this.workerBatchMs = options.workerBatchMs ?? 5
    this.events =
      options.events ??
      new EventBus<QueueEvents>((err, ev) => this.log.error({ err, ev }, 'event listener threw'))
    this.ownConnections = options.connections === undefined
    this.connections = options.connections ?? new RedisConnections(options.redisUrl ?? DEFAULT_REDIS_URL)
    const settings: WorkerSettings = { ...DEFAULT_WORKER_SETTINGS, ...options.worker }
    if (options.worker?.lockDuration !== undefined && options.worker.lockRenewTime === undefined) {
      settings.lockRenewTime = Math.max(1, Math.floor(settings.lockDuration / 4))
    }
    this.bull = new Bull<JobData>(this.name, {
      prefix: this.prefix,
      createClient: (kind) => this.connections.createClient(kind),
      settings,
    })
    this.busChannel = this.key('bp:events')

    // Every queue has an error listener: Bull emits errors (lost connections, lock renewals) it cannot throw.
    this.bull.on('error', (err: unknown) => {
      const msg = errorMessage(err)
      // Closing cuts the blocking connection; Bull then reports it once more.
      if (this.closing && /Connection is closed|Missing lock/i.test(msg)) return
      // Connection errors are already logged (once per outage) by the connection itself.
      const code = (err as { code?: unknown } | null)?.code
      const connection = typeof code === 'string' && /^E[A-Z]+$/.test(code)
      this.log[connection ? 'debug' : 'warn']({ err: msg }, 'queue error')
    })
    this.bull.on('lock-extension-failed', (job: Bull.Job, err: unknown) => {
      this.log.warn({ jobId: job.id, err: errorMessage(err) }, 'could not renew a job lock')
    })
    const client = this.connections.client
    for (const [name, def] of Object.entries(SCRIPTS)) {
      client.defineCommand(
        name,
        def.numberOfKeys === null ? { lua: def.lua } : { numberOfKeys: def.numberOfKeys, lua: def.lua },
      )
    }
    this.offState = this.connections.onState((state) =>
      this.events.emit('connection', { state, url: describeRedisUrl(this.connections.url) }),
    )
    this.mapGlobalEvents()
    this.readyPromise = this.init()
    this.readyPromise.catch(() => undefined)
  }

  /** Resolves when the queue is connected and listening. */
  async ready(): Promise<void> {
    await this.readyPromise
  }

  // -------------------------------------------------------------------------------------------------------------
  // Adding and reading

  /**
   * Queues a job, unless the same `dedupeKey` is already waiting, delayed, paused or active: then it returns that
   * job's id with `duplicate: true`. The check and the add are atomic across nodes.
   * @throws InvalidJobError when `data` does not pass {@link JobDataSchema}.
   */
  async add(data: JobData): Promise<{ id: string; duplicate: boolean }> {
    const parsed = JobDataSchema.safeParse(data)
    if (!parsed.success) {
      const file = (data as { input?: { path?: unknown } } | undefined)?.input?.path
      throw new InvalidJobError(
        `cannot queue ${typeof file === 'string' ? file : 'the job'}: ${describeIssues(parsed.error)}`,
      )
    }
    const d = parsed.data
    await this.ready()
    const dk = this.dedupeKey(d.dedupeKey)
    // One round trip, like Bull's own add: Bull's Queue.add builds the job (defaults, opts JSON, priority, events)
    // and calls `client.addJob`; on this view of the queue that call runs Bull's script behind the de-duplication
    // check (bpAddJob), atomically. No key is written when the add fails.
    let reply: [number, string] | undefined
    const addJob: BullAddJobCall = async (args) => {
      if (args.length !== BULL_ADD_JOB_KEYS + BULL_ADD_JOB_ARGS)
        throw new Error(`Bull's addJob got ${args.length} arguments, not 6 keys + 14 (not Bull 4.16?)`)
      reply = await this.lua<[number, string]>(
        ADD_JOB_COMMAND,
        [...(args.slice(0, BULL_ADD_JOB_KEYS) as string[]), dk, this.key('completed'), this.key('failed')],
        args.slice(BULL_ADD_JOB_KEYS) as (string | number)[],
      )
      return String(reply[1])
    }
    const view = Object.create(this.bull, { client: { value: { addJob } } }) as Bull.Queue<JobData>
    await view.add(d, {
      priority: PRIORITY_VALUES[d.priority],
      attempts: this.attempts,
      backoff: { type: 'exponential', delay: this.backoffDelayMs },
      removeOnComplete: this.keepCompleted,
      removeOnFail: this.keepFailed,
    })
    if (!reply) throw new Error('Bull did not add the job through its addJob script')
    return { id: String(reply[1]), duplicate: reply[0] !== 1 }
  }

  /** A job's snapshot, or null when there is no such job. */
  async get(id: string): Promise<JobInfo | null> {
    if (!isJobId(id)) return null
    await this.ready()
    const job = await this.bull.getJob(id)
    if (!job) return null
    const [state, [node]] = await Promise.all([job.getState(), this.nodesOf([id])])
    return this.info(job, isJobState(state) ? state : 'unknown', node)
  }

  /** Raw Bull job (for the processor and Bull Board); prefer {@link get}. */
  async getBullJob(id: string): Promise<Bull.Job<JobData> | null> {
    if (!isJobId(id)) return null
    await this.ready()
    return this.bull.getJob(id)
  }

  /**
   * A page of jobs in one state. Waiting, paused and delayed jobs come in the order they will run; active ones
   * oldest first; completed and failed ones newest first.
   */
  async list(
    state: JobState,
    page: { offset?: number; limit?: number } = {},
  ): Promise<{ total: number; items: JobInfo[] }> {
    await this.ready()
    const offset = Math.max(0, Math.floor(page.offset ?? 0))
    const limit = Math.max(1, Math.min(1000, Math.floor(page.limit ?? 50)))
    const asc = state !== 'completed' && state !== 'failed'
    const [total, jobs] = await Promise.all([
      this.bull.getJobCountByTypes([state]),
      this.bull.getJobs([state], offset, offset + limit - 1, asc),
    ])
    const found = jobs.filter((j): j is Bull.Job<JobData> => j != null)
    const nodes = await this.nodesOf(found.map((j) => String(j.id)))
    return { total, items: found.map((j, i) => this.info(j, state, nodes[i])) }
  }

  /**
   * The input paths of every job in `states`, in this queue and in the queues named in `alsoQueues` (same prefix).
   * The job ids of all of them are read in one MULTI, a snapshot no job can slip through while it moves from one state
   * to the next; their payloads are then read in pipelined batches (a payload without an input path is skipped).
   */
  async inputPaths(states: readonly JobState[], alsoQueues: readonly string[] = []): Promise<Set<string>> {
    await this.ready()
    const client = this.connections.client
    const lists: Record<JobState, { suffix: string; zset: boolean }> = {
      waiting: { suffix: 'wait', zset: false },
      paused: { suffix: 'paused', zset: false },
      active: { suffix: 'active', zset: false },
      delayed: { suffix: 'delayed', zset: true },
      failed: { suffix: 'failed', zset: true },
      completed: { suffix: 'completed', zset: true },
    }
    const names = [...new Set([this.name, ...alsoQueues])]
    const multi = client.multi()
    const read: string[] = []
    for (const name of names) {
      for (const state of states) {
        const { suffix, zset } = lists[state]
        const key = `${this.prefix}:${name}:${suffix}`
        if (zset) multi.zrange(key, 0, -1)
        else multi.lrange(key, 0, -1)
        read.push(name)
      }
    }
    const replies = (await multi.exec()) ?? []
    const jobKeys = new Set<string>()
    replies.forEach(([err, ids], i) => {
      if (err) throw err
      for (const id of ids as string[]) jobKeys.add(`${this.prefix}:${read[i] ?? this.name}:${id}`)
    })
    const paths = new Set<string>()
    const all = [...jobKeys]
    for (let i = 0; i < all.length; i += 1000) {
      const pipe = client.pipeline()
      for (const key of all.slice(i, i + 1000)) pipe.hget(key, 'data')
      for (const [err, raw] of (await pipe.exec()) ?? []) {
        if (err || typeof raw !== 'string') continue
        try {
          const input = (JSON.parse(raw) as { input?: { path?: unknown } } | null)?.input
          if (typeof input?.path === 'string') paths.add(input.path)
        } catch {
          // not a payload of ours: it needs no file
        }
      }
    }
    return paths
  }

  /** Counts per state, and whether the pool / this node is paused. */
  async stats(): Promise<QueueStats> {
    await this.ready()
    const [counts, poolPaused] = await Promise.all([this.bull.getJobCounts(), this.bull.isPaused(false)])
    const c = counts as Bull.JobCounts & { paused?: number }
    return {
      waiting: c.waiting,
      active: c.active,
      completed: c.completed,
      failed: c.failed,
      delayed: c.delayed,
      paused: c.paused ?? 0,
      poolPaused,
      localPaused: this.localPaused,
    }
  }

  /** The job's log lines (`job.log()`), oldest first. */
  async logs(id: string, limit = 200): Promise<string[]> {
    if (!isJobId(id)) return []
    await this.ready()
    const { logs } = await this.bull.getJobLogs(id, -limit, -1)
    return logs
  }

  // -------------------------------------------------------------------------------------------------------------
  // Changing jobs

  /**
   * Removes a job that is not running (waiting, delayed, paused, completed, failed) and frees its file for
   * queueing again.
   * @throws UserFacingError when the job is active (cancel it first) or does not exist.
   */
  async remove(id: string): Promise<void> {
    checkJobId(id)
    await this.ready()
    const job = await this.bull.getJob(id)
    if (!job) throw new UserFacingError(`job ${id} does not exist`)
    const state = await job.getState()
    if (state === 'active') throw new UserFacingError(`job ${id} is active; cancel it first`)
    try {
      await job.remove()
    } catch (err) {
      throw new UserFacingError(`job ${id} could not be removed (it is running?): ${errorMessage(err)}`)
    }
    const dk = this.dedupeKeyOf(job.data)
    if (dk) await this.lua('bpDedupeRelease', [dk], [id])
    await this.publish({ t: 'removed', jobId: id })
  }

  /**
   * Puts a failed job back to waiting, at its priority's place, with its attempts reset.
   * @throws UserFacingError when the job is not failed, or a newer copy of the same file is queued.
   */
  async retry(id: string): Promise<void> {
    checkJobId(id)
    await this.ready()
    const job = await this.bull.getJob(id)
    if (!job) throw new UserFacingError(`job ${id} does not exist`)
    const dk = this.dedupeKeyOf(job.data)
    if (!dk) throw new UserFacingError(`job ${id} has an invalid payload and cannot be retried`)
    const jobKey = this.key(id)
    const [code, owner] = await this.lua<[number, string?]>(
      'bpRetry',
      [
        this.key('failed'),
        this.key('wait'),
        this.key('paused'),
        this.key('meta-paused'),
        this.key('priority'),
        jobKey,
        dk,
        this.key('completed'),
        this.cancelKey(id),
      ],
      [id, this.key(''), Date.now(), this.waitingChannel()],
    )
    if (code === 1) return
    if (code === -4)
      throw new UserFacingError(`job ${id} cannot be retried: the same file is queued as job ${owner ?? '?'}`)
    if (code === -1) throw new UserFacingError(`job ${id} does not exist`)
    throw new UserFacingError(`job ${id} is ${await job.getState()}; only failed jobs can be retried`)
  }

  /**
   * Changes the priority of a waiting (or paused) job, atomically: its place in the list changes at once.
   * @throws UserFacingError when the job is not waiting (e.g. "job 12 is active; only waiting jobs can be
   * reprioritised").
   */
  async setPriority(id: string, priority: Priority): Promise<void> {
    await this.reprioritise(id, PRIORITY_VALUES[priority], false)
  }

  /** Makes a waiting job the next one taken: priority high, first among the high ones. */
  async moveToTop(id: string): Promise<void> {
    await this.reprioritise(id, PRIORITY_VALUES.high, true)
  }

  /**
   * Cancels a job. Waiting, delayed or paused: removed. Active: a cancel request goes to every node (a message,
   * and a key that a node that missed it sees when it checks); the node running it aborts it, and the job fails
   * with reason `cancelled`, without retries. Completed or failed: nothing to do.
   */
  async cancel(id: string): Promise<CancelOutcome> {
    if (!isJobId(id)) return 'not-found'
    await this.ready()
    const job = await this.bull.getJob(id)
    const dk = (job && this.dedupeKeyOf(job.data)) ?? this.key('bp:dedupe:-')
    const code = await this.lua<number>(
      'bpCancel',
      [
        this.key('wait'),
        this.key('paused'),
        this.key('delayed'),
        this.key('priority'),
        this.key(id),
        this.key('completed'),
        this.key('failed'),
        this.cancelKey(id),
        dk,
      ],
      [
        id,
        this.cancelTtlMs,
        this.busChannel,
        JSON.stringify({ t: 'cancel', jobId: id } satisfies BusMessage),
        JSON.stringify({ t: 'removed', jobId: id } satisfies BusMessage),
      ],
    )
    const outcomes: Record<number, CancelOutcome> = {
      0: 'not-found',
      1: 'removed',
      2: 'requested',
      3: 'finished',
    }
    return outcomes[code] ?? 'not-found'
  }

  /** True when a cancel was requested for the job (and has not expired). */
  async isCancelRequested(id: string): Promise<boolean> {
    checkJobId(id)
    return (await this.connections.client.exists(this.cancelKey(id))) === 1
  }

  /** Calls `handler(jobId)` for every cancel request this node receives; returns the unsubscribe function. */
  onCancelRequest(handler: (jobId: string) => void): () => void {
    this.cancelHandlers.add(handler)
    return () => this.cancelHandlers.delete(handler)
  }

  /**
   * Removes completed and failed jobs older than `graceMs`, and the de-duplication keys of jobs that are gone or
   * finished.
   */
  async clean(graceMs: number): Promise<{ completed: number; failed: number }> {
    await this.ready()
    const [completed, failed] = await Promise.all([
      this.bull.clean(graceMs, 'completed'),
      this.bull.clean(graceMs, 'failed'),
    ])
    await this.sweepDedupeKeys()
    return { completed: completed.length, failed: failed.length }
  }

  /** Deletes de-duplication keys that no longer block anything; returns how many. */
  async sweepDedupeKeys(): Promise<number> {
    await this.ready()
    const client = this.connections.client
    let cursor = '0'
    let n = 0
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', this.dedupeKey('*'), 'COUNT', 500)
      cursor = next
      if (keys.length > 0) {
        n += await this.lua<number>(
          'bpDedupeSweep',
          [this.key('completed'), this.key('failed')],
          [this.key(''), ...keys],
        )
      }
    } while (cursor !== '0')
    return n
  }

  // -------------------------------------------------------------------------------------------------------------
  // Pausing

  /** This node's worker stops taking jobs (running ones go on). Other nodes are not affected. */
  async pauseLocal(): Promise<void> {
    await this.ready()
    this.localPaused = true
    // doNotWaitActive: return at once; running encodes may take hours.
    try {
      await this.pauseBullLocally()
    } catch (err) {
      // With Redis away, Bull marks the queue paused and then fails to reconnect its blocking client ("Connection
      // is closed."); the pause holds all the same and the connection comes back by itself (redis.ts).
      if (!(this.bull as unknown as { paused?: unknown }).paused) throw err
      this.log.warn({ err: errorMessage(err) }, 'paused while Redis is away')
    }
  }

  /**
   * Bull's local pause stops its worker's blocking fetch (BRPOPLPUSH) by sending QUIT on that connection, which
   * Redis answers only when the fetch ends, so Bull gives up after 500 ms and cuts the connection. For those 500 ms
   * the fetch still runs: a job queued then was taken by a worker that had been paused (seen in the e2e tests), and
   * every close of a worker waited the full 500 ms. Cutting the connection first ends the fetch at once; Bull then
   * finds it closed and connects it again, as it would have.
   */
  private async pauseBullLocally(): Promise<void> {
    const b = this.bull as unknown as { bclientInitialized?: boolean; bclient?: Redis }
    if (b.bclientInitialized && b.bclient?.status === 'ready') b.bclient.disconnect()
    await this.bull.pause(true, true)
  }

  /** This node's worker takes jobs again. */
  async resumeLocal(): Promise<void> {
    await this.ready()
    this.localPaused = false
    await this.bull.resume(true)
  }

  /**
   * Asks the worker of node `nodeId`, in whichever process it runs, to pause or resume taking jobs (running ones
   * go on). Fire-and-forget: see the pool registry for whether such a node is running.
   */
  async requestNodePause(nodeId: string, paused: boolean): Promise<void> {
    await this.ready()
    await this.publish({ t: paused ? 'pause-node' : 'resume-node', node: nodeId })
  }

  /** The whole pool stops taking jobs (every node); running ones go on. */
  async pausePool(): Promise<void> {
    await this.ready()
    await this.bull.pause(false)
  }

  /** The whole pool takes jobs again. */
  async resumePool(): Promise<void> {
    await this.ready()
    await this.bull.resume(false)
  }

  async isPoolPaused(): Promise<boolean> {
    await this.ready()
    return this.bull.isPaused(false)
  }

  isLocalPaused(): boolean {
    return this.localPaused
  }

  // -------------------------------------------------------------------------------------------------------------
  // Worker side

  /**
   * Starts this node's worker: up to `concurrency` jobs at once. The handler only ever sees a job whose payload
   * passed {@link JobDataSchema} (an invalid one fails at once with {@link InvalidJobError}, without retries).
   * Errors that are {@link UnrecoverableJobError}s are not retried. On cancel the signal aborts and the job fails
   * as `cancelled` (not retried); on hand-back it aborts and the job goes back to waiting.
   */
  async process<R>(concurrency: number, handler: JobHandler<R>): Promise<void> {
    if (this.processing) throw new Error('process() was already called on this queue')
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new Error('concurrency must be a positive integer')
    this.processing = true
    await this.ready()
    // Workaround: Bull's process() fires setWorkerName() (CLIENT SETNAME on the blocking connection) without a
    // catch; closing the queue right after process() then gives an unhandled "Connection is closed." rejection.
    const b = this.bull as unknown as { setWorkerName: () => Promise<unknown> }
    const setWorkerName = b.setWorkerName.bind(this.bull)
    b.setWorkerName = () =>
      setWorkerName().catch((err: unknown) =>
        this.log.debug({ err: errorMessage(err) }, 'setWorkerName failed'),
      )
    // A finished job no longer blocks its file from being queued again: drop its de-duplication key now (only
    // when that key still names this job and the job is no longer live — a failure that will be retried keeps it),
    // so Redis does not keep one key per job ever queued (found by the soak benchmark).
    const release = (job: Bull.Job<JobData>): void => {
      const dk = this.dedupeKeyOf(job.data)
      if (!dk) return
      this.pendingReleases.add(dk)
      this.scheduleWorkerBatch()
    }
    this.bull.on('completed', release)
    this.bull.on('failed', release)
    // Bull announces only the final failure to every node; an attempt that will be tried again is said here.
    this.bull.on('failed', (job: Bull.Job<JobData>, err: Error) => {
      void job
        .getState()
        .then((state) =>
          state === 'delayed' || state === 'waiting'
            ? this.publish({ t: 'retrying', jobId: String(job.id), reason: err.message })
            : undefined,
        )
        .catch((e: unknown) => this.log.debug({ err: errorMessage(e) }, 'retry not announced'))
    })
    this.sweepTimer = setTimeout(() => {
      this.sweepDedupeKeys().catch((err: unknown) =>
        this.log.debug({ err: errorMessage(err) }, 'dedupe sweep'),
      )
    }, this.dedupeSweepDelayMs)
    this.sweepTimer.unref()
    // A node that missed a cancel message still sees the request: one check of every running job's cancel key.
    this.cancelPoll = setInterval(() => this.pollCancelRequests(), this.cancelPollMs)
    this.cancelPoll.unref()
    // Bull's process() resolves only when the queue closes, so it is not awaited.
    this.bull
      .process(concurrency, (job: Bull.Job<JobData>) => this.runJob(job, handler))
      .catch((err: unknown) => {
        if (!this.closing) this.log.error({ err: errorMessage(err) }, 'worker stopped')
      })
  }

  /** Ids of the jobs this node is running. */
  runningJobs(): string[] {
    return [...this.running.keys()]
  }

  /** This node stops taking new jobs (running ones go on). */
  async stopTaking(): Promise<void> {
    if (this.localPaused) return
    await this.pauseLocal()
  }

  /**
   * Shuts down: stops taking jobs, then either waits for running jobs (graceful, up to `graceMs`) or hands them
   * back (`handBack`: their handlers are aborted and the jobs go back to waiting at once, no attempt counted).
   * Jobs still running after `graceMs` are handed back. Closes the queue, then its own connections.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.closing) {
      // A second request while a graceful close waits (e.g. a second Ctrl-C) may escalate to a hand-back.
      if (options.handBack) {
        this.handBackRequested = true
        this.escalate()
      }
      return this.closing
    }
    this.closing = this.doClose(options)
    return this.closing
  }

  /**
   * Deletes the whole queue from Redis (every job, and Bullpen's own keys). For tests and "reset everything".
   * Without `force`, Bull refuses while jobs are active.
   */
  async obliterate(options: { force?: boolean } = {}): Promise<void> {
    await this.ready()
    await this.bull.obliterate({ force: options.force ?? true })
    const client = this.connections.client
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${this.key('bp:')}*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== '0')
  }

  // -------------------------------------------------------------------------------------------------------------
  // Private

  private key(suffix: string): string {
    return `${this.prefix}:${this.name}:${suffix}`
  }

  private dedupeKey(dedupe: string): string {
    return this.key(`bp:dedupe:${dedupe}`)
  }

  private cancelKey(id: string): string {
    return this.key(`bp:cancel:${id}`)
  }

  /** Bull's waiting channel (`<wait>ing@<token>`), so that `global:waiting` fires on every node. */
  private waitingChannel(): string {
    return `${this.key('wait')}ing@bullpen`
  }

  private dedupeKeyOf(data: unknown): string | undefined {
    const r = JobDataSchema.shape.dedupeKey.safeParse((data as { dedupeKey?: unknown } | null)?.dedupeKey)
    return r.success ? this.dedupeKey(r.data) : undefined
  }

  private async lua<T = unknown>(name: ScriptName, keys: string[], args: (string | number)[]): Promise<T> {
    const client = this.connections.client as unknown as Record<
      ScriptName,
      (...a: (string | number)[]) => Promise<unknown>
    >
    const dynamicKeys = name !== ADD_JOB_COMMAND && SCRIPTS[name].numberOfKeys === null
    return (await (dynamicKeys
      ? client[name](keys.length, ...keys, ...args)
      : client[name](...keys, ...args))) as T
  }

  private async publish(message: BusMessage): Promise<void> {
    await this.connections.client.publish(this.busChannel, JSON.stringify(message))
  }

  private async init(): Promise<void> {
    await this.bull.isReady()
    // Bull has now defined its scripts on the shared client; bpAddJob wraps the very addJob text Bull runs.
    const client = this.connections.client
    const bullAddJob = (
      client.scriptsSet as Record<string, { lua?: unknown; numberOfKeys?: unknown } | undefined>
    )['addJob']
    if (typeof bullAddJob?.lua !== 'string' || bullAddJob.numberOfKeys !== BULL_ADD_JOB_KEYS) {
      throw new Error("Bull's addJob script is not defined on the Redis client (not Bull 4?)")
    }
    client.defineCommand(ADD_JOB_COMMAND, {
      numberOfKeys: BULL_ADD_JOB_KEYS + 3,
      lua: addJobWithDedupe(bullAddJob.lua),
    })
    this.connections.subscriber.on('message', this.onBusMessage)
    await this.connections.subscribe(this.busChannel)
  }

  private readonly onBusMessage = (channel: string, text: string): void => {
    if (channel !== this.busChannel) return
    let m: BusMessage
    try {
      m = JSON.parse(text) as BusMessage
    } catch {
      return
    }
    if (m.t === 'pause-node' || m.t === 'resume-node') {
      // Another process (e.g. `bullpen pause`) asks this node's worker to pause or resume.
      if (m.node !== this.nodeId || !this.processing) return
      const change = m.t === 'pause-node' ? this.pauseLocal() : this.resumeLocal()
      change.catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'pause request not applied'))
      return
    }
    if (typeof m.jobId !== 'string') return
    if (m.t === 'active') this.events.emit('active', { jobId: m.jobId, node: String(m.node ?? '') })
    else if (m.t === 'removed') this.events.emit('removed', { jobId: m.jobId })
    else if (m.t === 'retrying')
      this.events.emit('retrying', { jobId: m.jobId, reason: String(m.reason ?? '') })
    else if (m.t === 'cancel') {
      this.events.emit('cancel-requested', { jobId: m.jobId })
      this.running.get(m.jobId)?.controller.abort(new CancelRequested(m.jobId))
      for (const h of this.cancelHandlers) {
        try {
          h(m.jobId)
        } catch (err) {
          this.log.error({ err: errorMessage(err) }, 'cancel handler threw')
        }
      }
    }
  }

  private mapGlobalEvents(): void {
    const q = this.bull
    const id = (v: unknown): string => String(v)
    q.on('global:waiting', (jobId: unknown) => this.events.emit('waiting', { jobId: id(jobId) }))
    q.on('global:progress', (jobId: unknown, progress: unknown) => {
      const p = toJobProgress(progress)
      if (p) this.events.emit('progress', { jobId: id(jobId), progress: p })
    })
    q.on('global:completed', (jobId: unknown, result: unknown) => {
      let value: unknown = result
      if (typeof result === 'string') {
        try {
          value = JSON.parse(result)
        } catch {
          value = result
        }
      }
      this.events.emit('completed', { jobId: id(jobId), result: value })
    })
    q.on('global:failed', (jobId: unknown, reason: unknown) =>
      this.events.emit('failed', { jobId: id(jobId), reason: String(reason) }),
    )
    q.on('global:stalled', (jobId: unknown) => this.events.emit('stalled', { jobId: id(jobId) }))
    q.on('global:paused', () => this.events.emit('paused', {}))
    q.on('global:resumed', () => this.events.emit('resumed', {}))
  }

  /** The node recorded on each job (Bull does not read our `bpNode` field back). */
  private async nodesOf(ids: string[]): Promise<(string | null)[]> {
    if (ids.length === 0) return []
    const pipe = this.connections.client.pipeline()
    for (const id of ids) pipe.hget(this.key(id), 'bpNode')
    const res = (await pipe.exec()) ?? []
    return ids.map((_, i) => {
      const v = res[i]?.[1]
      return typeof v === 'string' ? v : null
    })
  }

  private info(
    job: Bull.Job<JobData>,
    state: JobState | 'unknown',
    node: string | null | undefined,
  ): JobInfo {
    const parsed = JobDataSchema.safeParse(job.data)
    const raw = job as unknown as {
      attemptsMade?: number
      finishedOn?: number | null
      processedOn?: number | null
    }
    return {
      id: String(job.id),
      state,
      data: parsed.success ? parsed.data : null,
      invalidReason: parsed.success ? null : describeIssues(parsed.error),
      priority: priorityName(job.opts.priority),
      progress: toJobProgress(job.progress()),
      attemptsMade: raw.attemptsMade ?? 0,
      attempts: job.opts.attempts ?? 1,
      failedReason: job.failedReason ?? null,
      result: job.returnvalue ?? null,
      node: node ?? null,
      createdAt: job.timestamp,
      processedOn: raw.processedOn ?? null,
      finishedOn: raw.finishedOn ?? null,
    }
  }

  private async reprioritise(id: string, value: number, top: boolean): Promise<void> {
    checkJobId(id)
    await this.ready()
    const code = await this.lua<number>(
      'bpSetPriority',
      [this.key('wait'), this.key('paused'), this.key('priority'), this.key(id)],
      [id, value, this.key(''), top ? 'top' : ''],
    )
    if (code === 1) return
    if (code === -1) throw new UserFacingError(`job ${id} does not exist`)
    const job = await this.bull.getJob(id)
    const state = job ? await job.getState() : 'gone'
    throw new UserFacingError(`job ${id} is ${state}; only waiting jobs can be reprioritised`)
  }

  private async runJob<R>(job: Bull.Job<JobData>, handler: JobHandler<R>): Promise<R> {
    const id = String(job.id)
    const unreadable = unreadablePart(job.data)
    if (unreadable !== null) {
      await job.discard()
      throw new InvalidJobError(`job ${id} has an invalid payload: its ${unreadable} in Redis is not JSON`)
    }
    const parsed = JobDataSchema.safeParse(job.data)
    if (!parsed.success) {
      await job.discard()
      throw new InvalidJobError(`job ${id} has an invalid payload: ${describeIssues(parsed.error)}`)
    }
    job.data = parsed.data

    const controller = new AbortController()
    let finish!: () => void
    const done = new Promise<void>((r) => (finish = r))
    this.running.set(id, { controller, done })
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), {
        once: true,
      })
    })
    aborted.catch(() => undefined)
    // Mark the job as ours (node + 'active' event) and learn whether a cancel is already pending, in the worker batch
    // of this turn of the event loop, without holding the handler back (nor, below, Bull's completion): a pending
    // cancel aborts the handler when the reply comes, one round trip after the start.
    this.markActive(id).then(
      (code) => {
        if (code !== 2) return
        if (this.running.get(id)?.controller === controller) controller.abort(new CancelRequested(id))
        else this.log.info({ jobId: id }, 'the job ended before its pending cancel request was seen')
      },
      (err: unknown) =>
        this.log.warn({ jobId: id, err: errorMessage(err) }, 'could not mark the job as running here'),
    )
    /** The handler's own promise: it settles only when its work (an ffmpeg, a transfer) has really stopped. */
    let work: Promise<R> | undefined
    try {
      work = handler(job, controller.signal)
      return await Promise.race([work, aborted])
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined
      if (reason instanceof HandedBack) {
        // The job is already back in the waiting list; settling would make Bull count a failed attempt, so the
        // Bull promise is left pending and the queue is closed without waiting for it.
        return new Promise<R>(() => undefined)
      }
      if (reason instanceof CancelRequested || err instanceof JobCancelledError) {
        await job.discard()
        await this.connections.client.del(this.cancelKey(id)).catch(() => 0)
        throw new JobCancelledError()
      }
      if (err instanceof UnrecoverableJobError) await job.discard()
      throw err instanceof Error ? err : new Error(errorMessage(err))
    } finally {
      // Bull moves the job to completed/failed once this returns: a mark still waiting for its batch only records
      // the node, so no 'active' is announced after 'completed' or 'failed'.
      const mark = this.pendingMarks.find((m) => m.id === id)
      if (mark) mark.ended = true
      this.running.delete(id)
      // `done` (what a close waits for) means the work has stopped, not only that the job was let go: after an
      // abort, ffmpeg may still be exiting and its temp file still there. A process that exits before then leaves an
      // ffmpeg behind (seen as a flaky "second signal" test).
      if (work) work.then(finish, finish)
      else finish()
    }
  }

  /** Queues the mark of a job that starts here for the next worker batch; resolves with bpWorkerBatch's code. */
  private markActive(id: string): Promise<number> {
    return new Promise<number>((done, fail) => {
      this.pendingMarks.push({ id, ended: false, done, fail })
      this.scheduleWorkerBatch()
    })
  }

  private scheduleWorkerBatch(): void {
    if (this.batchTimer) return
    // At least until the replies read in this turn have been handled, so that jobs that start and end together
    // (e.g. Bull's completion reply also carries the next job) share one round trip.
    const send = (): void => this.sendWorkerBatch()
    this.batchTimer = this.workerBatchMs > 0 ? setTimeout(send, this.workerBatchMs) : setImmediate(send)
  }

  /** Sends the pending marks and releases in one bpWorkerBatch call. */
  private sendWorkerBatch(): void {
    if (this.batchTimer) {
      clearTimeout(this.batchTimer as NodeJS.Timeout)
      clearImmediate(this.batchTimer as NodeJS.Immediate)
      this.batchTimer = undefined
    }
    const marks = this.pendingMarks.splice(0)
    const releases = [...this.pendingReleases]
    this.pendingReleases.clear()
    if (marks.length === 0 && releases.length === 0) return
    const keys = [this.key('completed'), this.key('failed')]
    const messages: string[] = []
    for (const { id, ended } of marks) {
      keys.push(this.key(id), this.cancelKey(id))
      messages.push(
        ended ? '' : JSON.stringify({ t: 'active', jobId: id, node: this.nodeId } satisfies BusMessage),
      )
    }
    keys.push(...releases)
    this.lua<number[]>('bpWorkerBatch', keys, [
      this.nodeId,
      this.busChannel,
      marks.length,
      ...messages,
      this.key(''),
    ]).then(
      (codes) => {
        marks.forEach((m, i) => m.done(Number(codes[i] ?? 0)))
      },
      (err: unknown) => {
        for (const m of marks) m.fail(err)
        if (releases.length > 0)
          this.log.debug({ err: errorMessage(err), keys: releases.length }, 'dedupe keys not released')
      },
    )
  }

  /** Aborts the running jobs whose cancel key is set (for requests whose message this node missed). */
  private pollCancelRequests(): void {
    const ids = [...this.running.entries()].filter(([, r]) => !r.controller.signal.aborted).map(([id]) => id)
    if (ids.length === 0 || this.cancelPollBusy) return
    this.cancelPollBusy = true
    this.connections.client
      .mget(ids.map((id) => this.cancelKey(id)))
      .then((values) => {
        values.forEach((v, i) => {
          const id = ids[i] as string
          if (v !== null) this.running.get(id)?.controller.abort(new CancelRequested(id))
        })
      })
      .catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'cancel check failed'))
      .finally(() => (this.cancelPollBusy = false))
  }

  /**
   * Whether Redis answers now. With Redis away, Bull's close must not wait for its jobs' completions (they wait for
   * Redis): its wait reconnects the blocking connection in a promise it only looks at once they are written, and
   * that reconnection failing meanwhile was an unhandled rejection that crashed a stopping worker.
   */
  private redisAnswering(): boolean {
    return this.connections.client.status === 'ready'
  }

  private async handBack(id: string): Promise<void> {
    const token = (this.bull as unknown as { token: string }).token
    const code = await this.lua<number>(
      'bpHandBack',
      [
        this.key('active'),
        this.key('wait'),
        this.key('paused'),
        this.key('meta-paused'),
        this.key('priority'),
        this.key(id),
        this.key('stalled'),
      ],
      [id, token, this.key(''), this.waitingChannel()],
    )
    if (code !== 1) this.log.warn({ jobId: id, code }, 'could not hand the job back (lock lost?)')
  }

  private async doClose(options: CloseOptions): Promise<void> {
    this.handBackRequested ||= options.handBack === true
    clearInterval(this.cancelPoll)
    clearTimeout(this.sweepTimer)
    const graceMs = options.graceMs ?? Infinity
    try {
      await this.readyPromise.catch(() => undefined)
      if (this.processing) {
        this.localPaused = true
        await this.pauseBullLocally().catch(() => undefined)
      }
      let left = [...this.running.entries()]
      // The escalation may have come in while the steps above were awaited: checked here, not only signalled.
      if (left.length > 0 && graceMs > 0 && !this.handBackRequested) {
        const all = Promise.all(left.map(([, r]) => r.done))
        const escalated = new Promise<void>((r) => (this.escalate = r))
        let t: NodeJS.Timeout | undefined
        const grace = Number.isFinite(graceMs) ? new Promise((r) => (t = setTimeout(r, graceMs))) : escalated
        await Promise.race([all, grace, escalated])
        clearTimeout(t)
        left = [...this.running.entries()]
      }
      // With Redis away these calls would wait for it forever; a job left behind is recovered by the stalled check.
      const limit = options.closeTimeoutMs ?? 10_000
      if (left.length > 0) {
        // Hand back first (while the lock is ours), then abort the handlers.
        const handBacks = Promise.all(
          left.map(([id]) =>
            this.handBack(id).catch((err: unknown) => this.log.warn({ err: errorMessage(err) })),
          ),
        )
        if ((await withTimeout(handBacks, limit)) === TIMEOUT)
          this.log.warn('hand-back timed out (Redis away?)')
        for (const [id, r] of left) r.controller.abort(new HandedBack(id))
        // Let the aborted handlers finish their cleanup (ffmpeg killed, temp files removed) before we return and
        // the process may exit.
        await withTimeout(Promise.all(left.map(([, r]) => r.done)), limit)
        await withTimeout(this.bull.close(true), limit)
      } else if ((await withTimeout(this.bull.close(!this.redisAnswering()), limit)) === TIMEOUT) {
        this.log.warn('closing the queue timed out (Redis away?)')
      }
    } finally {
      this.offState()
      // Releases of jobs that ended during the close, while the connection is still open.
      this.sendWorkerBatch()
      try {
        this.connections.subscriber.off('message', this.onBusMessage)
        if (this.ownConnections) {
          await this.connections.close()
        } else {
          await this.connections.unsubscribe(this.busChannel)
          // Bull does not close connections it got from createClient; this queue's blocking one is its own.
          const b = this.bull as unknown as { bclientInitialized?: boolean; bclient: Redis }
          if (b.bclientInitialized) this.connections.release(b.bclient)
        }
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, 'closing connections')
      }
    }
  }
}

/** Job ids are Bull's counter values; anything else could name another key of the queue (e.g. "wait"). */
export function isJobId(id: string): boolean {
  return /^[1-9][0-9]{0,19}$/.test(id)
}

function checkJobId(id: string): void {
  if (!isJobId(id)) throw new UserFacingError(`"${id.slice(0, 40)}" is not a job id`)
}

const TIMEOUT = Symbol('timeout')

/** Resolves with `p`'s value, or {@link TIMEOUT} after `ms` (p keeps running; its rejection is ignored). */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  p.catch(() => undefined)
  let t: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<typeof TIMEOUT>((r) => (t = setTimeout(() => r(TIMEOUT), ms)))])
  } finally {
    clearTimeout(t)
  }
}

function isJobState(s: string): s is JobState {
  return (JOB_STATES as readonly string[]).includes(s)
}
