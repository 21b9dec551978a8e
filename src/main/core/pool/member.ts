/**
 * One node's part in the pool, in one object the node wires in: it registers the node (heartbeat), runs the file
 * service when the node serves its files, mints a token for each job the node queues, and runs each job it takes
 * the pooled way (in place, through a shared folder, or fetch → encode → upload), handing jobs whose origin is
 * away back to the queue without counting an attempt.
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type Bull from 'bull'
import type { NodeInfo } from '../../../shared/api'
import type { JobData } from '../../../shared/spec'
import { errorMessage } from '../errors'
import { logger as rootLogger, type Logger } from '../logger'
import type { TranscodeQueue } from '../queue'
import { type PoolConfig, loadPoolConfig } from './config'
import { EncoderMissingHereError, HandBackError, OriginUnavailableError } from './errors'
import { FileService } from './fileService'
import { prepareHandBack } from './handBack'
import { NodeRegistry, type NodeAnnouncement, type NodeRecord, listNodeInfos, readNodes } from './registry'
import {
  type EncodeRequest,
  type PooledProgress,
  type PooledResult,
  cleanScratch,
  runPooled,
} from './remoteJob'
import { TokenStore, jobToken, loadOrCreateSecret } from './tokens'

export interface PoolMemberOptions {
  nodeId: string
  name: string
  kind: NodeAnnouncement['kind']
  dataDir: string
  queue: TranscodeQueue
  /** Key prefix of the registry, shared by every queue of the pool: `<prefix>:<base queue name>`. */
  registryPrefix: string
  /** Run the file service (long-running nodes that queue jobs: desktop, serve, worker, transcode, add --wait). */
  serve: boolean
  /** This process works on the queue (its scratch folder is emptied at start). */
  work: boolean
  concurrency: number
  ffmpegVersion: string
  encoders: string[]
  /** Overrides of pool.json. */
  config?: Partial<PoolConfig>
  heartbeatMs?: number
  logger?: Logger
}

/** This node's membership in the pool. */
export class PoolMember {
  readonly config: PoolConfig
  readonly registry: NodeRegistry
  readonly tokens: TokenStore
  readonly scratchDir: string
  private fileService: FileService | undefined
  private readonly unsubscribe: Array<() => void> = []
  private readonly secret: Buffer
  readonly log: Logger

  private constructor(private readonly opts: PoolMemberOptions) {
    this.log = (opts.logger ?? rootLogger).child({ module: 'pool', node: opts.nodeId })
    this.config = { ...loadPoolConfig(opts.dataDir), ...opts.config }
    this.secret = loadOrCreateSecret(opts.dataDir)
    const q = opts.queue
    const redis = q.connections.client
    this.tokens = new TokenStore(redis, `${q.prefix}:${q.name}`)
    this.scratchDir = join(opts.dataDir, 'scratch')
    this.registry = new NodeRegistry({
      redis,
      keyPrefix: opts.registryPrefix,
      ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
      self: {
        id: opts.nodeId,
        name: opts.name,
        host: hostname(),
        kind: opts.kind,
        concurrency: opts.work ? opts.concurrency : 0,
        active: 0,
        paused: false,
        ffmpegVersion: opts.ffmpegVersion,
        encoders: opts.encoders,
        fileServiceUrl: null,
        sharedFolders: this.config.sharedFolders,
        mode: this.config.mode,
        startedAt: Date.now(),
      },
      refresh: () => ({ active: q.runningJobs().length, paused: q.isLocalPaused() }),
      logger: this.log,
    })
  }

  /** Joins the pool: empties the scratch folder (workers), starts the file service (servers), registers. */
  static async start(opts: PoolMemberOptions): Promise<PoolMember> {
    const m = new PoolMember(opts)
    if (opts.work) await cleanScratch(m.scratchDir)
    if (opts.serve) {
      const q = opts.queue
      m.fileService = new FileService({
        nodeId: opts.nodeId,
        secret: m.secret,
        redis: q.connections.client,
        keyPrefix: `${q.prefix}:${q.name}`,
        bind: m.config.bind,
        port: m.config.port,
        ...(m.config.advertiseHost ? { advertiseHost: m.config.advertiseHost } : {}),
        lookupJob: async (id) => {
          const job = await q.getBullJob(id)
          if (!job) return null
          return { state: await job.getState(), data: job.data }
        },
        logger: m.log,
      })
      // A finished or removed job needs no token any more (a failed one keeps it: it may be retried).
      const forget = ({ jobId }: { jobId: string }): void =>
        void m.tokens.delete(jobId).catch(() => undefined)
      m.unsubscribe.push(q.events.on('completed', forget), q.events.on('removed', forget))
      // An upload cut off for a job that then ended will never be resumed: drop what the origin holds of it.
      const fs = m.fileService
      const discard = ({ jobId }: { jobId: string }): void =>
        void fs.discardUpload(jobId).catch(() => undefined)
      for (const ev of ['completed', 'failed', 'removed'] as const)
        m.unsubscribe.push(q.events.on(ev, discard))
      const url = await m.fileService.start()
      await m.registry.update({ fileServiceUrl: url })
      await m
        .reissueTokens()
        .catch((err: unknown) => m.log.warn({ err: errorMessage(err) }, 'could not re-issue transfer tokens'))
    }
    await m.registry.start()
    return m
  }

  /** The file service's URL, when this node serves. */
  get fileServiceUrl(): string | null {
    return this.fileService?.url ?? null
  }

  /** Origin: publishes the transfer token of a job this node queued. */
  async onEnqueued(jobId: string, data: JobData): Promise<void> {
    if (data.origin !== this.opts.nodeId) return
    await this.tokens.put(jobId, jobToken(this.secret, jobId, data))
  }

  /** Tokens of this node's pending jobs again (they are re-derivable; a Redis that lost them gets them back). */
  async reissueTokens(): Promise<number> {
    let n = 0
    for (const state of ['waiting', 'delayed', 'active', 'paused'] as const) {
      for (let offset = 0; ; offset += 1000) {
        const page = await this.opts.queue.list(state, { offset, limit: 1000 })
        for (const info of page.items) {
          if (info.data?.origin === this.opts.nodeId) {
            await this.onEnqueued(info.id, info.data)
            n++
          }
        }
        if (page.items.length < 1000) break
      }
    }
    return n
  }

  /**
   * Runs one job the pooled way. `encode` transcodes `inputPath` into `outputDir`.
   * @throws OriginUnavailableError when the origin is away: hand the job back with {@link prepareHandBack}.
   */
  async run<R extends { outputPath: string }>(
    jobId: string,
    data: JobData,
    encode: (req: EncodeRequest) => Promise<R>,
    opts: { signal?: AbortSignal; onProgress?: (p: PooledProgress) => void } = {},
  ): Promise<PooledResult<R>> {
    try {
      return await runPooled(
        jobId,
        data,
        {
          nodeId: this.opts.nodeId,
          sharedFolders: this.config.sharedFolders,
          getNode: (id) => this.registry.getNode(id),
          getToken: (id) => this.tokens.get(id),
          scratchDir: this.scratchDir,
          logger: this.log,
          stream: process.env['BULLPEN_POOL_STREAM'] !== '0',
        },
        encode,
        opts,
      )
    } catch (err) {
      if (err instanceof OriginUnavailableError) this.log.info({ jobId, origin: err.origin }, err.message)
      throw err
    }
  }

  /**
   * Wraps a Bull handler: a {@link HandBackError} (the origin is away) hands the job back to the queue (delayed,
   * attempt not counted) instead of failing it; so does an encoder this node's ffmpeg lacks when another live pool
   * node has it (check-and-hand-back capability routing, see docs/pooling.md).
   */
  static handingBack<R>(
    handler: (job: Bull.Job<JobData>, signal: AbortSignal) => Promise<R>,
    member?: PoolMember,
  ): (job: Bull.Job<JobData>, signal: AbortSignal) => Promise<R> {
    return async (job, signal) => {
      try {
        return await handler(job, signal)
      } catch (err) {
        if (err instanceof HandBackError) throw prepareHandBack(job, err)
        const elsewhere = member ? await member.encoderElsewhere(err) : null
        if (elsewhere) {
          member?.log.info({ jobId: job.id, encoders: elsewhere.encoders }, elsewhere.message)
          throw prepareHandBack(job, elsewhere)
        }
        throw err
      }
    }
  }

  /**
   * When `err` says this node's ffmpeg lacks encoders and a live pool node that works has them all, the error that
   * leaves the job to it; null otherwise (then the job fails as usual: nobody could do it).
   */
  async encoderElsewhere(err: unknown): Promise<EncoderMissingHereError | null> {
    if (!(err instanceof Error) || err.name !== 'FfmpegMissingError') return null
    // The ffmpeg layer's message: "this ffmpeg has no libx, liby encoder, needed for …".
    const m = /has no (.+?) encoders?\b/.exec(err.message)
    if (!m?.[1]) return null
    const missing = m[1].split(/,\s*/).filter((e) => /^[A-Za-z0-9_.-]{1,64}$/.test(e))
    if (missing.length === 0) return null
    const nodes = await this.registry.listRecords().catch(() => [])
    const able = nodes.find(
      (n) =>
        n.id !== this.opts.nodeId &&
        n.mode === 'pool' &&
        n.concurrency > 0 &&
        missing.every((e) => n.encoders.includes(e)),
    )
    if (!able) return null
    return new EncoderMissingHereError(
      `needs ${missing.join(', ')}, which the ffmpeg of ${this.opts.name} lacks: left for ${able.name} or another node that has it`,
      missing,
    )
  }

  /** Counts a completed job for this node's throughput. */
  async recordCompletion(jobId: string): Promise<void> {
    await this.registry.recordCompletion(jobId).catch(() => undefined)
  }

  /** Live nodes of the pool. */
  listNodes(): Promise<NodeInfo[]> {
    return this.registry.listNodes()
  }

  /** Leaves the pool: deregisters and stops the file service. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u()
    // Redis may be away (commands then wait for it): do not let that hold up a shutdown.
    const deregistered = this.registry.deregister().catch(() => undefined)
    await Promise.race([deregistered, new Promise((r) => setTimeout(r, 3000).unref())])
    await this.fileService?.close()
  }
}

/**
 * Mints and publishes job tokens for the node of `dataDir` without joining the pool: `bullpen add` (no --wait)
 * queues jobs that a running node of the same data folder will serve, with the same secret.
 */
export function tokenMinter(
  dataDir: string,
  queue: TranscodeQueue,
): (jobId: string, data: JobData) => Promise<void> {
  const secret = loadOrCreateSecret(dataDir)
  const store = new TokenStore(queue.connections.client, `${queue.prefix}:${queue.name}`)
  return (jobId, data) => store.put(jobId, jobToken(secret, jobId, data))
}

/** Live nodes, read without joining the pool (`bullpen nodes`). */
export async function poolNodes(
  queue: TranscodeQueue,
  registryPrefix: string,
  selfId?: string,
): Promise<NodeInfo[]> {
  return listNodeInfos(queue.connections.client, registryPrefix, selfId)
}

/** The live entry of a node id with a file service, if any (is a node of this data folder serving?). */
export async function servingEntry(
  queue: TranscodeQueue,
  registryPrefix: string,
  nodeId: string,
): Promise<NodeRecord | null> {
  const nodes = await readNodes(queue.connections.client, registryPrefix)
  return nodes.find((n) => n.id === nodeId && n.fileServiceUrl !== null) ?? null
}
