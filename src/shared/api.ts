/**
 * The one contract between the UI and the core (CONVENTIONS 2): every method the renderer may call and every event
 * the core pushes. Implemented once on the core (src/main/core/app.ts); exposed by Electron IPC (preload →
 * `window.bullpen`) and by the WebSocket bridge of `bullpen serve`. Main, preload, the bridge and the renderer all
 * take their types from here, so a renamed channel fails to compile everywhere.
 *
 * Only plain, serialisable data crosses (CONVENTIONS 4): ids and specs in, snapshots and events out.
 */
import type { Format, InputSummary, Priority, TranscodeSpec, TranscodeSpecInput } from './spec'

export const JOB_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed', 'paused'] as const
export type JobState = (typeof JOB_STATES)[number]

/** Live progress of a running job. `percent` is null when the duration is unknown (indeterminate). */
export interface JobProgress {
  stage: 'probe' | 'download' | 'encode' | 'verify' | 'upload'
  percent: number | null
  fps: number | null
  /** Encoding speed as a multiple of real time (ffmpeg's `speed=`). */
  speed: number | null
  etaSec: number | null
}

/** What a finished job produced. */
export interface JobResult {
  outputPath: string
  size: number
  durationSec: number | null
  width?: number
  height?: number
  subtitles: 'copied' | 'converted' | 'dropped' | 'none'
  elapsedMs: number
  /** Node that processed the job. */
  node: string
}

/** A snapshot of one job, as the UI shows it. */
export interface JobView {
  id: string
  state: JobState
  /** File name of the input (no folder). */
  name: string
  inputPath: string
  outputDir: string
  spec: TranscodeSpec
  /** Short label, e.g. "720p" or "webm 426×240". */
  label: string
  priority: Priority
  origin: string
  /** Node processing (or that processed) the job, when known. */
  node: string | null
  summary: InputSummary
  progress: JobProgress | null
  result: JobResult | null
  /** One-line reason when the job failed. */
  failedReason: string | null
  cancelled: boolean
  attemptsMade: number
  attempts: number
  createdAt: number
  startedAt: number | null
  finishedAt: number | null
  batch: string | null
}

export interface QueueStats {
  waiting: number
  active: number
  completed: number
  failed: number
  delayed: number
  paused: number
  /** Whole pool paused (every node). */
  poolPaused: boolean
  /** This node's worker paused. */
  localPaused: boolean
}

export interface Page<T> {
  items: T[]
  total: number
  offset: number
}

export interface NodeInfo {
  id: string
  name: string
  host: string
  kind: 'desktop' | 'worker' | 'serve' | 'cli'
  concurrency: number
  active: number
  paused: boolean
  ffmpegVersion: string
  encoders: string[]
  lastSeen: number
  /** Jobs completed by this node in the last hour. */
  completedLastHour: number
  isSelf: boolean
}

export interface Settings {
  /** redis:// or rediss:// URL; empty means the local default. */
  redisUrl: string
  concurrency: number
  /** Empty: next to each input. */
  outputDir: string
  nodeName: string
  notifications: boolean
  /** Remembered between drops. */
  lastPreset: string
  lastPriority: Priority
}

export type ConnectionState = 'connecting' | 'ready' | 'reconnecting' | 'down'

export interface ConnectionStatus {
  state: ConnectionState
  /** The Redis URL with any password masked. */
  redis: string
  /** What went wrong, when not ready. */
  message: string | null
}

export interface PresetInfo {
  name: string
  format: Format
  description: string
  spec: TranscodeSpec
}

/** What `addFiles` did with each path. */
export interface AddOutcome {
  path: string
  /** Job id when queued (or the id of the identical job already queued). */
  id: string | null
  duplicate: boolean
  /** Why the file was refused, when it was. */
  error: string | null
}

export interface AddFilesRequest {
  paths: string[]
  /** A preset name, or an explicit spec. */
  preset?: string
  spec?: TranscodeSpecInput
  priority: Priority
  /** Empty or absent: next to each input. */
  outputDir?: string
}

/** Every method the UI may call. Each returns a promise of plain data. */
export interface AppApi {
  addFiles(req: AddFilesRequest): Promise<AddOutcome[]>
  listJobs(state: JobState, offset: number, limit: number): Promise<Page<JobView>>
  getJob(id: string): Promise<JobView | null>
  getStats(): Promise<QueueStats>
  setPriority(id: string, priority: Priority): Promise<void>
  moveToTop(id: string): Promise<void>
  cancel(id: string): Promise<void>
  retry(id: string): Promise<void>
  remove(id: string): Promise<void>
  pause(scope: 'local' | 'pool'): Promise<void>
  resume(scope: 'local' | 'pool'): Promise<void>
  /** Removes completed and failed jobs older than `graceMs`; returns how many. */
  clean(graceMs: number): Promise<number>
  getSettings(): Promise<Settings>
  /** Applies the changed fields; reconnects when the Redis URL changes. */
  updateSettings(patch: Partial<Settings>): Promise<Settings>
  listNodes(): Promise<NodeInfo[]>
  listPresets(): Promise<PresetInfo[]>
  getConnection(): Promise<ConnectionStatus>
  /** Shows the output in the file manager (desktop) — a no-op that returns false where it cannot. */
  revealOutput(id: string): Promise<boolean>
  openOutput(id: string): Promise<boolean>
  /** URL of the queue dashboard (Bull Board), or null when this host serves none. */
  dashboardUrl(): Promise<string | null>
}

/** Every event the core pushes, with its payload. */
export interface AppEvents {
  'job:added': JobView
  /** State or fields changed (active, priority, node, …). */
  'job:updated': JobView
  /** Coalesced: at most a few per second per job, bounded overall. */
  'job:progress': { id: string; progress: JobProgress }
  'job:completed': JobView
  'job:failed': JobView
  'job:removed': { id: string }
  stats: QueueStats
  nodes: NodeInfo[]
  connection: ConnectionStatus
}

export type AppEventName = keyof AppEvents
export const APP_EVENT_NAMES: readonly AppEventName[] = [
  'job:added',
  'job:updated',
  'job:progress',
  'job:completed',
  'job:failed',
  'job:removed',
  'stats',
  'nodes',
  'connection',
] as const

export type AppMethodName = keyof AppApi
export const APP_METHOD_NAMES: readonly AppMethodName[] = [
  'addFiles',
  'listJobs',
  'getJob',
  'getStats',
  'setPriority',
  'moveToTop',
  'cancel',
  'retry',
  'remove',
  'pause',
  'resume',
  'clean',
  'getSettings',
  'updateSettings',
  'listNodes',
  'listPresets',
  'getConnection',
  'revealOutput',
  'openOutput',
  'dashboardUrl',
] as const

/** Subscribe to one event; returns the unsubscribe function. */
export type Subscribe = <E extends AppEventName>(
  event: E,
  listener: (payload: AppEvents[E]) => void,
) => () => void

/**
 * What the renderer sees as `window.bullpen`: the methods, `on` for events, and how the files of a drop reach the
 * core — as paths in Electron (`webUtils.getPathForFile`), as uploads to the serving node's inbox in a browser.
 */
export interface BullpenBridge extends AppApi {
  on: Subscribe
  /** 'electron' or 'web'. */
  readonly kind: 'electron' | 'web'
  /** Paths for dropped/picked files: in Electron their real paths; in a browser they are uploaded first. */
  pathsForFiles(
    files: File[],
    onUpload?: (name: string, sent: number, total: number) => void,
  ): Promise<string[]>
  /** Native "Add files…" dialog in Electron; null in a browser (use a file input). */
  pickFiles(): Promise<string[] | null>
}
