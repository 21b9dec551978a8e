/**
 * The one implementation of {@link AppApi} on the core. Electron IPC (src/main/ipc.ts) and the WebSocket bridge of
 * `bullpen serve` (src/main/core/server) both expose this object; neither adds behaviour of its own.
 *
 * Events: Bull's global events become {@link AppEvents} with full job views. Progress is coalesced: whatever the
 * number of active jobs, at most one `job:progress` per job per flush and a bounded number per flush.
 */
import type {
  AddFilesRequest,
  AddOutcome,
  AppApi,
  AppEventName,
  AppEvents,
  ConnectionStatus,
  JobProgress,
  JobState,
  JobView,
  NodeInfo,
  Page,
  PresetInfo,
  QueueStats,
  Settings,
  Subscribe,
} from '../../shared/api'
import { JOB_STATES } from '../../shared/api'
import { PRESETS, PRESET_NAMES, type Priority, presetSpec } from '../../shared/spec'
import { UserFacingError } from './errors'
import { EventBus } from './events'
import { logger } from './logger'
import type { BullpenNode } from './node'
import { describeRedisUrl } from './redis'

/** How often coalesced progress is flushed to listeners. */
export const PROGRESS_FLUSH_MS = 250
/** At most this many progress events per flush (the most recent win); bounds the rate whatever the load. */
export const MAX_PROGRESS_PER_FLUSH = 64
const STATS_DEBOUNCE_MS = 300
const STATS_INTERVAL_MS = 5000
const NODES_INTERVAL_MS = 5000
const MAX_PAGE = 500

export interface AppApiOptions {
  /** URL of the queue dashboard, when this host serves one. */
  dashboardUrl?: () => string | null
  /** Desktop-only actions; absent elsewhere. */
  reveal?: (path: string) => Promise<boolean>
  open?: (path: string) => Promise<boolean>
  /** The pool's node list; defaults to just this node. */
  listNodes?: () => Promise<NodeInfo[]>
}

export type CoreApi = AppApi & {
  on: Subscribe
  /** Stops listening to the queue (the node itself is stopped by its owner). */
  close(): Promise<void>
}

function clampPage(offset: number, limit: number): [number, number] {
  const o = Number.isInteger(offset) && offset >= 0 ? offset : 0
  const l = Number.isInteger(limit) && limit > 0 ? Math.min(limit, MAX_PAGE) : 50
  return [o, l]
}

/** Builds the AppApi over a started node. */
export function createAppApi(node: BullpenNode, options: AppApiOptions = {}): CoreApi {
  const bus = new EventBus<AppEvents>((err, event) =>
    logger.warn({ event, err: String(err) }, 'listener failed'),
  )
  const queue = node.queue
  let connection: ConnectionStatus = { state: 'ready', redis: describeRedisUrl(node.redisUrl), message: null }

  // --- progress coalescing
  const pendingProgress = new Map<string, JobProgress>()
  const flush = setInterval(() => {
    if (pendingProgress.size === 0) return
    let n = 0
    for (const [id, progress] of pendingProgress) {
      if (n++ >= MAX_PROGRESS_PER_FLUSH) break
      pendingProgress.delete(id)
      bus.emit('job:progress', { id, progress })
    }
  }, PROGRESS_FLUSH_MS)
  flush.unref()

  // --- stats, debounced after events and refreshed now and then
  let statsTimer: NodeJS.Timeout | null = null
  const getStats = async (): Promise<QueueStats> => {
    return queue.stats()
  }
  const scheduleStats = (): void => {
    if (statsTimer) return
    statsTimer = setTimeout(() => {
      statsTimer = null
      getStats().then(
        (s) => bus.emit('stats', s),
        (err: unknown) => logger.debug({ err: String(err) }, 'stats not read'),
      )
    }, STATS_DEBOUNCE_MS)
  }
  const statsTick = setInterval(scheduleStats, STATS_INTERVAL_MS)
  statsTick.unref()

  // Node ids → names, from the pool registry, so a job shows "on big-box" rather than its node's id. Refreshed
  // with the `nodes` event every few seconds.
  const nodeNames = new Map<string, string>()
  const named = (v: JobView): JobView => (v.node ? { ...v, node: nodeNames.get(v.node) ?? v.node } : v)
  const refreshNodes = async (): Promise<NodeInfo[]> => {
    const nodes = await api.listNodes()
    for (const n of nodes) nodeNames.set(n.id, n.name)
    return nodes
  }
  const nodesTick = setInterval(() => {
    refreshNodes().then(
      (nodes) => bus.emit('nodes', nodes),
      (err: unknown) => logger.debug({ err: String(err) }, 'nodes not read'),
    )
  }, NODES_INTERVAL_MS)
  nodesTick.unref()

  const emitView = (id: string, pick: (v: JobView) => AppEventName): void => {
    node.view(id).then(
      (found) => {
        if (!found) return
        const v = named(found)
        const name = pick(v)
        if (
          name === 'job:added' ||
          name === 'job:updated' ||
          name === 'job:completed' ||
          name === 'job:failed'
        ) {
          bus.emit(name, v)
        }
      },
      (err: unknown) => logger.debug({ id, err: String(err) }, 'job view not read'),
    )
    scheduleStats()
  }

  const ev = queue.events
  const unsubscribe = [
    ev.on('waiting', ({ jobId }) => emitView(jobId, () => 'job:added')),
    ev.on('active', ({ jobId }) => emitView(jobId, () => 'job:updated')),
    ev.on('stalled', ({ jobId }) => emitView(jobId, () => 'job:updated')),
    ev.on('completed', ({ jobId }) => {
      pendingProgress.delete(jobId)
      emitView(jobId, () => 'job:completed')
    }),
    ev.on('failed', ({ jobId }) => {
      pendingProgress.delete(jobId)
      // A failure that will be retried leaves the job delayed or waiting: that is an update, not the end.
      emitView(jobId, (v) => (v.state === 'failed' ? 'job:failed' : 'job:updated'))
    }),
    ev.on('removed', ({ jobId }) => {
      pendingProgress.delete(jobId)
      bus.emit('job:removed', { id: jobId })
      scheduleStats()
    }),
    ev.on('progress', ({ jobId, progress }) => {
      pendingProgress.set(jobId, {
        stage: progress.stage ?? 'encode',
        percent: progress.percent ?? null,
        fps: progress.fps ?? null,
        speed: progress.speed ?? null,
        etaSec: progress.etaSec ?? null,
      })
    }),
    ev.on('paused', () => scheduleStats()),
    ev.on('resumed', () => scheduleStats()),
    ev.on('connection', ({ state }) => {
      connection = {
        state,
        redis: describeRedisUrl(node.redisUrl),
        message:
          state === 'ready'
            ? null
            : `Redis at ${describeRedisUrl(node.redisUrl)} is not answering; retrying.`,
      }
      bus.emit('connection', connection)
      if (state === 'ready') scheduleStats()
    }),
  ]

  const self = (): NodeInfo => ({
    id: node.id,
    name: node.name,
    host: node.hostName,
    kind: node.kind,
    concurrency: node.concurrency,
    active: 0,
    paused: queue.isLocalPaused(),
    ffmpegVersion: node.ffmpegVersion,
    encoders: [],
    lastSeen: Date.now(),
    completedLastHour: 0,
    isSelf: true,
  })

  const api: CoreApi = {
    on: (event, listener) => bus.on(event, listener),

    async addFiles(req: AddFilesRequest): Promise<AddOutcome[]> {
      const outcomes = await node.enqueue(req)
      const patch: Partial<Settings> = { lastPriority: req.priority }
      if (req.preset) patch.lastPreset = req.preset
      try {
        node.settings.update(patch)
      } catch {
        // remembering the choice is a convenience; never fail a drop over it
      }
      return outcomes
    },

    async listJobs(state: JobState, offset: number, limit: number): Promise<Page<JobView>> {
      if (!(JOB_STATES as readonly string[]).includes(state))
        throw new UserFacingError(`Unknown job state "${state}".`)
      const [o, l] = clampPage(offset, limit)
      const page = await node.list(state, o, l)
      return { ...page, items: page.items.map(named) }
    },
    getJob: async (id) => {
      const v = await node.view(id)
      return v && named(v)
    },
    getStats,
    setPriority: async (id: string, priority: Priority) => {
      await queue.setPriority(id, priority)
      emitView(id, () => 'job:updated')
    },
    moveToTop: async (id) => {
      await queue.moveToTop(id)
      emitView(id, () => 'job:updated')
    },
    cancel: async (id) => {
      await queue.cancel(id)
    },
    retry: async (id) => {
      await queue.retry(id)
      emitView(id, () => 'job:updated')
    },
    remove: async (id) => {
      await queue.remove(id)
    },
    pause: async (scope) => {
      if (scope === 'pool') await queue.pausePool()
      else {
        await queue.pauseLocal()
      }
      scheduleStats()
    },
    resume: async (scope) => {
      if (scope === 'pool') await queue.resumePool()
      else {
        await queue.resumeLocal()
      }
      scheduleStats()
    },
    clean: async (graceMs) => {
      const grace = Number.isFinite(graceMs) && graceMs >= 0 ? graceMs : 24 * 3600_000
      const removed = await queue.clean(grace)
      scheduleStats()
      return removed.completed + removed.failed
    },
    getSettings: () => Promise.resolve(node.settings.get()),
    updateSettings: (patch) => Promise.resolve(node.settings.update(patch)),
    async listNodes() {
      if (options.listNodes) return options.listNodes()
      // The pool's registry; this node first when it is not registered (a node that neither serves nor works).
      const nodes = await node.listNodes().catch(() => [] as NodeInfo[])
      return nodes.some((n) => n.isSelf) ? nodes : [self(), ...nodes]
    },
    listPresets: () =>
      Promise.resolve(
        PRESET_NAMES.map((name): PresetInfo => ({
          name,
          format: PRESETS[name].format,
          description: PRESETS[name].description,
          spec: presetSpec(name),
        })),
      ),
    getConnection: () => Promise.resolve(connection),
    revealOutput: async (id) => {
      const v = await node.view(id)
      if (!v?.result || !options.reveal) return false
      return options.reveal(v.result.outputPath)
    },
    openOutput: async (id) => {
      const v = await node.view(id)
      if (!v?.result || !options.open) return false
      return options.open(v.result.outputPath)
    },
    dashboardUrl: () => Promise.resolve(options.dashboardUrl?.() ?? null),
    close: () => {
      clearInterval(flush)
      clearInterval(statsTick)
      clearInterval(nodesTick)
      if (statsTimer) clearTimeout(statsTimer)
      for (const u of unsubscribe) u()
      bus.removeAllListeners()
      return Promise.resolve()
    },
  }
  void refreshNodes().catch(() => undefined)
  return api
}
