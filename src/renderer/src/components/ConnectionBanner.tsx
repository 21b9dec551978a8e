import { useShallow } from 'zustand/react/shallow'
import { useBullpen } from '../store'

/**
 * Shown while Redis (or, in a browser, the serving node) is unreachable; goes away by itself when the connection is
 * ready again, and the store then fetches everything anew.
 */
export function ConnectionBanner(): React.JSX.Element | null {
  const { state, redis, message } = useBullpen(
    useShallow((s) => ({
      state: s.connection.state,
      redis: s.connection.redis,
      message: s.connection.message,
    })),
  )
  if (state !== 'down' && state !== 'reconnecting') return null
  // The web bridge reports a lost server with the same status as a lost Redis; its message names the server.
  const serverLost = message !== null && /Bullpen server/.test(message)
  return (
    <div className="banner" role="alert">
      <strong>
        {serverLost
          ? 'Not connected to the Bullpen server.'
          : `Redis is unreachable${redis ? ` at ${redis}` : ''}.`}
      </strong>{' '}
      {message ?? (state === 'reconnecting' ? 'Reconnecting…' : 'Retrying in the background.')} Jobs already
      queued are kept; the list refreshes by itself when the connection is back.
    </div>
  )
}
