import { memo } from 'react'
import type { JobProgress, JobView } from '../../../shared/api'
import { UI_PRIORITIES, isPriority } from '../choice'
import { describeProgress, formatBytes, formatDuration } from '../format'
import { notify, runAction, useBullpen } from '../store'

/** Fixed height of a row in the virtual list (CSS: .job-row). */
export const ROW_HEIGHT = 64

const PENDING: ReadonlySet<string> = new Set(['waiting', 'delayed', 'paused'])

/** The progress bar of a running job; indeterminate (no aria-valuenow) while the percentage is unknown. */
export function ProgressBar({
  name,
  progress,
}: {
  name: string
  progress: JobProgress | null
}): React.JSX.Element {
  const pct = progress?.percent ?? null
  const text = describeProgress(progress)
  const value = pct === null ? null : Math.max(0, Math.min(100, Math.round(pct)))
  return (
    <div className="progress-wrap">
      <div
        className={value === null ? 'progress indeterminate' : 'progress'}
        role="progressbar"
        aria-label={`Progress of ${name}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={value ?? undefined}
        aria-valuetext={text}
      >
        <div className="progress-fill" style={value === null ? undefined : { width: `${value}%` }} />
      </div>
      <span className="progress-text">{text}</span>
    </div>
  )
}

function detail(job: JobView, progress: JobProgress | null): React.JSX.Element {
  switch (job.state) {
    case 'active':
      return <ProgressBar name={job.name} progress={progress} />
    case 'failed':
      return (
        <span className="job-reason" title={job.failedReason ?? undefined}>
          {job.cancelled ? 'Cancelled' : (job.failedReason ?? 'Failed')}
          {job.attemptsMade > 1 ? ` (after ${job.attemptsMade} attempts)` : ''}
        </span>
      )
    case 'completed': {
      const r = job.result
      if (!r) return <span className="job-meta">Done</span>
      const out = r.outputPath.split(/[\\/]/).pop() ?? r.outputPath
      const dims = r.width && r.height ? ` · ${r.width}×${r.height}` : ''
      return (
        <span className="job-meta" title={r.outputPath}>
          → {out} · {formatBytes(r.size)}
          {dims} · took {formatDuration(r.elapsedMs / 1000)}
          {r.subtitles === 'dropped' ? ' · subtitles dropped' : ''}
        </span>
      )
    }
    default: {
      if (job.state === 'delayed' && job.failedReason)
        return (
          <span className="job-reason" title={job.failedReason}>
            Will retry (attempt {job.attemptsMade + 1} of {job.attempts}): {job.failedReason}
          </span>
        )
      const d = job.summary.durationSec
      const size =
        job.summary.width && job.summary.height ? `${job.summary.width}×${job.summary.height}` : null
      const bits = [d === null ? null : formatDuration(d), size, job.summary.hasVideo ? null : 'audio only']
      return <span className="job-meta">{bits.filter(Boolean).join(' · ') || job.inputPath}</span>
    }
  }
}

/** The action buttons of one job; every one is named after the file ("Cancel clip.mp4"). */
function Actions({ job }: { job: JobView }): React.JSX.Element {
  const { id, name } = job
  const buttons: React.JSX.Element[] = []
  if (job.state === 'waiting')
    buttons.push(
      <button
        key="top"
        type="button"
        aria-label={`Move ${name} to top`}
        title="Run next"
        onClick={() => void runAction(`Could not move ${name}`, (b) => b.moveToTop(id))}
      >
        Top
      </button>,
    )
  if (job.state === 'active' || PENDING.has(job.state))
    buttons.push(
      <button
        key="cancel"
        type="button"
        className="danger"
        aria-label={`Cancel ${name}`}
        onClick={() => void runAction(`Could not cancel ${name}`, (b) => b.cancel(id))}
      >
        Cancel
      </button>,
    )
  if (job.state === 'failed')
    buttons.push(
      <button
        key="retry"
        type="button"
        aria-label={`Retry ${name}`}
        onClick={() => void runAction(`Could not retry ${name}`, (b) => b.retry(id))}
      >
        Retry
      </button>,
    )
  if (job.state === 'completed')
    buttons.push(
      <button
        key="reveal"
        type="button"
        aria-label={`Reveal output of ${name}`}
        title={job.result?.outputPath}
        onClick={() =>
          void runAction(`Could not reveal the output of ${name}`, (b) => b.revealOutput(id)).then(
            (shown) => {
              if (shown === false && job.result)
                notify('info', `The output of ${name} is at ${job.result.outputPath} on ${job.origin}.`)
            },
          )
        }
      >
        Reveal
      </button>,
    )
  if (job.state === 'completed' || job.state === 'failed')
    buttons.push(
      <button
        key="remove"
        type="button"
        aria-label={`Remove ${name}`}
        onClick={() => void runAction(`Could not remove ${name}`, (b) => b.remove(id))}
      >
        Remove
      </button>,
    )
  return <div className="job-actions">{buttons}</div>
}

function PriorityCell({ job }: { job: JobView }): React.JSX.Element {
  if (!PENDING.has(job.state)) return <span className={`badge prio-${job.priority}`}>{job.priority}</span>
  return (
    <select
      className={`prio-select prio-${job.priority}`}
      aria-label={`Change priority of ${job.name}`}
      value={job.priority}
      onChange={(e) => {
        const p: string = e.target.value
        if (isPriority(p))
          void runAction(`Could not change the priority of ${job.name}`, (b) => b.setPriority(job.id, p))
      }}
    >
      {UI_PRIORITIES.map((p) => (
        <option key={p} value={p}>
          {p}
        </option>
      ))}
    </select>
  )
}

/** One job of the list, drawn from the store by id (re-renders only when this job or its progress changes). */
export const JobRow = memo(function JobRow({ id }: { id: string }): React.JSX.Element | null {
  const job = useBullpen((s) => s.jobs[id])
  const live = useBullpen((s) => s.progress[id])
  if (!job) return <div className="job-row placeholder" aria-busy="true" />
  const progress = live ?? job.progress
  return (
    <div className={`job-row state-${job.state}`} data-job-id={id}>
      <div className="job-main">
        <div className="job-line">
          <span className="job-name" title={job.inputPath}>
            {job.name}
          </span>
          <span className="badge label" title={`Preset / output: ${job.label}`}>
            {job.label}
          </span>
          <PriorityCell job={job} />
          {job.node ? (
            <span className="job-node" title="Node processing the job">
              on {job.node}
            </span>
          ) : null}
        </div>
        <div className="job-detail">{detail(job, progress)}</div>
      </div>
      <Actions job={job} />
    </div>
  )
})
