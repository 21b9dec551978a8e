/**
 * A small in-memory BullpenBridge for the renderer's component and store tests only (the real core is exercised by
 * the end-to-end tests in a browser). It keeps jobs in insertion order, records every call, and lets a test push
 * events with `emit`.
 */
import {
  JOB_STATES,
  type AddFilesRequest,
  type AddOutcome,
  type AppEventName,
  type AppEvents,
  type BullpenBridge,
  type ConnectionStatus,
  type JobState,
  type JobView,
  type NodeInfo,
  type Page,
  type PresetInfo,
  type QueueStats,
  type Settings,
} from '../../../shared/api'
import type { Priority } from '../../../shared/spec'

let seq = 0

/** A JobView with sensible defaults. */
export function makeJob(over: Partial<JobView> = {}): JobView {
  const id = over.id ?? `job-${++seq}`
  const name = over.name ?? `${id}.mp4`
  return {
    id,
    state: 'waiting',
    name,
    inputPath: `/media/${name}`,
    outputDir: '/media',
    spec: { format: 'mp4', resize: { height: 720 }, subtitles: 'keep', preset: '720p' },
    label: '720p',
    priority: 'normal',
    origin: 'desk-1',
    node: null,
    summary: { durationSec: 12, hasVideo: true, hasAudio: true, width: 1920, height: 1080 },
    progress: null,
    result: null,
    failedReason: null,
    cancelled: false,
    attemptsMade: 0,
    attempts: 3,
    createdAt: 1_700_000_000_000,
    startedAt: null,
    finishedAt: null,
    batch: null,
    ...over,
  }
}

export const FAKE_PRESETS: PresetInfo[] = [
  {
    name: '720p',
    format: 'mp4',
    description: 'H.264/AAC MP4, 720 pixels high',
    spec: { format: 'mp4', resize: { height: 720 }, subtitles: 'keep', preset: '720p' },
  },
  {
    name: '1080p',
    format: 'mp4',
    description: 'H.264/AAC MP4, 1080 pixels high',
    spec: { format: 'mp4', resize: { height: 1080 }, subtitles: 'keep', preset: '1080p' },
  },
  {
    name: 'webm',
    format: 'webm',
    description: 'VP9/Opus WebM',
    spec: { format: 'webm', subtitles: 'keep', preset: 'webm' },
  },
]

type Listener = (payload: never) => void

export class FakeBridge implements BullpenBridge {
  readonly kind: 'electron' | 'web'
  /** Every method call, in order. */
  readonly calls: { method: string; args: unknown[] }[] = []
  readonly jobs = new Map<string, JobView>()
  settings: Settings = {
    redisUrl: '',
    concurrency: 2,
    outputDir: '',
    nodeName: 'desk-1',
    notifications: true,
    lastPreset: '720p',
    lastPriority: 'normal',
  }
  connection: ConnectionStatus = { state: 'ready', redis: 'redis://127.0.0.1:6379', message: null }
  presets: PresetInfo[] = FAKE_PRESETS
  nodes: NodeInfo[] = []
  poolPaused = false
  localPaused = false
  dashboard: string | null = null
  /** Paths `pathsForFiles` gives back for each file name. */
  pathFor = (f: File): string => `/uploads/${f.name}`
  /** When set, `listJobs` waits for this before answering. */
  gate: Promise<void> | null = null
  private readonly listeners = new Map<AppEventName, Set<Listener>>()

  constructor(kind: 'electron' | 'web' = 'web') {
    this.kind = kind
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args })
  }

  /** Calls of one method. */
  callsOf(method: string): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args)
  }

  emit<E extends AppEventName>(event: E, payload: AppEvents[E]): void {
    for (const l of this.listeners.get(event) ?? []) (l as (p: AppEvents[E]) => void)(payload)
  }

  listenerCount(): number {
    let n = 0
    for (const s of this.listeners.values()) n += s.size
    return n
  }

  put(...jobs: JobView[]): void {
    for (const j of jobs) this.jobs.set(j.id, j)
  }

  on<E extends AppEventName>(event: E, listener: (payload: AppEvents[E]) => void): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => set.delete(listener)
  }

  pathsForFiles(
    files: File[],
    onUpload?: (name: string, sent: number, total: number) => void,
  ): Promise<string[]> {
    this.record('pathsForFiles', files)
    for (const f of files) onUpload?.(f.name, f.size, f.size)
    return Promise.resolve(files.map((f) => this.pathFor(f)))
  }

  pickFiles(): Promise<string[] | null> {
    this.record('pickFiles')
    return Promise.resolve(this.kind === 'electron' ? ['/picked/a.mov'] : null)
  }

  addFiles(req: AddFilesRequest): Promise<AddOutcome[]> {
    this.record('addFiles', req)
    return Promise.resolve(
      req.paths.map((path) => {
        const job = makeJob({ name: path.split('/').pop() ?? path, inputPath: path, priority: req.priority })
        this.put(job)
        return { path, id: job.id, duplicate: false, error: null }
      }),
    )
  }

  async listJobs(state: JobState, offset: number, limit: number): Promise<Page<JobView>> {
    this.record('listJobs', state, offset, limit)
    if (this.gate) await this.gate
    const all = [...this.jobs.values()].filter((j) => j.state === state)
    return { items: all.slice(offset, offset + limit), total: all.length, offset }
  }

  getJob(id: string): Promise<JobView | null> {
    this.record('getJob', id)
    return Promise.resolve(this.jobs.get(id) ?? null)
  }

  getStats(): Promise<QueueStats> {
    this.record('getStats')
    return Promise.resolve(this.computeStats())
  }

  computeStats(): QueueStats {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>
    for (const j of this.jobs.values()) counts[j.state]++
    return { ...counts, poolPaused: this.poolPaused, localPaused: this.localPaused }
  }

  setPriority(id: string, priority: Priority): Promise<void> {
    this.record('setPriority', id, priority)
    return Promise.resolve()
  }
  moveToTop(id: string): Promise<void> {
    this.record('moveToTop', id)
    return Promise.resolve()
  }
  cancel(id: string): Promise<void> {
    this.record('cancel', id)
    return Promise.resolve()
  }
  retry(id: string): Promise<void> {
    this.record('retry', id)
    return Promise.resolve()
  }
  remove(id: string): Promise<void> {
    this.record('remove', id)
    return Promise.resolve()
  }
  pause(scope: 'local' | 'pool'): Promise<void> {
    this.record('pause', scope)
    return Promise.resolve()
  }
  resume(scope: 'local' | 'pool'): Promise<void> {
    this.record('resume', scope)
    return Promise.resolve()
  }
  clean(graceMs: number): Promise<number> {
    this.record('clean', graceMs)
    return Promise.resolve(0)
  }
  getSettings(): Promise<Settings> {
    this.record('getSettings')
    return Promise.resolve({ ...this.settings })
  }
  updateSettings(patch: Partial<Settings>): Promise<Settings> {
    this.record('updateSettings', patch)
    this.settings = { ...this.settings, ...patch }
    return Promise.resolve({ ...this.settings })
  }
  listNodes(): Promise<NodeInfo[]> {
    this.record('listNodes')
    return Promise.resolve(this.nodes)
  }
  listPresets(): Promise<PresetInfo[]> {
    this.record('listPresets')
    return Promise.resolve(this.presets)
  }
  getConnection(): Promise<ConnectionStatus> {
    this.record('getConnection')
    return Promise.resolve(this.connection)
  }
  revealOutput(id: string): Promise<boolean> {
    this.record('revealOutput', id)
    return Promise.resolve(this.kind === 'electron')
  }
  openOutput(id: string): Promise<boolean> {
    this.record('openOutput', id)
    return Promise.resolve(this.kind === 'electron')
  }
  dashboardUrl(): Promise<string | null> {
    this.record('dashboardUrl')
    return Promise.resolve(this.dashboard)
  }
}
