/** Small display helpers. */
import type { JobProgress } from '../../shared/api'

/** `0:42`, `12:05`, `1:02:03`. */
export function formatDuration(sec: number): string {
  const s = Math.max(0, Math.round(sec))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i] ?? 'TB'}`
}

const STAGES: Record<JobProgress['stage'], string> = {
  probe: 'Probing',
  download: 'Fetching input',
  encode: 'Encoding',
  verify: 'Verifying',
  upload: 'Sending output',
}

/** `42% · 87 fps · 3.1× · ETA 0:12`, or the stage when there is nothing else to say. */
export function describeProgress(p: JobProgress | null): string {
  if (!p) return 'Starting…'
  const parts: string[] = []
  if (p.stage !== 'encode') parts.push(STAGES[p.stage])
  if (p.percent !== null) parts.push(`${Math.floor(p.percent)}%`)
  if (p.fps !== null) parts.push(`${Math.round(p.fps)} fps`)
  if (p.speed !== null) parts.push(`${p.speed.toFixed(p.speed < 10 ? 1 : 0)}×`)
  if (p.etaSec !== null) parts.push(`ETA ${formatDuration(p.etaSec)}`)
  if (parts.length === 0) parts.push(STAGES[p.stage])
  return parts.join(' · ')
}

/** `just now`, `5 min ago`, `3 h ago`. */
export function formatAgo(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 10) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86400)} d ago`
}
