/**
 * One Bullpen node: the desktop app, `bullpen worker`, `bullpen serve` and `bullpen transcode` are each one of
 * these. It connects to Redis (starting a managed local one when that is the default and nothing answers), checks
 * ffmpeg, owns this process's view of the queue and, when asked, works on it.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type {
  AddFilesRequest,
  AddOutcome,
  JobProgress,
  JobResult,
  JobState,
  JobView,
  Page,
} from '../../shared/api'
import { describeSpec } from '../../shared/spec'
import { prepareFiles, resolveSpec } from './enqueue'
import { errorMessage } from './errors'
import { checkFfmpeg } from './ffmpeg'
import { logger } from './logger'
import { createProcessor } from './processor'
import { type JobInfo, TranscodeQueue } from './queue'
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
}

/** What the CLI and the app follow while a set of jobs runs. */
export interface FollowHandlers {
  onProgress?(id: string, progress: JobProgress): void
  onActive?(id: string): void
  onDone?(view: JobView): void
}

export class BullpenNode {
  private working = false
  private stopped = false
  /** Parallel encodes of this node's worker (0 when it does not work). */
  concurrency = 0
  readonly hostName = hostname()
  ffmpegVersion = ''

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
    await ensureRedis({ url: redisUrl, dataDir, manage: opts.manageRedis ?? true })
    const ff = await checkFfmpeg()
    const id = nodeIdFor(dataDir)
    const name = opts.name ?? (s.nodeName || hostname())
    const queue = new TranscodeQueue({
      redisUrl,
      ...(opts.queueName ? { name: opts.queueName } : {}),
      ...(opts.prefix ? { prefix: opts.prefix } : {}),
    })
    const node = new BullpenNode(id, name, opts.kind, dataDir, settings, redisUrl, queue, opts)
    node.ffmpegVersion = ff.ffmpegVersion
    logger.info({ node: id, name, redis: describeRedisUrl(redisUrl) }, 'node started')
    if (opts.work) await node.startWork(opts.concurrency ?? s.concurrency ?? DEFAULT_CONCURRENCY)
    return node
  }

  /** Starts this node's worker (once). */
  async startWork(concurrency: number): Promise<void> {
    if (this.working) return
    this.working = true
    this.concurrency = concurrency
    const processor = createProcessor({
      nodeId: this.id,
      nodeName: this.name,
      ...(this.opts.stallTimeoutMs !== undefined ? { stallTimeoutMs: this.opts.stallTimeoutMs } : {}),
    })
    await this.queue.process(concurrency, (job, signal) => processor(job, signal))
  }

  get isWorking(): boolean {
    return this.working
  }

  /** Checks, probes and queues files; one outcome per path, in order. */
  async enqueue(req: AddFilesRequest & { batch?: string }): Promise<AddOutcome[]> {
    const spec = resolveSpec(req)
    const outputDir = req.outputDir || this.settings.get().outputDir
    const batch = req.batch ?? randomBytes(6).toString('hex')
    const prepared = await prepareFiles(req.paths, spec, req.priority, {
      origin: this.id,
      ...(outputDir ? { outputDir } : {}),
      batch,
    })
    const outcomes: AddOutcome[] = []
    for (const p of prepared) {
      if (!p.data) {
        outcomes.push({ path: p.path, id: null, duplicate: false, error: p.error ?? 'refused' })
        continue
      }
      try {
        const { id, duplicate } = await this.queue.add(p.data)
        outcomes.push({ path: p.path, id, duplicate, error: null })
      } catch (err) {
        outcomes.push({ path: p.path, id: null, duplicate: false, error: errorMessage(err) })
      }
    }
    return outcomes
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
      const check = async (id: string): Promise<void> => {
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
        }
        finish()
      }
      const ev = this.queue.events
      unsubscribers.push(
        ev.on('progress', ({ jobId, progress }) => {
          if (pending.has(jobId)) handlers.onProgress?.(jobId, progress as JobProgress)
        }),
        ev.on('active', ({ jobId }) => {
          if (pending.has(jobId)) handlers.onActive?.(jobId)
        }),
        ev.on('completed', ({ jobId }) => void check(jobId)),
        ev.on('failed', ({ jobId }) => void check(jobId)),
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
          stage: (p.stage as JobProgress['stage'] | undefined) ?? 'encode',
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
    failedReason: state === 'failed' ? (info.failedReason ?? info.invalidReason ?? 'failed') : null,
    cancelled: state === 'failed' && info.failedReason === 'cancelled',
    attemptsMade: info.attemptsMade,
    attempts: info.attempts,
    createdAt: data?.createdAt ?? info.createdAt,
    startedAt: info.processedOn,
    finishedAt: info.finishedOn,
    batch: data?.batch ?? null,
  }
}
