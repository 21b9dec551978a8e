import { dismissNotice, useBullpen } from '../store'

/**
 * Outcome messages: information in a polite live region (present from the start, so additions are announced),
 * each error as its own alert. Each can be dismissed; information goes away by itself.
 */
export function Notices(): React.JSX.Element {
  const notices = useBullpen((s) => s.notices)
  return (
    <div className="notices">
      <div role="status" aria-live="polite">
        {notices
          .filter((n) => n.kind === 'info')
          .map((n) => (
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
      {notices
        .filter((n) => n.kind === 'error')
        .map((n) => (
          <div key={n.id} className="notice error" role="alert">
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
  )
}
