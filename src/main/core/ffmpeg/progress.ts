/**
 * Pure parser of ffmpeg progress: the `key=value` blocks of `-progress pipe:1` (each ends with `progress=continue`
 * or `progress=end`) and, as a fallback, the stderr stats lines `frame=  171 fps=… time=00:00:05.71 … speed=11x`.
 * Percent is out_time against the input duration; with no duration it is null (indeterminate).
 */

export interface ProgressSnapshot {
  /** 0–100, or null when the input duration is unknown. */
  percent: number | null
  /** Position reached in the output, seconds. */
  outTimeSec: number
  /** Frames encoded per second, null for audio-only output or before ffmpeg knows. */
  fps: number | null
  /** Encoding speed as a multiple of real time (2 = twice as fast as playback), null before ffmpeg knows. */
  speed: number | null
  /** Seconds left, null when unknown. */
  etaSec: number | null
  /** Frames written so far, null for audio-only output. */
  frame: number | null
  /** ffmpeg said `progress=end`. */
  done: boolean
}

export interface ProgressTracker {
  /**
   * Feeds one line (without its line break; stray `\r` is fine). Returns a snapshot when the line completed an
   * update (the end of a `-progress` block, or a stderr stats line), otherwise null.
   */
  push(line: string): ProgressSnapshot | null
  /** Feeds a chunk of output that may hold several lines or a partial line. Returns the updates it completed. */
  write(chunk: string): ProgressSnapshot[]
  /** The latest snapshot. */
  current(): ProgressSnapshot
}

/** "00:01:02.50" → 62.5; null for "N/A" or garbage. Negative times ("-00:00:00.02") count as 0. */
export function parseTimestamp(text: string): number | null {
  const m = /^(-)?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(text.trim())
  if (!m) return null
  if (m[1] === '-') return 0
  return Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4])
}

function parseNumber(text: string | undefined): number | null {
  if (text === undefined) return null
  const t = text.trim().replace(/x$/, '')
  if (t === '' || t === 'N/A') return null
  const n = Number(t)
  return Number.isFinite(n) ? n : null
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x))

/** Creates a tracker for an input of `durationSec` seconds (null or 0 when unknown). */
export function createProgressTracker(durationSec: number | null): ProgressTracker {
  const duration = durationSec !== null && durationSec > 0 ? durationSec : null
  let snap: ProgressSnapshot = {
    percent: duration === null ? null : 0,
    outTimeSec: 0,
    fps: null,
    speed: null,
    etaSec: null,
    frame: null,
    done: false,
  }
  let block: Record<string, string> = {}
  let partial = ''

  function update(fields: Record<string, string>, done: boolean): ProgressSnapshot {
    // out_time_us is the precise one; out_time_ms is (despite its name) also microseconds in ffmpeg ≤ 6.
    let t: number | null = null
    const us = parseNumber(fields['out_time_us'])
    if (us !== null) t = us / 1e6
    else if (fields['out_time'] !== undefined) t = parseTimestamp(fields['out_time'])
    else if (fields['time'] !== undefined) t = parseTimestamp(fields['time'])
    const outTimeSec = t !== null ? Math.max(0, t) : snap.outTimeSec
    const frame = parseNumber(fields['frame'])
    const fps = parseNumber(fields['fps'])
    const speedRaw = parseNumber(fields['speed'])
    const speed = speedRaw !== null && speedRaw > 0 ? speedRaw : null
    let percent: number | null = null
    let etaSec: number | null = null
    if (duration !== null) {
      percent = done ? 100 : clamp((outTimeSec / duration) * 100, 0, 100)
      if (done) etaSec = 0
      else if (speed !== null) etaSec = Math.max(0, (duration - outTimeSec) / speed)
    } else if (done) {
      percent = 100
      etaSec = 0
    }
    snap = {
      percent,
      outTimeSec,
      // ffmpeg prints fps=0.00 until it has measured a rate: that is "unknown", not zero.
      fps: fps !== null && fps > 0 ? fps : null,
      speed,
      etaSec,
      frame: frame ?? null,
      done,
    }
    return snap
  }

  function push(rawLine: string): ProgressSnapshot | null {
    const line = rawLine.replace(/\r/g, '').trim()
    if (line === '') return null
    // A stderr stats line has several "key= value" pairs on one line, always with time=.
    if (/\btime=\s*-?[\dN]/.test(line) && /\s/.test(line.replace(/=\s+/g, '='))) {
      const fields: Record<string, string> = {}
      for (const m of line.replace(/=\s+/g, '=').matchAll(/([a-zA-Z_]+)=(\S+)/g)) {
        if (m[1] !== undefined && m[2] !== undefined) fields[m[1]] = m[2]
      }
      return update(fields, false)
    }
    const eq = line.indexOf('=')
    if (eq <= 0) return null
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    if (key === 'progress') {
      const s = update(block, value === 'end')
      block = {}
      return s
    }
    block[key] = value
    return null
  }

  return {
    push,
    write(chunk: string): ProgressSnapshot[] {
      const parts = (partial + chunk).split(/\r\n|\n|\r/)
      partial = parts.pop() ?? ''
      const out: ProgressSnapshot[] = []
      for (const p of parts) {
        const s = push(p)
        if (s) out.push(s)
      }
      return out
    },
    current: () => snap,
  }
}

export interface Throttle<T> {
  /** Offers an update: passed on when at least `intervalMs` have gone by since the last one, or when `final`. */
  push(value: T, final?: boolean): void
  /** Passes on the last held-back update, if any. */
  flush(): void
}

/**
 * Rate-limits updates to one per `intervalMs` (default 250 ms: at most ~4 a second), always passing on the final
 * one. `now` is injectable for tests.
 */
export function createThrottle<T>(
  emit: (value: T) => void,
  intervalMs = 250,
  now: () => number = Date.now,
): Throttle<T> {
  let last = -Infinity
  let pending: { value: T } | null = null
  return {
    push(value: T, final = false): void {
      const t = now()
      if (final || t - last >= intervalMs) {
        last = t
        pending = null
        emit(value)
      } else {
        pending = { value }
      }
    },
    flush(): void {
      if (pending) {
        const { value } = pending
        pending = null
        last = now()
        emit(value)
      }
    },
  }
}
