import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { JobProgress } from '../../shared/api'
import {
  FLUSH_MS,
  PAGE_SIZE,
  RESYNC_MS,
  CHOICE_SAVE_MS,
  ensureRange,
  flushEvents,
  initStore,
  resetStore,
  selectTab,
  setChoice,
  useBullpen,
} from './store'
import { FakeBridge, makeJob } from './testing/fakeBridge'

/** Lets pending promise callbacks (bridge answers) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

function progress(percent: number | null): JobProgress {
  return { stage: 'encode', percent, fps: 30, speed: 1.5, etaSec: 10 }
}

let fake: FakeBridge
let stop: () => void = () => {}

beforeEach(() => {
  localStorage.clear()
  resetStore()
  fake = new FakeBridge()
})

afterEach(() => {
  stop()
  resetStore()
  vi.useRealTimers()
})

async function start(): Promise<void> {
  stop = initStore(fake)
  await vi.waitFor(() => expect(useBullpen.getState().settings).not.toBeNull())
  await settle()
}

describe('loading', () => {
  it('loads connection, stats, settings, presets and the first page of the waiting list', async () => {
    fake.put(
      ...Array.from({ length: 3 }, (_, i) => makeJob({ id: `w${i}` })),
      makeJob({ id: 'a', state: 'active' }),
    )
    await start()
    const s = useBullpen.getState()
    expect(s.connection.state).toBe('ready')
    expect(s.stats).toMatchObject({ waiting: 3, active: 1 })
    expect(s.presets.map((p) => p.name)).toEqual(['720p', '1080p', 'webm'])
    expect(s.list).toEqual({ state: 'waiting', total: 3, ids: ['w0', 'w1', 'w2'] })
    expect(s.jobs['w1']?.name).toBe('w1.mp4')
    expect(s.jobs['a']).toBeUndefined()
  })

  it('fetches pages only as they come into view, each once', async () => {
    fake.put(...Array.from({ length: 1000 }, (_, i) => makeJob({ id: `j${i}` })))
    await start()
    expect(fake.callsOf('listJobs')).toEqual([['waiting', 0, PAGE_SIZE]])
    let s = useBullpen.getState()
    expect(s.list.total).toBe(1000)
    expect(s.list.ids.filter(Boolean)).toHaveLength(PAGE_SIZE)
    expect(s.list.ids[450]).toBeUndefined()

    ensureRange(450, 520)
    ensureRange(455, 525) // same pages: no new request
    await settle()
    expect(fake.callsOf('listJobs').slice(1)).toEqual([
      ['waiting', 400, PAGE_SIZE],
      ['waiting', 500, PAGE_SIZE],
    ])
    s = useBullpen.getState()
    expect(s.list.ids[450]).toBe('j450')
    expect(s.list.ids[599]).toBe('j599')
    expect(s.list.ids[600]).toBeUndefined()
    expect(Object.keys(s.jobs)).toHaveLength(3 * PAGE_SIZE)
  })

  it('switches tabs with a fresh list and drops answers meant for the old tab', async () => {
    fake.put(makeJob({ id: 'w' }), makeJob({ id: 'f', state: 'failed', failedReason: 'boom' }))
    await start()
    let release: () => void = () => {}
    fake.gate = new Promise((r) => (release = r))
    ensureRange(0, 250) // page 1 and 2 of "waiting" are now in flight…
    selectTab('failed') // …and the user switches tab before they answer
    fake.gate = null
    release()
    await settle()
    await vi.waitFor(() => expect(useBullpen.getState().list.ids).toEqual(['f']))
    const s = useBullpen.getState()
    expect(s.tab).toBe('failed')
    expect(s.list).toEqual({ state: 'failed', total: 1, ids: ['f'] })
    expect(s.jobs['w']).toBeUndefined()
  })
})

describe('events', () => {
  it('moves jobs between tabs and keeps the current list and its total right', async () => {
    fake.put(makeJob({ id: 'a' }), makeJob({ id: 'b' }))
    await start()

    fake.emit('job:added', makeJob({ id: 'c' }))
    flushEvents()
    expect(useBullpen.getState().list).toMatchObject({ total: 3, ids: ['a', 'b', 'c'] })

    // "a" starts: it leaves the waiting list.
    fake.emit('job:updated', makeJob({ id: 'a', state: 'active', node: 'worker-2' }))
    // "b" changes priority: updated in place.
    fake.emit('job:updated', makeJob({ id: 'b', priority: 'high' }))
    fake.emit('job:removed', { id: 'c' })
    flushEvents()
    let s = useBullpen.getState()
    expect(s.list).toMatchObject({ total: 1, ids: ['b'] })
    expect(s.jobs['b']?.priority).toBe('high')
    expect(s.jobs['a']).toBeUndefined()

    // On the completed tab, a finished job appears at the top.
    fake.put(makeJob({ id: 'old', state: 'completed' }))
    selectTab('completed')
    await settle()
    expect(useBullpen.getState().list.ids).toEqual(['old'])
    fake.emit('job:completed', makeJob({ id: 'a', state: 'completed', node: 'worker-2' }))
    fake.emit('job:failed', makeJob({ id: 'x', state: 'failed', failedReason: 'bad input' }))
    flushEvents()
    s = useBullpen.getState()
    expect(s.list).toMatchObject({ total: 2, ids: ['a', 'old'] })
    expect(s.jobs['a']?.node).toBe('worker-2')
    expect(s.jobs['x']).toBeUndefined()
  })

  it('applies stats events to the counts and refetches the list when they disagree with it', async () => {
    vi.useFakeTimers()
    fake.put(makeJob({ id: 'a' }))
    stop = initStore(fake)
    await vi.advanceTimersByTimeAsync(0)
    expect(useBullpen.getState().list.total).toBe(1)

    // Jobs were added elsewhere without events reaching us; the stats say so.
    fake.put(makeJob({ id: 'b' }), makeJob({ id: 'c' }))
    fake.emit('stats', { ...fake.computeStats(), poolPaused: true })
    await vi.advanceTimersByTimeAsync(FLUSH_MS)
    expect(useBullpen.getState().stats).toMatchObject({ waiting: 3, poolPaused: true })
    await vi.advanceTimersByTimeAsync(RESYNC_MS)
    expect(useBullpen.getState().list).toMatchObject({ total: 3, ids: ['a', 'b', 'c'] })
  })

  it('refetches a queue whose order an update changed (priority, move to top)', async () => {
    vi.useFakeTimers()
    fake.put(makeJob({ id: 'a' }), makeJob({ id: 'b' }), makeJob({ id: 'c' }))
    stop = initStore(fake)
    await vi.advanceTimersByTimeAsync(0)
    expect(useBullpen.getState().list.ids).toEqual(['a', 'b', 'c'])

    // The core now runs "c" first; only a job:updated says so.
    const c = makeJob({ id: 'c', priority: 'high' })
    fake.jobs.clear()
    fake.put(c, makeJob({ id: 'a' }), makeJob({ id: 'b' }))
    fake.emit('job:updated', c)
    await vi.advanceTimersByTimeAsync(FLUSH_MS)
    expect(useBullpen.getState().jobs['c']?.priority).toBe('high')
    await vi.advanceTimersByTimeAsync(RESYNC_MS)
    expect(useBullpen.getState().list.ids).toEqual(['c', 'a', 'b'])
  })

  it('keeps one request per page in flight and applies its answer even if events made it stale meanwhile', async () => {
    vi.useFakeTimers()
    fake.put(makeJob({ id: 'a' }))
    stop = initStore(fake)
    await vi.advanceTimersByTimeAsync(0)
    const before = fake.callsOf('listJobs').length

    // A slow core: listJobs answers only when released.
    let release: () => void = () => {}
    fake.gate = new Promise((r) => (release = r))
    fake.put(makeJob({ id: 'b' }))
    fake.emit('job:added', makeJob({ id: 'b' }))
    await vi.advanceTimersByTimeAsync(FLUSH_MS + RESYNC_MS)
    expect(fake.callsOf('listJobs').length).toBe(before + 1)
    for (const id of ['c', 'd']) {
      fake.put(makeJob({ id }))
      fake.emit('job:added', makeJob({ id }))
      await vi.advanceTimersByTimeAsync(FLUSH_MS + RESYNC_MS)
    }
    expect(fake.callsOf('listJobs').length).toBe(before + 1)
    expect(useBullpen.getState().list.ids).toEqual(['a', 'b', 'c', 'd']) // the local edits meanwhile

    // The core's order differs from the local guess; the next request stays pending.
    const reordered = ['d', 'c', 'b', 'a'].map((id) => makeJob({ id }))
    fake.jobs.clear()
    fake.put(...reordered)
    fake.gate = new Promise(() => {})
    release()
    await vi.advanceTimersByTimeAsync(0)
    // The answer was used, and the page, stale since, was asked for once more.
    expect(useBullpen.getState().list).toMatchObject({ total: 4, ids: ['d', 'c', 'b', 'a'] })
    expect(fake.callsOf('listJobs').length).toBe(before + 2)
  })

  it('coalesces progress: one store update per flush, with the latest value of each job', async () => {
    vi.useFakeTimers()
    fake.put(makeJob({ id: 'r1', state: 'active' }), makeJob({ id: 'r2', state: 'active' }))
    stop = initStore(fake)
    await vi.advanceTimersByTimeAsync(0)
    selectTab('active')
    await vi.advanceTimersByTimeAsync(FLUSH_MS * 2)

    let updates = 0
    const unsub = useBullpen.subscribe(() => updates++)
    // A first event is applied promptly; what arrives in the next 250 ms waits for the next flush.
    fake.emit('job:progress', { id: 'r1', progress: progress(1) })
    await vi.advanceTimersByTimeAsync(0)
    expect(updates).toBe(1)
    for (let i = 2; i <= 100; i++) fake.emit('job:progress', { id: 'r1', progress: progress(i) })
    fake.emit('job:progress', { id: 'r2', progress: progress(null) })
    await vi.advanceTimersByTimeAsync(FLUSH_MS - 10)
    expect(updates).toBe(1)
    expect(useBullpen.getState().progress['r1']?.percent).toBe(1)
    await vi.advanceTimersByTimeAsync(10)
    expect(updates).toBe(2)
    const p = useBullpen.getState().progress
    expect(p['r1']?.percent).toBe(100)
    expect(p['r2']?.percent).toBeNull()

    // Completion clears the live progress of the job.
    fake.emit('job:completed', makeJob({ id: 'r1', state: 'completed' }))
    await vi.advanceTimersByTimeAsync(FLUSH_MS)
    expect(useBullpen.getState().progress['r1']).toBeUndefined()
    expect(useBullpen.getState().list.ids).toEqual(['r2'])
    unsub()
  })

  it('refetches everything when Redis is back', async () => {
    await start()
    fake.emit('connection', { state: 'down', redis: 'redis://127.0.0.1:6379', message: 'ECONNREFUSED' })
    expect(useBullpen.getState().connection.state).toBe('down')
    const before = fake.callsOf('getStats').length
    fake.put(makeJob({ id: 'late' }))
    fake.emit('connection', { state: 'ready', redis: 'redis://127.0.0.1:6379', message: null })
    await vi.waitFor(() => expect(useBullpen.getState().list.ids).toEqual(['late']))
    expect(fake.callsOf('getStats').length).toBe(before + 1)
    expect(useBullpen.getState().stats.waiting).toBe(1)
  })

  it('unsubscribes every listener', async () => {
    await start()
    expect(fake.listenerCount()).toBe(9)
    stop()
    stop = () => {}
    expect(fake.listenerCount()).toBe(0)
  })
})

describe('remembered choice', () => {
  it('takes the last preset and priority from the settings', async () => {
    fake.settings.lastPreset = 'resize:webm:640x'
    fake.settings.lastPriority = 'low'
    await start()
    expect(useBullpen.getState().choice).toEqual({ kind: 'resize', format: 'webm', width: 640, height: null })
    expect(useBullpen.getState().priority).toBe('low')
  })

  it('keeps a choice made after start-up when a reconnect fetches the settings again', async () => {
    await start()
    setChoice({ kind: 'convert', format: 'gif' }, 'high')
    fake.emit('connection', { state: 'down', redis: '', message: null })
    fake.emit('connection', { state: 'ready', redis: '', message: null })
    await vi.waitFor(() => expect(fake.callsOf('getSettings')).toHaveLength(2))
    await settle()
    expect(useBullpen.getState().choice).toEqual({ kind: 'convert', format: 'gif' })
    expect(useBullpen.getState().priority).toBe('high')
  })

  it('saves a new choice to the settings (debounced) and to localStorage', async () => {
    await start()
    vi.useFakeTimers()
    setChoice({ kind: 'convert', format: 'mkv' }, 'low')
    setChoice({ kind: 'preset', preset: '1080p' }, 'high')
    expect(localStorage.getItem('bullpen.lastPreset')).toBe('1080p')
    expect(localStorage.getItem('bullpen.lastPriority')).toBe('high')
    await vi.advanceTimersByTimeAsync(CHOICE_SAVE_MS)
    expect(fake.callsOf('updateSettings')).toEqual([[{ lastPreset: '1080p', lastPriority: 'high' }]])
  })

  it('falls back to localStorage before the settings are read', () => {
    localStorage.setItem('bullpen.lastPreset', 'convert:gif')
    localStorage.setItem('bullpen.lastPriority', 'high')
    resetStore()
    expect(useBullpen.getState().choice).toEqual({ kind: 'convert', format: 'gif' })
    expect(useBullpen.getState().priority).toBe('high')
  })
})
