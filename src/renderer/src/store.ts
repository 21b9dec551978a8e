/**
 * The renderer's state, as zustand recommends (CONVENTIONS 12): one store created with `create<T>()(…)`, read with
 * narrow selectors, written by plain module-level functions with `setState`; the bridge's events are subscribed at
 * module level by {@link initStore}, which returns the unsubscribe. {@link resetStore} puts everything back for
 * tests.
 *
 * Built for 10,000 jobs: the list of the current tab is fetched page by page as it scrolls into view
 * ({@link ensureRange}); bridge events are buffered and applied at most every {@link FLUSH_MS} (progress coalesced
 * per job, one `setState` per flush); rows read their own job and progress by id, so a progress tick re-renders
 * only the rows it concerns.
 */
import { create } from 'zustand'
import {
  type BullpenBridge,
  type ConnectionStatus,
  type JobProgress,
  type JobState,
  type JobView,
  type NodeInfo,
  type PresetInfo,
  type QueueStats,
  type Settings,
} from '../../shared/api'
import type { Priority } from '../../shared/spec'
import {
  type Choice,
  encodeChoice,
  decodeChoice,
  isPriority,
  loadLocalChoice,
  saveLocalChoice,
} from './choice'

/** Jobs per `listJobs` call. */
export const PAGE_SIZE = 100
/** Bridge events are applied to the store at most this often. */
export const FLUSH_MS = 250
/** After the list changed under us, the visible pages are fetched again at most this often. */
export const RESYNC_MS = 400
/** A flush with more membership changes than this skips the local edit and refetches instead. */
const MAX_LOCAL_EDITS = 200
/** The remembered preset/priority are written to the settings this long after the last change. */
export const CHOICE_SAVE_MS = 300

/** The current tab's list: ids by position; `undefined` where the page has not been fetched yet. */
export interface JobList {
  state: JobState
  total: number
  ids: (string | undefined)[]
}

export interface Notice {
  id: number
  kind: 'info' | 'error'
  text: string
}

export interface Upload {
  name: string
  sent: number
  total: number
}

export interface BullpenState {
  connection: ConnectionStatus
  stats: QueueStats
  settings: Settings | null
  presets: PresetInfo[]
  nodes: NodeInfo[]
  dashboardUrl: string | null
  /** The selected tab. */
  tab: JobState
  list: JobList
  /** Jobs of the current list, by id. */
  jobs: Record<string, JobView>
  /** Latest progress of running jobs, by id (newer than the snapshot in `jobs`). */
  progress: Record<string, JobProgress>
  /** What the next drop will be queued as. */
  choice: Choice
  priority: Priority
  uploads: Upload[]
  notices: Notice[]
  settingsOpen: boolean
}

const EMPTY_STATS: QueueStats = {
  waiting: 0,
  active: 0,
  completed: 0,
  failed: 0,
  delayed: 0,
  paused: 0,
  poolPaused: false,
  localPaused: false,
}

function initialState(): BullpenState {
  const local = loadLocalChoice()
  return {
    connection: { state: 'connecting', redis: '', message: null },
    stats: EMPTY_STATS,
    settings: null,
    presets: [],
    nodes: [],
    dashboardUrl: null,
    tab: 'waiting',
    list: { state: 'waiting', total: 0, ids: [] },
    jobs: {},
    progress: {},
    choice: local.choice,
    priority: local.priority,
    uploads: [],
    notices: [],
    settingsOpen: false,
  }
}

/** The store. Read it with narrow selectors: `useBullpen((s) => s.stats.waiting)`. */
export const useBullpen = create<BullpenState>()(() => initialState())

// ---------------------------------------------------------------------------------------------------------------
// Module state (not rendered): the bridge, page bookkeeping and the event buffer.

let bridge: BullpenBridge | null = null
/**
 * Page bookkeeping of the current list, replaced when the tab changes (answers for a replaced one are dropped).
 * `gen` is bumped when the loaded pages go stale (after events): a page whose `pageGens` entry is older is fetched
 * again when in view. At most one request per page is in flight, so answers for a page arrive in order, and a slow
 * core cannot starve the list by answering slower than the events make it stale.
 */
interface Fetching {
  gen: number
  pageGens: Map<number, number>
  inflight: Set<number>
}
let fetching: Fetching = { gen: 0, pageGens: new Map(), inflight: new Set() }
let visible = { start: 0, end: PAGE_SIZE - 1 }

/** States whose lists are in queue order, which an update (priority, move to top) can change. */
const QUEUED_STATES: ReadonlySet<JobState> = new Set(['waiting', 'delayed', 'paused'])

type JobEvent = { type: 'upsert'; job: JobView } | { type: 'remove'; id: string }
let pendingEvents: JobEvent[] = []
const pendingProgress = new Map<string, JobProgress>()
let pendingStats: QueueStats | null = null
let flushTimer: ReturnType<typeof setTimeout> | null = null
let lastFlush = 0
let resyncTimer: ReturnType<typeof setTimeout> | null = null
let noticeSeq = 0
let choiceTimer: ReturnType<typeof setTimeout> | null = null
/** Whether the remembered choice has been taken from the settings yet. */
let choiceAdopted = false
const noticeTimers = new Set<ReturnType<typeof setTimeout>>()

/** The bridge given to {@link initStore}; components call its methods through this. */
export function storeBridge(): BullpenBridge {
  if (!bridge) throw new Error('initStore(bridge) has not been called')
  return bridge
}

/**
 * Connects the store to a bridge: subscribes to every event and loads everything. Returns the unsubscribe (which
 * also stops the timers).
 */
export function initStore(b: BullpenBridge): () => void {
  bridge = b
  const offs = [
    b.on('job:added', (job) => queueEvent({ type: 'upsert', job })),
    b.on('job:updated', (job) => queueEvent({ type: 'upsert', job })),
    b.on('job:completed', (job) => queueEvent({ type: 'upsert', job })),
    b.on('job:failed', (job) => queueEvent({ type: 'upsert', job })),
    b.on('job:removed', ({ id }) => queueEvent({ type: 'remove', id })),
    b.on('job:progress', ({ id, progress }) => {
      pendingProgress.set(id, progress)
      scheduleFlush()
    }),
    b.on('stats', (stats) => {
      pendingStats = stats
      scheduleFlush()
    }),
    b.on('nodes', (nodes) => useBullpen.setState({ nodes })),
    b.on('connection', applyConnection),
  ]
  void refreshAll()
  return () => {
    for (const off of offs) off()
    stopTimers()
    if (bridge === b) bridge = null
  }
}

function stopTimers(): void {
  if (flushTimer) clearTimeout(flushTimer)
  if (resyncTimer) clearTimeout(resyncTimer)
  if (choiceTimer) clearTimeout(choiceTimer)
  choiceTimer = null
  for (const t of noticeTimers) clearTimeout(t)
  noticeTimers.clear()
  flushTimer = null
  resyncTimer = null
}

/** Back to the initial state, with no bridge, buffers or timers (for tests). */
export function resetStore(): void {
  stopTimers()
  bridge = null
  fetching = { gen: 0, pageGens: new Map(), inflight: new Set() }
  visible = { start: 0, end: PAGE_SIZE - 1 }
  pendingEvents = []
  pendingProgress.clear()
  pendingStats = null
  lastFlush = 0
  noticeSeq = 0
  choiceAdopted = false
  useBullpen.setState(initialState(), true)
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

/** Fetches everything again: connection, stats, settings, presets, nodes, dashboard, and the visible list. */
export async function refreshAll(): Promise<void> {
  const b = storeBridge()
  const [connection, stats, settings, presets, nodes, dashboardUrl] = await Promise.allSettled([
    b.getConnection(),
    b.getStats(),
    b.getSettings(),
    b.listPresets(),
    b.listNodes(),
    b.dashboardUrl(),
  ])
  if (bridge !== b) return
  const patch: Partial<BullpenState> = {}
  if (connection.status === 'fulfilled') patch.connection = connection.value
  else
    patch.connection = {
      state: 'down',
      redis: useBullpen.getState().connection.redis,
      message: errorText(connection.reason),
    }
  if (stats.status === 'fulfilled') patch.stats = stats.value
  if (presets.status === 'fulfilled') patch.presets = presets.value
  if (nodes.status === 'fulfilled') patch.nodes = nodes.value
  if (dashboardUrl.status === 'fulfilled') patch.dashboardUrl = dashboardUrl.value
  if (settings.status === 'fulfilled') {
    patch.settings = settings.value
    // The core remembers the last choice (localStorage only stands in when it cannot). Taken once: a later
    // refetch (reconnect) must not undo what the user picked meanwhile.
    if (!choiceAdopted) {
      choiceAdopted = true
      if (settings.value.lastPreset) patch.choice = decodeChoice(settings.value.lastPreset)
      if (isPriority(settings.value.lastPriority)) patch.priority = settings.value.lastPriority
    }
  }
  useBullpen.setState(patch)
  resync()
}

function applyConnection(c: ConnectionStatus): void {
  const before = useBullpen.getState().connection.state
  useBullpen.setState({ connection: c })
  // Redis came back: whatever happened meanwhile is unknown, so fetch everything again.
  if (c.state === 'ready' && before !== 'ready') void refreshAll()
}

/** Switches to another tab: a fresh, empty list of the size the stats announce; its first page is fetched. */
export function selectTab(tab: JobState): void {
  const s = useBullpen.getState()
  if (s.tab === tab && s.list.state === tab) return
  fetching = { gen: 0, pageGens: new Map(), inflight: new Set() }
  const total = s.stats[tab]
  useBullpen.setState({
    tab,
    list: { state: tab, total, ids: new Array<string | undefined>(total).fill(undefined) },
    jobs: {},
  })
  ensureRange(0, PAGE_SIZE - 1)
}

/** Makes sure the pages covering positions `start…end` of the current list are fetched (or being fetched). */
export function ensureRange(start: number, end: number): void {
  visible = { start: Math.max(0, start), end: Math.max(start, end) }
  if (!bridge) return
  const first = Math.floor(visible.start / PAGE_SIZE)
  const last = Math.floor(visible.end / PAGE_SIZE)
  const f = fetching
  for (let p = first; p <= last; p++) {
    if (f.pageGens.get(p) === f.gen || f.inflight.has(p)) continue
    f.pageGens.set(p, f.gen)
    f.inflight.add(p)
    void loadPage(p, f)
  }
}

async function loadPage(page: number, f: Fetching): Promise<void> {
  const b = storeBridge()
  const tab = useBullpen.getState().list.state
  let result
  try {
    result = await b.listJobs(tab, page * PAGE_SIZE, PAGE_SIZE)
  } catch {
    // Most likely Redis is down (the banner says so); the page is fetched again when it comes back.
    f.inflight.delete(page)
    f.pageGens.delete(page)
    return
  }
  f.inflight.delete(page)
  if (f !== fetching || bridge !== b) return
  useBullpen.setState((s) => {
    if (s.list.state !== tab) return {}
    const ids = resized(s.list.ids, result.total)
    const jobs = { ...s.jobs }
    const offset = page * PAGE_SIZE
    result.items.forEach((job, i) => {
      if (offset + i < ids.length) ids[offset + i] = job.id
      jobs[job.id] = job
    })
    return { list: { state: tab, total: result.total, ids }, jobs }
  })
  // Went stale while in flight: fetch it again if it is still in view.
  if (f.pageGens.get(page) !== f.gen) ensureRange(visible.start, visible.end)
}

function resized(ids: (string | undefined)[], total: number): (string | undefined)[] {
  if (ids.length === total) return ids.slice()
  if (ids.length > total) return ids.slice(0, total)
  const out = ids.slice()
  out.length = total
  return out.fill(undefined, ids.length)
}

/** Refetches the visible pages now; pages out of view are fetched again when they scroll back in. */
export function resync(): void {
  if (resyncTimer) {
    clearTimeout(resyncTimer)
    resyncTimer = null
  }
  fetching.gen++
  ensureRange(visible.start, visible.end)
}

function scheduleResync(): void {
  if (resyncTimer) return
  resyncTimer = setTimeout(() => {
    resyncTimer = null
    resync()
  }, RESYNC_MS)
}

// ---------------------------------------------------------------------------------------------------------------
// Events

function queueEvent(e: JobEvent): void {
  pendingEvents.push(e)
  scheduleFlush()
}

function scheduleFlush(): void {
  if (flushTimer) return
  flushTimer = setTimeout(flushEvents, Math.max(0, lastFlush + FLUSH_MS - Date.now()))
}

/** Applies every buffered event to the store in one `setState` (called by the flush timer; exported for tests). */
export function flushEvents(): void {
  if (flushTimer) clearTimeout(flushTimer)
  flushTimer = null
  lastFlush = Date.now()
  const events = pendingEvents
  pendingEvents = []
  const progress = new Map(pendingProgress)
  pendingProgress.clear()
  const stats = pendingStats
  pendingStats = null
  if (events.length === 0 && progress.size === 0 && !stats) return

  const s = useBullpen.getState()
  const tab = s.list.state
  let ids = s.list.ids
  let total = s.list.total
  const jobs = events.length > 0 ? { ...s.jobs } : s.jobs
  const prog = { ...s.progress }
  let changed = false
  let index: Map<string, number> | null = null
  const indexOf = (id: string): number | undefined => {
    index ??= new Map(ids.flatMap((x, i) => (x === undefined ? [] : [[x, i] as const])))
    return index.get(id)
  }
  const editable = events.length <= MAX_LOCAL_EDITS

  for (const e of events) {
    const id = e.type === 'upsert' ? e.job.id : e.id
    const at = indexOf(id)
    if (e.type === 'remove') {
      delete jobs[id]
      delete prog[id]
      if (at !== undefined && editable) {
        ids = ids.slice(0, at).concat(ids.slice(at + 1))
        total = Math.max(0, total - 1)
        index = null
      }
      changed = true
      continue
    }
    const job = e.job
    if (job.progress) prog[id] = job.progress
    else if (job.state !== 'active') delete prog[id]
    if (job.state === tab) {
      jobs[id] = job
      // A priority change or "move to top" reorders a queue: its place is only known from a refetch.
      if (at !== undefined && QUEUED_STATES.has(tab)) changed = true
      if (at === undefined && editable) {
        // Finished jobs are listed newest first; the others in queue order (the refetch settles the exact place).
        ids = tab === 'completed' || tab === 'failed' ? [id, ...ids] : [...ids, id]
        total++
        index = null
        changed = true
      }
    } else if (at !== undefined) {
      delete jobs[id]
      if (editable) {
        ids = ids.slice(0, at).concat(ids.slice(at + 1))
        total = Math.max(0, total - 1)
        index = null
      }
      changed = true
    }
  }
  for (const [id, p] of progress) prog[id] = p

  const patch: Partial<BullpenState> = { jobs, progress: prog }
  if (ids !== s.list.ids) patch.list = { state: tab, total, ids }
  if (stats) {
    patch.stats = stats
    if (stats[tab] !== total) changed = true
  }
  if (!editable && events.length > 0) changed = true
  useBullpen.setState(patch)
  if (changed) scheduleResync()
}

// ---------------------------------------------------------------------------------------------------------------
// User choices, notices, uploads

/** Remembers the preset/priority for the next drops: in localStorage at once, on the core (settings) shortly after. */
export function setChoice(choice: Choice, priority: Priority): void {
  useBullpen.setState({ choice, priority })
  saveLocalChoice(choice, priority)
  if (!bridge) return
  // Debounced: typing a width should not write the settings on every keystroke.
  if (choiceTimer) clearTimeout(choiceTimer)
  choiceTimer = setTimeout(() => {
    choiceTimer = null
    const b = bridge
    if (!b) return
    b.updateSettings({ lastPreset: encodeChoice(choice), lastPriority: priority }).then(
      (settings) => {
        if (bridge === b) useBullpen.setState({ settings })
      },
      () => {
        // Not fatal: localStorage still remembers it, and the banner tells when Redis/the core is away.
      },
    )
  }, CHOICE_SAVE_MS)
}

/** Shows a message; info messages go away by themselves after a few seconds. */
export function notify(kind: Notice['kind'], text: string): void {
  const id = ++noticeSeq
  useBullpen.setState((s) => ({ notices: [...s.notices.slice(-4), { id, kind, text }] }))
  if (kind === 'info') {
    const t = setTimeout(() => {
      noticeTimers.delete(t)
      dismissNotice(id)
    }, 6000)
    noticeTimers.add(t)
  }
}

export function dismissNotice(id: number): void {
  useBullpen.setState((s) => ({ notices: s.notices.filter((n) => n.id !== id) }))
}

export function setUpload(name: string, sent: number, total: number): void {
  useBullpen.setState((s) => {
    const others = s.uploads.filter((u) => u.name !== name)
    return { uploads: sent >= total ? others : [...others, { name, sent, total }] }
  })
}

export function clearUploads(): void {
  useBullpen.setState({ uploads: [] })
}

export function setSettingsOpen(open: boolean): void {
  useBullpen.setState({ settingsOpen: open })
}

/** Runs a bridge call for a user action; a failure becomes an error notice instead of an unhandled rejection. */
export async function runAction<T>(
  what: string,
  call: (b: BullpenBridge) => Promise<T>,
): Promise<T | undefined> {
  try {
    return await call(storeBridge())
  } catch (err) {
    notify('error', `${what}: ${errorText(err)}`)
    return undefined
  }
}
