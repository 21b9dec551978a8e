/** Small statistics for side-by-side measurements: median and spread of repeated samples. */

/** Median of `xs` (NaN for an empty list). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Median, min and max of a list of samples. */
export interface Spread {
  median: number
  min: number
  max: number
  samples: number[]
}

export function spread(xs: readonly number[]): Spread {
  return {
    median: median(xs),
    min: xs.length ? Math.min(...xs) : Number.NaN,
    max: xs.length ? Math.max(...xs) : Number.NaN,
    samples: [...xs],
  }
}

/** `1.03× (0.98–1.07)` */
export function fmtRatio(s: Spread, digits = 2): string {
  if (!Number.isFinite(s.median)) return 'n/a'
  return `${s.median.toFixed(digits)}× (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
}

/** `12.3 s (12.1–12.9)` */
export function fmtSeconds(s: Spread, digits = 2): string {
  if (!Number.isFinite(s.median)) return 'n/a'
  return `${s.median.toFixed(digits)} s (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
}

/** `1234/s (1200–1300)` */
export function fmtRate(s: Spread, unit = '/s'): string {
  if (!Number.isFinite(s.median)) return 'n/a'
  return `${Math.round(s.median)}${unit} (${Math.round(s.min)}–${Math.round(s.max)})`
}

/** Pairwise ratios a[i]/b[i]. */
export function ratios(a: readonly number[], b: readonly number[]): number[] {
  // Pairs by rep; a side measured in fewer reps (e.g. a configuration quick runs time once) pairs only those.
  return a.slice(0, b.length).map((x, i) => x / (b[i] as number))
}
