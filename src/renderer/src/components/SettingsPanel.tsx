import { useEffect, useRef, useState } from 'react'
import type { Settings } from '../../../shared/api'
import { formatAgo } from '../format'
import { notify, runAction, setSettingsOpen, useBullpen } from '../store'

const MAX_CONCURRENCY = 32

interface RedisForm {
  mode: 'local' | 'remote'
  url: string
  password: string
  tls: boolean
}

/** Splits a stored Redis URL into the form's fields (password and TLS apart). */
export function splitRedisUrl(redisUrl: string): RedisForm {
  if (redisUrl === '') return { mode: 'local', url: '', password: '', tls: false }
  try {
    const u = new URL(redisUrl)
    const tls = u.protocol === 'rediss:'
    const password = decodeURIComponent(u.password)
    u.password = ''
    u.protocol = 'redis:'
    return { mode: 'remote', url: u.toString().replace(/\/$/, ''), password, tls }
  } catch {
    return { mode: 'remote', url: redisUrl, password: '', tls: redisUrl.startsWith('rediss:') }
  }
}

/** Builds the Redis URL back from the form: `rediss://` for TLS, the password in the URL; '' for the local default. */
export function joinRedisUrl(f: RedisForm): string {
  if (f.mode === 'local') return ''
  const raw = f.url.trim()
  const withScheme = /^rediss?:\/\//.test(raw) ? raw : `redis://${raw}`
  try {
    const u = new URL(withScheme)
    if (!u.hostname) throw new Error('no host')
    u.protocol = f.tls ? 'rediss:' : 'redis:'
    if (f.password) u.password = encodeURIComponent(f.password)
    return u.toString().replace(/\/$/, '')
  } catch {
    throw new Error(`"${raw}" is not a Redis address; write it as host:port or redis://host:port/db.`)
  }
}

function SettingsForm({ settings }: { settings: Settings }): React.JSX.Element {
  const [redis, setRedis] = useState(() => splitRedisUrl(settings.redisUrl))
  const [concurrency, setConcurrency] = useState(String(settings.concurrency))
  const [outputDir, setOutputDir] = useState(settings.outputDir)
  const [nodeName, setNodeName] = useState(settings.nodeName)
  const [notifications, setNotifications] = useState(settings.notifications)
  const [saving, setSaving] = useState(false)
  const [error, setError] = useState<string | null>(null)

  async function save(e: React.FormEvent): Promise<void> {
    e.preventDefault()
    setError(null)
    const patch: Partial<Settings> = {}
    try {
      const redisUrl = joinRedisUrl(redis)
      if (redisUrl !== settings.redisUrl) patch.redisUrl = redisUrl
    } catch (err) {
      setError((err as Error).message)
      return
    }
    const n = Number(concurrency)
    if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY) {
      setError(`Jobs at once must be a whole number from 1 to ${MAX_CONCURRENCY}.`)
      return
    }
    if (n !== settings.concurrency) patch.concurrency = n
    if (outputDir.trim() !== settings.outputDir) patch.outputDir = outputDir.trim()
    if (nodeName.trim() !== settings.nodeName) patch.nodeName = nodeName.trim()
    if (notifications !== settings.notifications) patch.notifications = notifications
    if (Object.keys(patch).length === 0) {
      notify('info', 'Nothing to save: the settings are unchanged.')
      return
    }
    setSaving(true)
    const saved = await runAction('Could not save the settings', (b) => b.updateSettings(patch))
    setSaving(false)
    if (saved) {
      useBullpen.setState({ settings: saved })
      notify(
        'info',
        patch.redisUrl !== undefined ? 'Settings saved; reconnecting to Redis…' : 'Settings saved.',
      )
    }
  }

  return (
    <form className="settings-form" onSubmit={(e) => void save(e)}>
      <fieldset>
        <legend>Redis</legend>
        <label className="radio">
          <input
            type="radio"
            name="redis-mode"
            checked={redis.mode === 'local'}
            onChange={() => setRedis({ ...redis, mode: 'local' })}
          />
          Local (default, on this computer)
        </label>
        <label className="radio">
          <input
            type="radio"
            name="redis-mode"
            checked={redis.mode === 'remote'}
            onChange={() => setRedis({ ...redis, mode: 'remote' })}
          />
          Remote (shared by a pool of nodes)
        </label>
        {redis.mode === 'remote' ? (
          <>
            <label className="field wide">
              <span>Redis URL</span>
              <input
                type="text"
                placeholder="redis://host:6379/0"
                spellCheck={false}
                autoComplete="off"
                value={redis.url}
                onChange={(e) => setRedis({ ...redis, url: e.target.value })}
              />
            </label>
            <label className="field wide">
              <span>Redis password</span>
              <input
                type="password"
                autoComplete="off"
                placeholder="none"
                value={redis.password}
                onChange={(e) => setRedis({ ...redis, password: e.target.value })}
              />
            </label>
            <label className="check">
              <input
                type="checkbox"
                checked={redis.tls}
                onChange={(e) => setRedis({ ...redis, tls: e.target.checked })}
              />
              Use TLS (rediss://)
            </label>
          </>
        ) : null}
      </fieldset>
      <label className="field wide">
        <span>Jobs at once</span>
        <input
          type="number"
          min={1}
          max={MAX_CONCURRENCY}
          value={concurrency}
          onChange={(e) => setConcurrency(e.target.value)}
        />
      </label>
      <label className="field wide">
        <span>Output folder</span>
        <input
          type="text"
          placeholder="Next to each input"
          spellCheck={false}
          value={outputDir}
          onChange={(e) => setOutputDir(e.target.value)}
        />
      </label>
      <label className="field wide">
        <span>Node name</span>
        <input type="text" maxLength={64} value={nodeName} onChange={(e) => setNodeName(e.target.value)} />
      </label>
      <label className="check">
        <input type="checkbox" checked={notifications} onChange={(e) => setNotifications(e.target.checked)} />
        Notifications when jobs finish
      </label>
      {error ? (
        <p className="field-error" role="alert">
          {error}
        </p>
      ) : null}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={saving}>
          Save settings
        </button>
      </div>
    </form>
  )
}

/** The nodes of the pool: name, host, active/concurrency, throughput. */
export function NodesList(): React.JSX.Element {
  const nodes = useBullpen((s) => s.nodes)
  return (
    <table className="nodes">
      <caption>Nodes in the pool</caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Host</th>
          <th scope="col">Jobs</th>
          <th scope="col">Last hour</th>
        </tr>
      </thead>
      <tbody>
        {nodes.length === 0 ? (
          <tr>
            <td colSpan={4} className="muted">
              No nodes seen yet.
            </td>
          </tr>
        ) : (
          nodes.map((n) => (
            <tr key={n.id} title={`${n.kind} · ffmpeg ${n.ffmpegVersion} · seen ${formatAgo(n.lastSeen)}`}>
              <td>
                {n.name}
                {n.isSelf ? <span className="badge">this node</span> : null}
                {n.paused ? <span className="badge warn">paused</span> : null}
              </td>
              <td>{n.host}</td>
              <td>
                {n.active}/{n.concurrency}
              </td>
              <td>{n.completedLastHour} done</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
  )
}

function formKey(s: Settings): string {
  return JSON.stringify([s.redisUrl, s.concurrency, s.outputDir, s.nodeName, s.notifications])
}

/** Closes the panel and gives the focus back to the button that opened it. */
function closeSettings(): void {
  setSettingsOpen(false)
  document.querySelector<HTMLElement>('[aria-controls="settings-panel"]')?.focus()
}

/** Side panel with the settings form and the nodes list. Escape or "Close settings" closes it. */
export function SettingsPanel(): React.JSX.Element {
  const settings = useBullpen((s) => s.settings)
  const ref = useRef<HTMLElement>(null)
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>('input, select, button')?.focus()
  }, [])
  return (
    <aside
      id="settings-panel"
      className="settings"
      aria-labelledby="settings-title"
      ref={ref}
      onKeyDown={(e) => {
        if (e.key === 'Escape') closeSettings()
      }}
    >
      <div className="settings-head">
        <h2 id="settings-title">Settings</h2>
        <button type="button" className="ghost" aria-label="Close settings" onClick={closeSettings}>
          ×
        </button>
      </div>
      {settings ? (
        // Keyed on the stored values, so the form starts over when they change elsewhere.
        <SettingsForm key={formKey(settings)} settings={settings} />
      ) : (
        <p className="muted">Settings are not available while the core cannot be reached.</p>
      )}
      <NodesList />
    </aside>
  )
}
