import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { AppEvents, JobView, Subscribe } from '../shared/api'
import { overallProgress, TaskbarProgress, type ProgressBarTarget, type ProgressMode } from './taskbar'
import { jobView } from './testViews'

class FakeWindow implements ProgressBarTarget {
  calls: [number, ProgressMode | undefined][] = []
  destroyed = false
  setProgressBar(progress: number, options?: { mode: ProgressMode }): void {
    this.calls.push([progress, options?.mode])
  }
  isDestroyed(): boolean {
    return this.destroyed
  }
}

function bus(): { on: Subscribe; emit<E extends keyof AppEvents>(e: E, p: AppEvents[E]): void } {
  const ee = new EventEmitter()
  return {
    on: (e, l) => {
      ee.on(e, l)
      return () => ee.off(e, l)
    },
    emit: (e, p) => ee.emit(e, p),
  }
}

const active = (id: string, origin = 'me'): JobView => jobView({ id, origin, state: 'active' })

describe('overallProgress', () => {
  it('removes the bar when nothing runs, is indeterminate while no percentage is known, else the mean', () => {
    expect(overallProgress([])).toEqual({ value: -1, mode: 'none' })
    expect(overallProgress([null, null])).toEqual({ value: 2, mode: 'indeterminate' })
    expect(overallProgress([50, 100])).toEqual({ value: 0.75, mode: 'normal' })
    // Unknown counts as not begun; out-of-range percentages are clamped.
    expect(overallProgress([null, 80])).toEqual({ value: 0.4, mode: 'normal' })
    expect(overallProgress([150, -5])).toEqual({ value: 0.5, mode: 'normal' })
  })
})

describe('TaskbarProgress', () => {
  it('follows only this desktop’s jobs, from active to done', () => {
    const win = new FakeWindow()
    const b = bus()
    const off = new TaskbarProgress('me', () => win).attach(b.on)
    b.emit('job:updated', active('1'))
    b.emit('job:updated', active('x', 'someone-else'))
    b.emit('job:progress', {
      id: 'x',
      progress: { stage: 'encode', percent: 90, fps: 1, speed: 1, etaSec: 1 },
    })
    b.emit('job:progress', {
      id: '1',
      progress: { stage: 'encode', percent: 40, fps: 1, speed: 1, etaSec: 1 },
    })
    b.emit('job:progress', {
      id: '1',
      progress: { stage: 'encode', percent: 40.2, fps: 1, speed: 1, etaSec: 1 },
    })
    b.emit('job:updated', active('2'))
    b.emit('job:completed', jobView({ id: '1', origin: 'me', state: 'completed' }))
    b.emit('job:failed', jobView({ id: '2', origin: 'me', state: 'failed' }))
    expect(win.calls).toEqual([
      [2, 'indeterminate'],
      [0.4, 'normal'],
      // 40.2 % moved the bar by less than half a percent: no call. Job 2 starts without a percentage.
      [0.201, 'normal'],
      [2, 'indeterminate'],
      [-1, 'none'],
    ])
    off()
    b.emit('job:updated', active('3'))
    expect(win.calls).toHaveLength(5)
  })

  it('leaves a destroyed window alone', () => {
    const win = new FakeWindow()
    win.destroyed = true
    const t = new TaskbarProgress('me', () => win)
    t.updated(active('1'))
    expect(win.calls).toEqual([])
  })
})
