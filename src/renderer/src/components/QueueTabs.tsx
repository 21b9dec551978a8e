import { useRef, useState } from 'react'
import { useShallow } from 'zustand/react/shallow'
import { JOB_STATES, type JobState } from '../../../shared/api'
import { notify, runAction, selectTab, useBullpen } from '../store'

const TITLES: Record<JobState, string> = {
  waiting: 'Waiting',
  active: 'Active',
  completed: 'Completed',
  failed: 'Failed',
  delayed: 'Delayed',
  paused: 'Paused',
}

/** Ids shared by the tabs and the panel they control. */
export const TAB_PANEL_ID = 'job-panel'
export const tabId = (s: JobState): string => `tab-${s}`

const CLEAN_AGES: readonly { label: string; ms: number }[] = [
  { label: 'any age', ms: 0 },
  { label: '1 hour', ms: 3_600_000 },
  { label: '1 day', ms: 86_400_000 },
  { label: '1 week', ms: 7 * 86_400_000 },
]

/** The tabs of the job states with their counts (arrow keys move between them), and "Clean old jobs". */
export function QueueTabs(): React.JSX.Element {
  const tab = useBullpen((s) => s.tab)
  const counts = useBullpen(useShallow((s) => JOB_STATES.map((state) => s.stats[state])))
  const refs = useRef<Partial<Record<JobState, HTMLButtonElement | null>>>({})

  function onKeyDown(e: React.KeyboardEvent, i: number): void {
    let next: number | null = null
    if (e.key === 'ArrowRight') next = (i + 1) % JOB_STATES.length
    else if (e.key === 'ArrowLeft') next = (i - 1 + JOB_STATES.length) % JOB_STATES.length
    else if (e.key === 'Home') next = 0
    else if (e.key === 'End') next = JOB_STATES.length - 1
    if (next === null) return
    e.preventDefault()
    const state = JOB_STATES[next]
    if (!state) return
    selectTab(state)
    refs.current[state]?.focus()
  }

  return (
    <div className="tabbar">
      <div role="tablist" aria-label="Jobs by state" className="tabs">
        {JOB_STATES.map((state, i) => (
          <button
            key={state}
            ref={(el) => {
              refs.current[state] = el
            }}
            type="button"
            role="tab"
            id={tabId(state)}
            aria-selected={tab === state}
            aria-controls={TAB_PANEL_ID}
            tabIndex={tab === state ? 0 : -1}
            className={`tab tab-${state}`}
            onClick={() => selectTab(state)}
            onKeyDown={(e) => onKeyDown(e, i)}
          >
            {TITLES[state]} <span className="count">{(counts[i] ?? 0).toLocaleString('en-US')}</span>
          </button>
        ))}
      </div>
      <CleanControl />
    </div>
  )
}

function CleanControl(): React.JSX.Element {
  const [age, setAge] = useState(CLEAN_AGES[2]?.ms ?? 0)
  const [busy, setBusy] = useState(false)
  return (
    <div className="clean">
      <label>
        <span className="muted">Clean jobs older than</span>
        <select value={age} onChange={(e) => setAge(Number(e.target.value))}>
          {CLEAN_AGES.map((a) => (
            <option key={a.ms} value={a.ms}>
              {a.label}
            </option>
          ))}
        </select>
      </label>
      <button
        type="button"
        disabled={busy}
        title="Removes completed and failed jobs older than the chosen age"
        onClick={() => {
          setBusy(true)
          void runAction('Could not clean old jobs', (b) => b.clean(age))
            .then((n) => {
              if (n !== undefined) notify('info', `Removed ${n} old job${n === 1 ? '' : 's'}.`)
            })
            .finally(() => setBusy(false))
        }}
      >
        Clean old jobs
      </button>
    </div>
  )
}

export { TITLES as STATE_TITLES }
