/**
 * Taskbar / dock progress (`BrowserWindow.setProgressBar`) for the jobs this desktop submitted, wherever they run:
 * the mean percentage of those running, indeterminate while none of them knows its percentage, and removed when
 * none runs. Written over a narrow view of the window, so it is tested with a typed fake.
 */
import type { JobView, Subscribe } from '../shared/api'

export type ProgressMode = 'none' | 'normal' | 'indeterminate' | 'error' | 'paused'

/** The part of Electron's `BrowserWindow` we use. */
export interface ProgressBarTarget {
  setProgressBar(progress: number, options?: { mode: ProgressMode }): void
  isDestroyed(): boolean
}

/** What the bar shows for a set of running jobs' percentages (null: unknown). `value` < 0 removes the bar. */
export function overallProgress(percents: Iterable<number | null>): { value: number; mode: ProgressMode } {
  let n = 0
  let known = 0
  let sum = 0
  for (const p of percents) {
    n++
    if (p === null) continue
    known++
    sum += Math.min(100, Math.max(0, p))
  }
  if (n === 0) return { value: -1, mode: 'none' }
  // Electron: a value above 1 shows an indeterminate bar.
  if (known === 0) return { value: 2, mode: 'indeterminate' }
  // Jobs whose percentage is still unknown count as not begun.
  return { value: sum / 100 / n, mode: 'normal' }
}

/** Follows this desktop's running jobs and keeps the window's progress bar in step. */
export class TaskbarProgress {
  private readonly running = new Map<string, number | null>()
  private shown: { value: number; mode: ProgressMode } = { value: -1, mode: 'none' }

  constructor(
    private readonly selfId: string,
    private readonly target: () => ProgressBarTarget | null,
  ) {}

  attach(on: Subscribe): () => void {
    const offs = [
      on('job:updated', (v) => this.updated(v)),
      on('job:progress', ({ id, progress }) => this.progress(id, progress.percent)),
      on('job:completed', (v) => this.ended(v.id)),
      on('job:failed', (v) => this.ended(v.id)),
      on('job:removed', ({ id }) => this.ended(id)),
    ]
    return () => {
      for (const off of offs) off()
    }
  }

  updated(v: JobView): void {
    if (v.origin !== this.selfId) return
    if (v.state === 'active') this.running.set(v.id, v.progress?.percent ?? this.running.get(v.id) ?? null)
    else this.running.delete(v.id)
    this.apply()
  }

  progress(id: string, percent: number | null): void {
    if (!this.running.has(id)) return
    this.running.set(id, percent)
    this.apply()
  }

  ended(id: string): void {
    if (this.running.delete(id)) this.apply()
  }

  private apply(): void {
    const next = overallProgress(this.running.values())
    // Skip changes under half a percent: each call goes to the OS shell.
    if (next.mode === this.shown.mode && Math.abs(next.value - this.shown.value) < 0.005) return
    const win = this.target()
    if (!win || win.isDestroyed()) return
    this.shown = next
    win.setProgressBar(next.value, { mode: next.mode })
  }
}
