import { useShallow } from 'zustand/react/shallow'
import { useBullpen } from '../store'

/** Shown while Redis is unreachable; goes away by itself when the connection is ready again. */
export function ConnectionBanner(): React.JSX.Element | null {
  const { state, redis, message } = useBullpen(
    useShallow((s) => ({
      state: s.connection.state,
      redis: s.connection.redis,
      message: s.connection.message,
    })),
  )
  if (state !== 'down' && state !== 'reconnecting') return null
  return (
    <div className="banner" role="alert">
      <strong>Redis is unreachable{redis ? ` at ${redis}` : ''}.</strong>{' '}
      {state === 'reconnecting' ? 'Reconnecting…' : 'Retrying in the background.'} Jobs already queued are
      kept; the list refreshes by itself when Redis is back.
      {message ? <span className="banner-detail"> ({message})</span> : null}
    </div>
  )
}
