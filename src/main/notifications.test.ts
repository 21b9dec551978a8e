import { describe, expect, it } from 'vitest'
import type { JobView } from '../shared/api'
import { JobNotifier, PER_JOB_LIMIT, type NotificationLike, type NotifierDeps } from './notifications'
import { jobView } from './testViews'

class FakeNotification implements NotificationLike {
  shown = false
  private readonly handlers = new Map<string, () => void>()
  constructor(
    readonly title: string,
    readonly body: string,
  ) {}
  show(): void {
    this.shown = true
  }
  on(event: 'click' | 'close', listener: () => void): this {
    this.handlers.set(event, listener)
    return this
  }
  click(): void {
    this.handlers.get('click')?.()
  }
}

function setup(enabled = true): {
  notifier: JobNotifier
  shown: FakeNotification[]
  revealed: string[]
  windows: number[]
} {
  const shown: FakeNotification[] = []
  const revealed: string[] = []
  const windows: number[] = []
  const deps: NotifierDeps = {
    selfId: 'me',
    enabled: () => enabled,
    create: ({ title, body }) => {
      const n = new FakeNotification(title, body)
      shown.push(n)
      return n
    },
    reveal: (p) => revealed.push(p),
    showWindow: () => windows.push(1),
  }
  return { notifier: new JobNotifier(deps), shown, revealed, windows }
}

const done = (id: string, batch: string | null = null, origin = 'me'): JobView =>
  jobView({
    id,
    batch,
    origin,
    state: 'completed',
    result: {
      outputPath: `/videos/clip-${id}.720p.mp4`,
      size: 1,
      durationSec: 10,
      subtitles: 'none',
      elapsedMs: 1,
      node: 'other-node',
    },
  })
const failed = (id: string, batch: string | null = null, over: Partial<JobView> = {}): JobView =>
  jobView({
    id,
    batch,
    state: 'failed',
    attemptsMade: 3,
    attempts: 3,
    failedReason: 'ffmpeg exited 1',
    ...over,
  })

describe('JobNotifier', () => {
  it('announces this desktop’s completed job wherever it ran, and a click reveals the output', () => {
    const { notifier, shown, revealed } = setup()
    notifier.finished(done('1'))
    notifier.finished(done('1')) // repeated event
    notifier.finished(done('2', null, 'someone-else'))
    expect(shown.map((n) => [n.title, n.body, n.shown])).toEqual([
      ['Done: clip-1.mp4', 'Saved clip-1.720p.mp4 (720p)', true],
    ])
    shown[0]?.click()
    expect(revealed).toEqual(['/videos/clip-1.720p.mp4'])
  })

  it('announces failures for good, not failures that will be retried nor cancellations', () => {
    const { notifier, shown, windows } = setup()
    notifier.finished(failed('1', null, { state: 'failed', attemptsMade: 1, attempts: 3 }))
    notifier.finished(failed('2', null, { cancelled: true, attemptsMade: 1 }))
    notifier.finished(failed('3'))
    expect(shown.map((n) => [n.title, n.body])).toEqual([['Failed: clip-3.mp4', 'ffmpeg exited 1']])
    shown[0]?.click()
    expect(windows).toHaveLength(1)
  })

  it('sums up a drop once its last job is final', () => {
    const { notifier, shown, revealed } = setup()
    for (const id of ['1', '2', '3']) notifier.added(jobView({ id, batch: 'b1' }))
    notifier.finished(done('1', 'b1'))
    notifier.finished(failed('2', 'b1'))
    expect(shown.map((n) => n.title)).toEqual(['Done: clip-1.mp4', 'Failed: clip-2.mp4'])
    notifier.finished(done('3', 'b1'))
    expect(shown.map((n) => n.title)).toEqual([
      'Done: clip-1.mp4',
      'Failed: clip-2.mp4',
      'Done: clip-3.mp4',
      'Drop finished',
    ])
    expect(shown[3]?.body).toBe('2 of 3 converted, 1 failed')
    shown[3]?.click()
    expect(revealed).toEqual(['/videos/clip-1.720p.mp4'])
  })

  it('in a big drop announces only failures and the summary', () => {
    const { notifier, shown } = setup()
    const ids = Array.from({ length: PER_JOB_LIMIT + 2 }, (_, i) => String(i + 1))
    for (const id of ids) notifier.added(jobView({ id, batch: 'big' }))
    for (const id of ids) notifier.finished(id === '2' ? failed(id, 'big') : done(id, 'big'))
    expect(shown.map((n) => n.title)).toEqual(['Failed: clip-2.mp4', 'Drop finished'])
    expect(shown[1]?.body).toBe(`${ids.length - 1} of ${ids.length} converted, 1 failed`)
  })

  it('stays silent when notifications are off', () => {
    const { notifier, shown } = setup(false)
    notifier.added(jobView({ id: '1', batch: 'b' }))
    notifier.added(jobView({ id: '2', batch: 'b' }))
    notifier.finished(done('1', 'b'))
    notifier.finished(failed('2', 'b'))
    expect(shown).toEqual([])
  })
})
