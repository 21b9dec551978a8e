import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { JobProgress, JobView } from '../../../shared/api'
import { App } from '../App'
import { flushEvents, initStore, resetStore, useBullpen } from '../store'
import { FakeBridge, makeJob } from '../testing/fakeBridge'
import { JobRow } from './JobRow'

let fake: FakeBridge
let stop: () => void = () => {}

// jsdom has no layout: give scroll containers a height so the virtual list renders rows.
const clientHeight = Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientHeight')
beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => 640 })
})
afterAll(() => {
  if (clientHeight) Object.defineProperty(HTMLElement.prototype, 'clientHeight', clientHeight)
})

beforeEach(() => {
  localStorage.clear()
  resetStore()
})

afterEach(() => {
  cleanup()
  stop()
  stop = () => {}
  resetStore()
})

/** Connects the store to a fake bridge and waits until the first load is in. */
async function start(b: FakeBridge = new FakeBridge()): Promise<FakeBridge> {
  fake = b
  stop = initStore(fake)
  await vi.waitFor(() => expect(useBullpen.getState().settings).not.toBeNull())
  await act(async () => {
    await Promise.resolve()
  })
  return fake
}

function showRow(job: JobView, progress?: JobProgress): void {
  act(() => {
    useBullpen.setState((s) => ({
      jobs: { ...s.jobs, [job.id]: job },
      progress: progress ? { ...s.progress, [job.id]: progress } : s.progress,
    }))
  })
  render(<JobRow id={job.id} />)
}

function calls(method: string): unknown[][] {
  return fake.callsOf(method)
}

describe('JobRow', () => {
  it('shows the progress of a running job as a progressbar with its value, fps, speed and ETA', async () => {
    await start()
    showRow(makeJob({ id: 'a', name: 'clip.mp4', state: 'active', node: 'worker-2' }), {
      stage: 'encode',
      percent: 42.4,
      fps: 87.2,
      speed: 3.14,
      etaSec: 72,
    })
    const bar = screen.getByRole('progressbar', { name: 'Progress of clip.mp4' })
    expect(bar.getAttribute('aria-valuenow')).toBe('42')
    expect(bar.getAttribute('aria-valuemin')).toBe('0')
    expect(bar.getAttribute('aria-valuemax')).toBe('100')
    expect(screen.getByText('42% · 87 fps · 3.1× · ETA 1:12')).toBeTruthy()
    expect(screen.getByText('on worker-2')).toBeTruthy()
    expect(screen.getByText('720p')).toBeTruthy()
    fireEvent.click(screen.getByRole('button', { name: 'Cancel clip.mp4' }))
    expect(calls('cancel')).toEqual([['a']])
  })

  it('is indeterminate (no aria-valuenow) when the percentage is unknown', async () => {
    await start()
    showRow(makeJob({ id: 'a', name: 'live.ts', state: 'active' }), {
      stage: 'encode',
      percent: null,
      fps: 25,
      speed: 1,
      etaSec: null,
    })
    const bar = screen.getByRole('progressbar', { name: 'Progress of live.ts' })
    expect(bar.hasAttribute('aria-valuenow')).toBe(false)
    expect(bar.className).toContain('indeterminate')
  })

  it('offers priority, move to top and cancel on a waiting job, and they call the bridge', async () => {
    await start()
    showRow(makeJob({ id: 'w', name: 'a b.mov', state: 'waiting' }))
    fireEvent.change(screen.getByRole('combobox', { name: 'Change priority of a b.mov' }), {
      target: { value: 'high' },
    })
    fireEvent.click(screen.getByRole('button', { name: 'Move a b.mov to top' }))
    fireEvent.click(screen.getByRole('button', { name: 'Cancel a b.mov' }))
    await act(async () => {
      await Promise.resolve()
    })
    expect(calls('setPriority')).toEqual([['w', 'high']])
    expect(calls('moveToTop')).toEqual([['w']])
    expect(calls('cancel')).toEqual([['w']])
    expect(screen.queryByRole('button', { name: 'Retry a b.mov' })).toBeNull()
  })

  it('shows the reason of a failed job and offers retry and remove', async () => {
    await start()
    showRow(
      makeJob({
        id: 'f',
        name: 'bad.avi',
        state: 'failed',
        failedReason: 'bad.avi: no video or audio stream',
      }),
    )
    expect(screen.getByText(/no video or audio stream/)).toBeTruthy()
    fireEvent.click(screen.getByRole('button', { name: 'Retry bad.avi' }))
    fireEvent.click(screen.getByRole('button', { name: 'Remove bad.avi' }))
    expect(calls('retry')).toEqual([['f']])
    expect(calls('remove')).toEqual([['f']])
  })

  it('reveals the output of a completed job, and says where it is when it cannot', async () => {
    await start()
    const result = {
      outputPath: '/media/done.720p.mp4',
      size: 2_200_000,
      durationSec: 12,
      width: 1280,
      height: 720,
      subtitles: 'none' as const,
      elapsedMs: 8000,
      node: 'desk-1',
    }
    showRow(makeJob({ id: 'c', name: 'done.mp4', state: 'completed', result }))
    expect(screen.getByText(/done\.720p\.mp4 · 2\.1 MB · 1280×720/)).toBeTruthy()
    fireEvent.click(screen.getByRole('button', { name: 'Reveal output of done.mp4' }))
    expect(calls('revealOutput')).toEqual([['c']])
    // The web fake cannot reveal: the path is shown instead.
    await vi.waitFor(() =>
      expect(useBullpen.getState().notices.map((n) => n.text)).toEqual([
        'The output of done.mp4 is at /media/done.720p.mp4 on desk-1.',
      ]),
    )
  })
})

describe('App', () => {
  it('shows the Redis banner while Redis is down and hides it when it is ready again', async () => {
    await start()
    render(<App />)
    expect(screen.queryByRole('alert')).toBeNull()
    act(() =>
      fake.emit('connection', { state: 'down', redis: 'redis://10.0.0.5:6379', message: 'ECONNREFUSED' }),
    )
    const banner = screen.getByRole('alert')
    expect(banner.textContent).toContain('Redis is unreachable at redis://10.0.0.5:6379')
    expect(banner.textContent).toContain('ECONNREFUSED')
    act(() => fake.emit('connection', { state: 'ready', redis: 'redis://10.0.0.5:6379', message: null }))
    expect(screen.queryByRole('alert')).toBeNull()
    expect(screen.getByText('Connected')).toBeTruthy()

    // In a browser, losing the serving node is told apart from losing Redis.
    const lost = 'Lost the connection to the Bullpen server at 127.0.0.1:4000; reconnecting…'
    act(() => fake.emit('connection', { state: 'down', redis: 'redis://10.0.0.5:6379', message: lost }))
    expect(screen.getByRole('alert').textContent).toMatch(
      /^Not connected to the Bullpen server\. Lost the connection/,
    )
    act(() => fake.emit('connection', { state: 'ready', redis: 'redis://10.0.0.5:6379', message: null }))
    expect(screen.queryByRole('alert')).toBeNull()
  })

  it('queues dropped files with the chosen preset and priority, and shows the drag-over state', async () => {
    await start()
    const { container } = render(<App />)
    fireEvent.change(screen.getByRole('combobox', { name: 'Preset' }), { target: { value: 'preset:1080p' } })
    fireEvent.change(screen.getByRole('combobox', { name: 'Priority' }), { target: { value: 'high' } })

    fireEvent.dragEnter(window, { dataTransfer: { types: ['Files'], files: [] } })
    expect(container.querySelector('.adder.dragging')).not.toBeNull()
    fireEvent.dragLeave(window, { dataTransfer: { types: ['Files'], files: [] } })
    expect(container.querySelector('.adder.dragging')).toBeNull()

    const file = new File(['x'], 'clip.mov', { type: 'video/quicktime' })
    fireEvent.dragEnter(window, { dataTransfer: { types: ['Files'], files: [file] } })
    fireEvent.drop(window, { dataTransfer: { types: ['Files'], files: [file] } })
    await vi.waitFor(() => expect(calls('addFiles')).toHaveLength(1))
    expect(calls('pathsForFiles')).toEqual([[[file]]])
    expect(calls('addFiles')[0]).toEqual([
      { paths: ['/uploads/clip.mov'], priority: 'high', preset: '1080p' },
    ])
    expect(container.querySelector('.adder.dragging')).toBeNull()
    await vi.waitFor(() => expect(screen.getByText(/Queued 1 file \(1080p, high priority\)/)).toBeTruthy())
  })

  it('remembers the choice: the next window starts with it', async () => {
    await start()
    render(<App />)
    fireEvent.change(screen.getByRole('combobox', { name: 'Preset' }), { target: { value: 'convert' } })
    fireEvent.change(screen.getByRole('combobox', { name: 'Format' }), { target: { value: 'webm' } })
    await vi.waitFor(() =>
      expect(calls('updateSettings').at(-1)).toEqual([
        { lastPreset: 'convert:webm', lastPriority: 'normal' },
      ]),
    )
    cleanup()
    stop()
    resetStore()
    await start(Object.assign(new FakeBridge(), { settings: { ...fake.settings } }))
    render(<App />)
    expect(screen.getByRole<HTMLSelectElement>('combobox', { name: 'Preset' }).value).toBe('convert')
    expect(screen.getByRole<HTMLSelectElement>('combobox', { name: 'Format' }).value).toBe('webm')
  })

  it('adds files from the file input in a browser, with a custom resize', async () => {
    await start()
    const { container } = render(<App />)
    fireEvent.change(screen.getByRole('combobox', { name: 'Preset' }), { target: { value: 'resize' } })
    fireEvent.change(screen.getByRole('spinbutton', { name: 'Width' }), { target: { value: '640' } })
    fireEvent.change(screen.getByRole('spinbutton', { name: 'Height' }), { target: { value: '' } })
    const input = container.querySelector<HTMLInputElement>('#add-files-input')
    if (!input) throw new Error('no file input')
    const click = vi.spyOn(input, 'click')
    fireEvent.click(screen.getByRole('button', { name: 'Add files…' }))
    // In a browser, "Add files…" opens the file input (there is no native dialog to ask for).
    await vi.waitFor(() => expect(click).toHaveBeenCalledOnce())
    expect(calls('pickFiles')).toEqual([])
    const files = [new File(['a'], 'a.mkv'), new File(['b'], 'b.mkv')]
    fireEvent.change(input, { target: { files } })
    await vi.waitFor(() => expect(calls('addFiles')).toHaveLength(1))
    expect(calls('addFiles')[0]).toEqual([
      {
        paths: ['/uploads/a.mkv', '/uploads/b.mkv'],
        priority: 'normal',
        spec: { format: 'mp4', resize: { width: 640 } },
      },
    ])
  })

  it('refuses a resize without any size, naming the problem', async () => {
    await start()
    render(<App />)
    fireEvent.change(screen.getByRole('combobox', { name: 'Preset' }), { target: { value: 'resize' } })
    fireEvent.change(screen.getByRole('spinbutton', { name: 'Width' }), { target: { value: '' } })
    fireEvent.change(screen.getByRole('spinbutton', { name: 'Height' }), { target: { value: '' } })
    expect(screen.getByRole('alert').textContent).toContain('Resize needs a width, a height or both')
    fireEvent.drop(window, { dataTransfer: { types: ['Files'], files: [new File(['x'], 'x.mp4')] } })
    await act(async () => {
      await Promise.resolve()
    })
    expect(calls('pathsForFiles')).toEqual([])
    expect(calls('addFiles')).toEqual([])
  })

  it('uses the native dialog in Electron', async () => {
    await start(new FakeBridge('electron'))
    render(<App />)
    fireEvent.click(screen.getByRole('button', { name: 'Add files…' }))
    await vi.waitFor(() => expect(calls('addFiles')).toHaveLength(1))
    expect(calls('addFiles')[0]).toEqual([{ paths: ['/picked/a.mov'], priority: 'normal', preset: '720p' }])
    expect(calls('pathsForFiles')).toEqual([])
  })

  it('lists the jobs of the selected tab with their counts, and moves them when events arrive', async () => {
    const b = new FakeBridge()
    b.put(
      ...Array.from({ length: 30 }, (_, i) => makeJob({ id: `w${i}`, name: `wait-${i}.mp4` })),
      makeJob({ id: 'f1', name: 'broken.mp4', state: 'failed', failedReason: 'moov atom not found' }),
    )
    await start(b)
    render(<App />)
    const waitingTab = screen.getByRole('tab', { name: 'Waiting 30' })
    expect(waitingTab.getAttribute('aria-selected')).toBe('true')
    const list = screen.getByRole('list', { name: 'waiting jobs' })
    expect(within(list).getByText('wait-0.mp4')).toBeTruthy()
    expect(within(list).getAllByRole('listitem').length).toBeGreaterThan(5)
    expect(within(list).getAllByRole('listitem').length).toBeLessThan(30)

    fireEvent.click(screen.getByRole('tab', { name: 'Failed 1' }))
    expect(screen.getByRole('tab', { name: 'Failed 1' }).getAttribute('aria-selected')).toBe('true')
    await vi.waitFor(() => expect(screen.getByText('broken.mp4')).toBeTruthy())
    expect(calls('listJobs').at(-1)).toEqual(['failed', 0, 100])

    // A retried job leaves the failed tab; the stats move the counts.
    b.jobs.set('f1', makeJob({ id: 'f1', name: 'broken.mp4', state: 'waiting' }))
    act(() => {
      b.emit('job:updated', makeJob({ id: 'f1', name: 'broken.mp4', state: 'waiting' }))
      b.emit('stats', b.computeStats())
      flushEvents()
    })
    expect(screen.queryByText('broken.mp4')).toBeNull()
    expect(screen.getByRole('tab', { name: 'Waiting 31' })).toBeTruthy()
    expect(screen.getByText('No failed jobs.')).toBeTruthy()

    // Arrow keys move between tabs.
    fireEvent.keyDown(screen.getByRole('tab', { name: 'Failed 0' }), { key: 'ArrowLeft' })
    expect(screen.getByRole('tab', { name: 'Completed 0' }).getAttribute('aria-selected')).toBe('true')
  })

  it('moves the focus to the next row when the focused row goes away', async () => {
    const b = new FakeBridge()
    b.put(...['a', 'b', 'c'].map((id) => makeJob({ id, name: `${id}.mp4` })))
    await start(b)
    render(<App />)
    const cancel = screen.getByRole('button', { name: 'Cancel b.mp4' })
    cancel.focus()
    fireEvent.click(cancel)
    b.jobs.delete('b')
    act(() => {
      b.emit('job:removed', { id: 'b' })
      flushEvents()
    })
    expect(screen.queryByText('b.mp4')).toBeNull()
    const focused = document.activeElement
    expect(focused?.getAttribute('role')).toBe('listitem')
    expect(focused?.textContent).toContain('c.mp4')
    // The next job's buttons were not focused: Enter does not cancel it by accident.
    expect(calls('cancel')).toEqual([['b']])
  })

  it('pauses and resumes the pool and this node, and cleans old jobs', async () => {
    await start()
    fake.dashboard = 'http://127.0.0.1:4000/admin/queues'
    render(<App />)
    fireEvent.click(screen.getByRole('button', { name: 'Pause pool' }))
    fireEvent.click(screen.getByRole('button', { name: 'Pause this node' }))
    expect(calls('pause')).toEqual([['pool'], ['local']])
    act(() => {
      fake.emit('stats', { ...fake.computeStats(), poolPaused: true })
      flushEvents()
    })
    fireEvent.click(screen.getByRole('button', { name: 'Resume pool' }))
    expect(calls('resume')).toEqual([['pool']])

    fireEvent.change(screen.getByRole('combobox', { name: 'Clean jobs older than' }), {
      target: { value: '0' },
    })
    fireEvent.click(screen.getByRole('button', { name: 'Clean old jobs' }))
    expect(calls('clean')).toEqual([[0]])
    await vi.waitFor(() => expect(screen.getByText('Removed 0 old jobs.')).toBeTruthy())
    // No dashboard at start; it shows after a reconnect refetch.
    expect(screen.queryByRole('link', { name: 'Queue dashboard' })).toBeNull()
    act(() => fake.emit('connection', { state: 'down', redis: '', message: null }))
    act(() => fake.emit('connection', { state: 'ready', redis: '', message: null }))
    await vi.waitFor(() =>
      expect(screen.getByRole('link', { name: 'Queue dashboard' }).getAttribute('href')).toBe(
        'http://127.0.0.1:4000/admin/queues',
      ),
    )
  })

  it('saves settings from the settings panel, building a rediss:// URL with the password', async () => {
    await start()
    fake.nodes = [
      {
        id: 'n1',
        name: 'render-box',
        host: 'render-box.lan',
        kind: 'worker',
        concurrency: 4,
        active: 3,
        paused: false,
        ffmpegVersion: '6.1',
        encoders: [],
        lastSeen: Date.now(),
        completedLastHour: 17,
        isSelf: false,
      },
    ]
    render(<App />)
    act(() => fake.emit('nodes', fake.nodes))
    fireEvent.click(screen.getByRole('button', { name: 'Settings' }))
    const panel = screen.getByRole('complementary', { name: 'Settings' })
    fireEvent.click(within(panel).getByRole('radio', { name: /Remote/ }))
    fireEvent.change(within(panel).getByRole('textbox', { name: 'Redis URL' }), {
      target: { value: 'redis.example.com:6380' },
    })
    fireEvent.change(within(panel).getByLabelText('Redis password'), { target: { value: 's3cr:t' } })
    fireEvent.click(within(panel).getByRole('checkbox', { name: 'Use TLS (rediss://)' }))
    fireEvent.change(within(panel).getByRole('spinbutton', { name: 'Jobs at once' }), {
      target: { value: '3' },
    })
    fireEvent.change(within(panel).getByRole('textbox', { name: 'Node name' }), {
      target: { value: 'studio' },
    })
    fireEvent.click(within(panel).getByRole('button', { name: 'Save settings' }))
    await vi.waitFor(() => expect(calls('updateSettings')).toHaveLength(1))
    expect(calls('updateSettings')[0]).toEqual([
      { redisUrl: 'rediss://:s3cr%3At@redis.example.com:6380', concurrency: 3, nodeName: 'studio' },
    ])
    const row = within(panel).getByRole('row', { name: /render-box/ })
    expect(row.textContent).toContain('3/4')
    expect(row.textContent).toContain('17 done')
    fireEvent.click(within(panel).getByRole('button', { name: 'Close settings' }))
    expect(screen.queryByRole('complementary', { name: 'Settings' })).toBeNull()
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Settings' }))
    // Escape closes it too.
    fireEvent.click(screen.getByRole('button', { name: 'Settings' }))
    fireEvent.keyDown(screen.getByRole('textbox', { name: 'Node name' }), { key: 'Escape' })
    expect(screen.queryByRole('complementary', { name: 'Settings' })).toBeNull()
  })
})
