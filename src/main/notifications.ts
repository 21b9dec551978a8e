/**
 * OS notifications for the jobs this desktop submitted, wherever they ran: one when a job completes or fails, and
 * one summary when a whole drop (batch) is done. Big drops (more than {@link PER_JOB_LIMIT} files) notify only
 * failures and the summary, so that fifty files do not make fifty notifications. Clicking reveals the output.
 *
 * Written over narrow interfaces (a notification factory, `reveal`, `show`) so it is tested with typed fakes.
 */
import type { AppEvents, JobView, Subscribe } from '../shared/api'

/** Drops with more files than this notify completions only through their summary. */
export const PER_JOB_LIMIT = 3

/** The part of Electron's `Notification` we use. */
export interface NotificationLike {
  show(): void
  on(event: 'click', listener: () => void): unknown
  on(event: 'close', listener: () => void): unknown
}

export interface NotifierDeps {
  /** This node's id: only jobs whose origin it is are announced. */
  selfId: string
  /** The user's setting, read at each event. */
  enabled(): boolean
  /** Makes (does not show) a notification. */
  create(options: { title: string; body: string }): NotificationLike
  /** Shows a file in the file manager. */
  reveal(path: string): void
  /** Brings the window forward. */
  showWindow(): void
}

interface Batch {
  pending: Set<string>
  total: number
  completed: number
  failed: number
  firstOutput: string | null
}

/** True when a failed job will not be tried again. */
function failedForGood(v: JobView): boolean {
  return v.state === 'failed' && (v.cancelled || v.attemptsMade >= v.attempts)
}

export class JobNotifier {
  private readonly batches = new Map<string, Batch>()
  /** Ids already announced as final (completed and failed events may repeat). */
  private readonly done = new Set<string>()
  /** Shown notifications, kept referenced: a collected Notification loses its click handler (electron#12690). */
  private readonly live = new Set<NotificationLike>()

  constructor(private readonly deps: NotifierDeps) {}

  /** Listens to the core's events; returns the function that stops listening. */
  attach(on: Subscribe): () => void {
    const offs = [
      on('job:added', (v) => this.added(v)),
      on('job:completed', (v) => this.finished(v)),
      on('job:failed', (v) => this.finished(v)),
    ]
    return () => {
      for (const off of offs) off()
    }
  }

  /** A job was queued: count it in its drop. */
  added(v: AppEvents['job:added']): void {
    if (v.origin !== this.deps.selfId || v.batch === null) return
    let b = this.batches.get(v.batch)
    if (!b) {
      b = { pending: new Set(), total: 0, completed: 0, failed: 0, firstOutput: null }
      this.batches.set(v.batch, b)
    }
    if (b.pending.has(v.id)) return
    b.pending.add(v.id)
    b.total++
  }

  /** A job completed or failed: announce it when it is final, and the drop when it was the last one. */
  finished(v: JobView): void {
    if (v.origin !== this.deps.selfId) return
    const final = v.state === 'completed' || failedForGood(v)
    if (!final || this.done.has(v.id)) return
    this.done.add(v.id)
    if (this.done.size > 10_000) this.done.delete(this.done.values().next().value as string)
    const batch = v.batch === null ? undefined : this.batches.get(v.batch)
    if (batch) {
      batch.pending.delete(v.id)
      if (v.state === 'completed') {
        batch.completed++
        batch.firstOutput ??= v.result?.outputPath ?? null
      } else if (!v.cancelled) {
        batch.failed++
      }
    }
    if (!this.deps.enabled()) {
      this.forgetIfDone(v.batch, batch)
      return
    }
    // The user cancelled it: no news to announce.
    if (v.state === 'failed' && v.cancelled) {
      this.summaryIfDone(v.batch, batch)
      return
    }
    const bigDrop = batch !== undefined && batch.total > PER_JOB_LIMIT
    if (v.state === 'failed') {
      this.notify(`Failed: ${v.name}`, v.failedReason ?? 'The transcode failed.', () =>
        this.deps.showWindow(),
      )
    } else if (!bigDrop) {
      const out = v.result?.outputPath
      this.notify(
        `Done: ${v.name}`,
        out ? `Saved ${basename(out)} (${v.label})` : `Converted (${v.label})`,
        () => (out ? this.deps.reveal(out) : this.deps.showWindow()),
      )
    }
    this.summaryIfDone(v.batch, batch)
  }

  private summaryIfDone(id: string | null, batch: Batch | undefined): void {
    if (id === null || !batch || batch.pending.size > 0) return
    this.batches.delete(id)
    if (batch.total < 2) return
    const parts = [`${batch.completed} of ${batch.total} converted`]
    if (batch.failed > 0) parts.push(`${batch.failed} failed`)
    const out = batch.firstOutput
    this.notify('Drop finished', parts.join(', '), () =>
      out ? this.deps.reveal(out) : this.deps.showWindow(),
    )
  }

  private forgetIfDone(id: string | null, batch: Batch | undefined): void {
    if (id !== null && batch && batch.pending.size === 0) this.batches.delete(id)
  }

  private notify(title: string, body: string, onClick: () => void): void {
    const n = this.deps.create({ title, body })
    this.live.add(n)
    n.on('click', () => {
      this.live.delete(n)
      onClick()
    })
    n.on('close', () => this.live.delete(n))
    n.show()
  }
}

/** File name of a path, POSIX or Windows. */
function basename(p: string): string {
  return p.split(/[\\/]/).pop() ?? p
}
