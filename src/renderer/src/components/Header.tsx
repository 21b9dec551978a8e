import { useEffect, useRef, useState } from 'react'
import { useShallow } from 'zustand/react/shallow'
import type { ConnectionState } from '../../../shared/api'
import { runAction, setSettingsOpen, useBullpen } from '../store'

const MAX_CONCURRENCY = 32

const CONNECTION_TEXT: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  ready: 'Connected',
  reconnecting: 'Reconnecting…',
  down: 'Redis unreachable',
}

function ConnectionStatusPill(): React.JSX.Element {
  const { state, redis } = useBullpen(
    useShallow((s) => ({ state: s.connection.state, redis: s.connection.redis })),
  )
  return (
    <span className={`conn conn-${state}`} role="status" title={redis ? `Redis: ${redis}` : undefined}>
      <span className="dot" aria-hidden="true" />
      {CONNECTION_TEXT[state]}
      {redis ? <span className="conn-redis"> · {redis}</span> : null}
    </span>
  )
}

/** The concurrency of this node's worker, saved to the settings when changed. */
function ConcurrencyInput(): React.JSX.Element {
  const saved = useBullpen((s) => s.settings?.concurrency ?? null)
  const [text, setText] = useState(saved === null ? '' : String(saved))
  // When the saved value changes (here or elsewhere), the field shows it: state adjusted during render, as React
  // recommends over an effect (https://react.dev/learn/you-might-not-need-an-effect).
  const [shown, setShown] = useState(saved)
  if (saved !== shown) {
    setShown(saved)
    setText(saved === null ? '' : String(saved))
  }
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current)
    },
    [],
  )

  function commit(value: string): void {
    if (timer.current) clearTimeout(timer.current)
    timer.current = null
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY || n === saved) return
    void runAction('Could not change the concurrency', (b) => b.updateSettings({ concurrency: n })).then(
      (s) => {
        if (s) useBullpen.setState({ settings: s })
      },
    )
  }

  return (
    <label className="concurrency" title="Jobs this node runs at once">
      <span>Concurrency</span>
      <input
        type="number"
        min={1}
        max={MAX_CONCURRENCY}
        value={text}
        disabled={saved === null}
        onChange={(e) => {
          const value = e.target.value
          setText(value)
          // Applied after a short pause, so that typing "12" does not first set 1.
          if (timer.current) clearTimeout(timer.current)
          timer.current = setTimeout(() => commit(value), 600)
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter') commit(text)
        }}
        onBlur={() => commit(text)}
      />
    </label>
  )
}

/** App name, Redis status, and the queue controls: pause/resume this node and the pool, concurrency, dashboard. */
export function Header(): React.JSX.Element {
  const { localPaused, poolPaused } = useBullpen(
    useShallow((s) => ({ localPaused: s.stats.localPaused, poolPaused: s.stats.poolPaused })),
  )
  const dashboardUrl = useBullpen((s) => s.dashboardUrl)
  const settingsOpen = useBullpen((s) => s.settingsOpen)
  const nodeName = useBullpen((s) => s.settings?.nodeName ?? '')

  return (
    <header className="header">
      <div className="brand">
        <h1>Bullpen</h1>
        {nodeName ? (
          <span className="node-name" title="This node">
            {nodeName}
          </span>
        ) : null}
        <ConnectionStatusPill />
      </div>
      <div className="controls" role="group" aria-label="Queue controls">
        <button
          type="button"
          onClick={() =>
            void runAction('Could not change this node', (b) =>
              localPaused ? b.resume('local') : b.pause('local'),
            )
          }
        >
          {localPaused ? 'Resume this node' : 'Pause this node'}
        </button>
        <button
          type="button"
          onClick={() =>
            void runAction('Could not change the pool', (b) =>
              poolPaused ? b.resume('pool') : b.pause('pool'),
            )
          }
        >
          {poolPaused ? 'Resume pool' : 'Pause pool'}
        </button>
        <ConcurrencyInput />
        {dashboardUrl ? (
          <a className="button-link" href={dashboardUrl} target="_blank" rel="noreferrer">
            Queue dashboard
          </a>
        ) : null}
        <button
          type="button"
          aria-expanded={settingsOpen}
          aria-controls="settings-panel"
          onClick={() => setSettingsOpen(!settingsOpen)}
        >
          Settings
        </button>
      </div>
    </header>
  )
}
