/**
 * One Bullpen node: the desktop app, `bullpen worker`, `bullpen serve` and `bullpen transcode` are each one of
 * these. It connects to Redis (starting a managed local one when that is the default and nothing answers), checks
 * ffmpeg, owns this process's view of the queue and, when asked, works on it.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type {
  AddFilesRequest,
  AddOutcome,
  JobProgress,
  JobResult,
  JobState,
  JobView,
  NodeInfo,
  Page,
} from '../../shared/api'
import { type JobData, describeSpec } from '../../shared/spec'
import { prepareEach, resolveSpec } from './enqueue'
import { errorMessage } from './errors'
import { checkFfmpeg, listEncoders, warmFfmpeg } from './ffmpeg'
import { logger } from './logger'
import { OutputLedger } from './outputLedger'
import type { PoolConfig } from './pool/config'
import { loadPoolConfig } from './pool/config'
import { PoolMember, poolNodes, servingEntry, tokenMinter } from './pool/member'
import { ownQueueName } from './pool/routing'
import { createProcessor } from './processor'
import { type JobInfo, TranscodeQueue, type WorkerSettings } from './queue'
import { ensureRedis, resolveRedisUrl, describeRedisUrl } from './redis'
import { DEFAULT_CONCURRENCY, SettingsStore, defaultDataDir, nodeIdFor } from './settings'

export type NodeKind = 'desktop' | 'worker' | 'serve' | 'cli'

export interface StartOptions {
  kind: NodeKind
  dataDir?: string
  /** A --redis flag; otherwise settings, then BULLPEN_REDIS_URL, then the local default. */
  redisUrl?: string
  name?: string
  concurrency?: number
  /** Run a worker in this process. */
  work?: boolean
  /** Start and manage a local redis-server when the default URL answers nothing (default true). */
  manageRedis?: boolean
  /** Queue name and key prefix; tests use unique ones. */
  queueName?: string
  prefix?: string
  stallTimeoutMs?: number
  /**
   * Serve this node's files to the pool (file service + registry). Default: every long-running node (not a
   * one-shot CLI command that does not work).
   */
  serve?: boolean
  /** Overrides of the data folder's pool.json (mode, bind, advertiseHost, port, sharedFolders). */
  pool?: Partial<PoolConfig>
  /** Bull lock settings (long encodes); default from BULLPEN_LOCK_DURATION_MS etc., else the queue's. */
  worker?: Partial<WorkerSettings>
  /** Registry heartbeat (tests). */
  heartbeatMs?: number
}

/** Worker lock settings from the environment (BULLPEN_LOCK_DURATION_MS, BULLPEN_STALLED_INTERVAL_MS). */
function workerSettingsFromEnv(): Partial<WorkerSettings> {
  const out: Partial<WorkerSettings> = {}
  const num = (name: string): number | undefined => {
    const v = Number(process.env[name])
    return Number.isInteger(v) && v > 0 ? v : undefined
  }
  const lock = num('BULLPEN_LOCK_DURATION_MS')
  const stalled = num('BULLPEN_STALLED_INTERVAL_MS')
  if (lock !== undefined) out.lockDuration = lock
  if (stalled !== undefined) out.stalledInterval = stalled
  return out
}

/** What the CLI and the app follow while a set of jobs runs. */
export interface FollowHandlers {
  onProgress?(id: string, progress: JobProgress): void
  onActive?(id: string): void
  onDone?(view: JobView): void
  /** An attempt failed and the job will be tried again (after its backoff); `reason` says why. */
  onRetry?(view: JobView, reason: string): void
}

export class BullpenNode {
  private working = false
  private stopped = false
  /** Parallel encodes of this node's worker (0 when it does not work). */
  concurrency = 0
  readonly hostName = hostname()
  ffmpegVersion = ''
  /** This node's part in the pool (registry, file service), when it serves or works. */
  pool: PoolMember | undefined
  /** The pool's queue name (this node's own queue, in "my jobs only" mode, is derived from it). */
  baseQueueName = 'transcode'
  /** Publishes job tokens when this process is not in the pool (a plain `bullpen add`). */
  private mintToken: ((jobId: string, data: JobData) => Promise<void>) | undefined

  private constructor(
    readonly id: string,
    readonly name: string,
    readonly kind: NodeKind,
    readonly dataDir: string,
    readonly settings: SettingsStore,
    readonly redisUrl: string,
    readonly queue: TranscodeQueue,
    private readonly opts: StartOptions,
  ) {}

  /** Connects, checks ffmpeg and, with `work`, starts processing. Throws a UserFacingError when it cannot. */
  static async start(opts: StartOptions): Promise<BullpenNode> {
    const dataDir = opts.dataDir ?? defaultDataDir()
    const settings = new SettingsStore(dataDir)
    const s = settings.get()
    const redisUrl = resolveRedisUrl({
      ...(opts.redisUrl ? { flag: opts.redisUrl } : {}),
      settings: s.redisUrl,
    })
    // A worker's first job needs ffmpeg's encoder, filter and format lists: read them while Redis connects, or
    // recall them (and the versions the check would read) from the data folder when the binaries are unchanged.
    const known = join(dataDir, 'ffmpeg.json')
    if (opts.work) void warmFfmpeg(known).catch(() => undefined)
    const [, ff] = await Promise.all([
      ensureRedis({ url: redisUrl, dataDir, manage: opts.manageRedis ?? true }),
      checkFfmpeg(undefined, known),
    ])
    const id = nodeIdFor(dataDir)
    const name = opts.name ?? (s.nodeName || hostname())
    const baseName = opts.queueName ?? 'transcode'
    const poolConfig = { ...loadPoolConfig(dataDir), ...opts.pool }
    // "My jobs only": this node queues into and works on its own queue (see docs/pooling.md, "Routing").
    const queueName = poolConfig.mode === 'own' ? ownQueueName(baseName, id) : baseName
    const worker = opts.worker ?? workerSettingsFromEnv()
    const queue = new TranscodeQueue({
      redisUrl,
      name: queueName,
      nodeId: id,
      ...(opts.prefix ? { prefix: opts.prefix } : {}),
      ...(Object.keys(worker).length > 0 ? { worker } : {}),
    })
    const node = new BullpenNode(id, name, opts.kind, dataDir, settings, redisUrl, queue, opts)
    node.ffmpegVersion = ff.ffmpegVersion
    node.baseQueueName = baseName
    const concurrency = opts.concurrency ?? s.concurrency ?? DEFAULT_CONCURRENCY
    const serve = opts.serve ?? (opts.kind !== 'cli' || opts.work === true)
    if (serve || opts.work) {
      node.pool = await PoolMember.start({
        nodeId: id,
        name,
        kind: opts.kind,
        dataDir,
        queue,
        registryPrefix: node.registryPrefix,
        serve,
        work: opts.work === true,
        concurrency,
        ffmpegVersion: ff.ffmpegVersion,
        encoders: [...(await listEncoders().catch(() => new Set<string>()))].sort(),
        config: poolConfig,
        ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
      })
    }
    logger.info({ node: id, name, redis: describeRedisUrl(redisUrl) }, 'node started')
    if (opts.work) await node.startWork(concurrency)
    return node
  }

  /** Starts this node's worker (once). */
  async startWork(concurrency: number): Promise<void> {
    if (this.working) return
    this.working = true
    this.concurrency = concurrency
    // How long an ffmpeg may go without progress before it is killed and its job retried (default 2 min).
    const envStall = Number(process.env['BULLPEN_STALL_TIMEOUT_MS'])
    const stallTimeoutMs =
      this.opts.stallTimeoutMs ?? (Number.isInteger(envStall) && envStall > 0 ? envStall : undefined)
    const ledger = new OutputLedger(join(this.dataDir, 'outputs'))
    await ledger.prune()
    const processor = createProcessor({
      nodeId: this.id,
      nodeName: this.name,
      ledger,
      ...(stallTimeoutMs !== undefined ? { stallTimeoutMs } : {}),
      ...(this.pool ? { pool: this.pool } : {}),
    })
    const pool = this.pool
    // A job whose origin is away goes back to the queue (delayed, no attempt counted) instead of failing.
    const handler = PoolMember.handingBack(async (job, signal) => {
      const result = await processor(job, signal)
      // Not awaited: with Redis away the call waits for it, and the job (done, its output in place) would stay
      // 'running' here, so a stopping worker never finished stopping. The throughput count is not worth that.
      void pool?.recordCompletion(String(job.id))
      return result
    }, pool)
    await this.queue.process(concurrency, handler)
  }

  get isWorking(): boolean {
    return this.working
  }

  /** Checks, probes and queues files; one outcome per path, in order. */
  async enqueue(req: AddFilesRequest & { batch?: string }): Promise<AddOutcome[]> {
    const spec = resolveSpec(req)
    const outputDir = req.outputDir || this.settings.get().outputDir
    const batch = req.batch ?? randomBytes(6).toString('hex')
    // Probes run a few at once; each file is queued as soon as it and those before it are ready (order kept).
    const prepared = prepareEach(req.paths, spec, req.priority, {
      origin: this.id,
      ...(outputDir ? { outputDir } : {}),
      batch,
    })
    const outcomes: AddOutcome[] = []
    for (const pending of prepared) {
      const p = await pending
      if (!p.data) {
        outcomes.push({ path: p.path, id: null, duplicate: false, error: p.error ?? 'refused' })
        continue
      }
      try {
        const { id, duplicate } = await this.queue.add(p.data)
        // The transfer token lets the worker that takes the job fetch its input from this node.
        if (!duplicate) {
          if (this.pool) await this.pool.onEnqueued(id, p.data)
          else await (this.mintToken ??= tokenMinter(this.dataDir, this.queue))(id, p.data)
        }
        outcomes.push({ path: p.path, id, duplicate, error: null })
      } catch (err) {
        outcomes.push({ path: p.path, id: null, duplicate: false, error: errorMessage(err) })
      }
    }
    return outcomes
  }

  /** Key prefix of the pool registry: `<prefix>:<base queue name>`. */
  get registryPrefix(): string {
    return `${this.queue.prefix}:${this.baseQueueName}`
  }

  /**
   * Input paths that jobs queued here may still need: those of waiting, paused, delayed, active and failed jobs, in the
   * pool's queue and in this node's own queue ("my jobs only" mode), whichever mode the node is in now.
   */
  async inputsStillNeeded(): Promise<Set<string>> {
    const base = this.baseQueueName
    return this.queue.inputPaths(
      ['delayed', 'paused', 'waiting', 'active', 'failed'],
      [base, ownQueueName(base, this.id)],
    )
  }

  /** The live nodes of the pool. */
  async listNodes(): Promise<NodeInfo[]> {
    return this.pool ? this.pool.listNodes() : poolNodes(this.queue, this.registryPrefix, this.id)
  }

  /** True when a process of this node (this data folder) is serving its files to the pool right now. */
  async isServing(): Promise<boolean> {
    if (this.pool?.fileServiceUrl) return true
    return (await servingEntry(this.queue, this.registryPrefix, this.id)) !== null
  }

  /** One page of jobs in a state, as views. */
  async list(state: JobState, offset: number, limit: number): Promise<Page<JobView>> {
    const page = await this.queue.list(state, { offset, limit })
    return { items: page.items.map(toJobView), total: page.total, offset }
  }

  /** A job as the UI and the CLI show it, or null when it is gone. */
  async view(id: string): Promise<JobView | null> {
    const info = await this.queue.get(id)
    return info ? toJobView(info) : null
  }

  /**
   * Follows jobs until each has completed or failed for good (a failure that will be retried is not the end).
   * Resolves with their final views, in the order of `ids`.
   */
  async follow(ids: readonly string[], handlers: FollowHandlers = {}): Promise<JobView[]> {
    const pending = new Set(ids)
    const finals = new Map<string, JobView>()
    return new Promise<JobView[]>((resolveAll) => {
      let settled = false
      const unsubscribers: Array<() => void> = []
      const finish = (): void => {
        if (settled || pending.size > 0) return
        settled = true
        for (const u of unsubscribers) u()
        clearInterval(poll)
        resolveAll(ids.map((id) => finals.get(id) as JobView))
      }
      /** `failedAttempt`: why the attempt that has just failed did, when the job is to be tried again. */
      const check = async (id: string, failedAttempt?: string): Promise<void> => {
        if (!pending.has(id)) return
        const v = await this.view(id).catch(() => undefined)
        if (v === undefined || !pending.has(id)) return
        if (v === null) {
          // Removed while we followed it: report it as failed with a reason.
          pending.delete(id)
          finals.set(id, goneView(id))
          handlers.onDone?.(finals.get(id) as JobView)
        } else if (
          v.state === 'completed' ||
          (v.state === 'failed' && v.attemptsMade >= v.attempts) ||
          (v.state === 'failed' && v.cancelled)
        ) {
          pending.delete(id)
          finals.set(id, v)
          handlers.onDone?.(v)
        } else if (failedAttempt !== undefined) {
          handlers.onRetry?.(v, failedAttempt)
        }
        finish()
      }
      const ev = this.queue.events
      // A job may start before this subscription does (the first of a batch): its first progress announces it, and its
      // 'active' event (which can come later) then says nothing more. A failed or stalled attempt is announced again
      // when the job restarts.
      const started = new Set<string>()
      unsubscribers.push(
        ev.on('progress', ({ jobId, progress }) => {
          if (!pending.has(jobId)) return
          if (!started.has(jobId)) {
            started.add(jobId)
            handlers.onActive?.(jobId)
          }
          handlers.onProgress?.(jobId, progress)
        }),
        ev.on('active', ({ jobId }) => {
          if (!pending.has(jobId) || started.has(jobId)) return
          started.add(jobId)
          handlers.onActive?.(jobId)
        }),
        ev.on('stalled', ({ jobId }) => started.delete(jobId)),
        ev.on('completed', ({ jobId }) => void check(jobId)),
        ev.on('failed', ({ jobId }) => void check(jobId)),
        ev.on('retrying', ({ jobId, reason }) => {
          started.delete(jobId)
          void check(jobId, reason)
        }),
        ev.on('removed', ({ jobId }) => void check(jobId)),
      )
      // Events can be missed across a Redis restart: look at the jobs themselves now and then too.
      const poll = setInterval(() => {
        for (const id of pending) void check(id)
      }, 2000)
      for (const id of ids) void check(id)
    })
  }

  /**
   * Stops this node: takes no new jobs, then lets active ones finish — or, with `handBack`, aborts them and puts
   * them back in the queue at once for another node.
   */
  async stop(opts: { handBack?: boolean } = {}): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    // Leave the pool first: the registry shares the queue's connections, which close with it.
    await this.pool?.stop()
    await this.queue.close({ handBack: opts.handBack ?? false })
  }
}

function goneView(id: string): JobView {
  return {
    id,
    state: 'failed',
    name: `job ${id}`,
    inputPath: '',
    outputDir: '',
    spec: { format: 'mp4', subtitles: 'keep' },
    label: '',
    priority: 'normal',
    origin: '',
    node: null,
    summary: { durationSec: null, hasVideo: false, hasAudio: false, width: null, height: null },
    progress: null,
    result: null,
    failedReason: 'the job was removed',
    cancelled: false,
    attemptsMade: 0,
    attempts: 0,
    createdAt: 0,
    startedAt: null,
    finishedAt: null,
    batch: null,
  }
}

/**
 * A job as plain data for the UI and the CLI. The payload is untrusted: a job that fails validation is still shown
 * (so it can be removed), with its problem as the reason.
 */
export function toJobView(info: JobInfo): JobView {
  const data = info.data
  const result = (info.result ?? null) as JobResult | null
  const state: JobState = info.state === 'unknown' ? 'failed' : info.state
  const inputPath = data?.input.path ?? ''
  const name = inputPath ? (inputPath.split(/[\\/]/).pop() ?? inputPath) : `job ${info.id}`
  const p = info.progress
  const progress: JobProgress | null =
    state === 'active' && p
      ? {
          stage: p.stage ?? 'encode',
          percent: p.percent ?? null,
          fps: p.fps ?? null,
          speed: p.speed ?? null,
          etaSec: p.etaSec ?? null,
        }
      : null
  return {
    id: info.id,
    state,
    name,
    inputPath,
    outputDir: data?.outputDir ?? '',
    spec: data?.spec ?? { format: 'mp4', subtitles: 'keep' },
    label: data ? describeSpec(data.spec) : 'invalid job',
    priority: info.priority,
    origin: data?.origin ?? '',
    node: info.node ?? result?.node ?? null,
    summary: data?.summary ?? {
      durationSec: null,
      hasVideo: false,
      hasAudio: false,
      width: null,
      height: null,
    },
    progress,
    result: state === 'completed' ? result : null,
    // A delayed job's is why its last attempt did not finish (it waits for its backoff, or for its origin): the UI
    // and `bullpen jobs` show it as the reason it will be retried.
    failedReason:
      state === 'failed'
        ? (info.failedReason ?? info.invalidReason ?? 'failed')
        : state === 'delayed'
          ? (info.failedReason ?? null)
          : null,
    cancelled: state === 'failed' && info.failedReason === 'cancelled',
    attemptsMade: info.attemptsMade,
    attempts: info.attempts,
    createdAt: data?.createdAt ?? info.createdAt,
    startedAt: info.processedOn,
    finishedAt: info.finishedOn,
    batch: data?.batch ?? null,
  }
}
