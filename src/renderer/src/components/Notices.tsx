import { dismissNotice, useBullpen } from '../store'

/** Outcome messages: information in a polite live region, errors as alerts. Each can be dismissed. */
export function Notices(): React.JSX.Element {
  const notices = useBullpen((s) => s.notices)
  const infos = notices.filter((n) => n.kind === 'info')
  const errors = notices.filter((n) => n.kind === 'error')
  return (
    <div className="notices">
      <div role="status" aria-live="polite">
        {infos.map((n) => (
          <div key={n.id} className="notice info">
            <span>{n.text}</span>
            <button
              type="button"
              className="ghost"
              aria-label="Dismiss message"
              onClick={() => dismissNotice(n.id)}
            >
              ×
            </button>
          </div>
        ))}
      </div>
      <div role="alert">
        {errors.map((n) => (
          <div key={n.id} className="notice error">
            <span>{n.text}</span>
            <button
              type="button"
              className="ghost"
              aria-label="Dismiss error"
              onClick={() => dismissNotice(n.id)}
            >
              ×
            </button>
          </div>
        ))}
      </div>
    </div>
  )
}
