/** What every figure gets and gives back. */
import type Redis from 'ioredis'
import type { Spread } from './stats'

export interface BenchContext {
  quick: boolean
  /** The bench's own redis-server. */
  redisUrl: string
  redis: Redis
  /** Repetitions of each side-by-side pair. */
  reps: number
  log(msg: string): void
}

export interface FigureResult {
  id: number
  title: string
  /** The figure: a ratio measured side by side (null when not measured). */
  ratio: Spread | null
  /** How the ratio reads, e.g. "Bullpen time / direct ffmpeg time". */
  ratioMeaning: string
  target: string
  /** null: no target, or not measured. */
  pass: boolean | null
  /** Rows of supporting numbers: [label, value]. */
  details: [string, string][]
  notes: string[]
  /** The command that reproduces this figure. */
  command: string
  /** Raw samples for results.json. */
  raw: Record<string, unknown>
}

export function notMeasured(id: number, title: string, target: string, why: string): FigureResult {
  return {
    id,
    title,
    ratio: null,
    ratioMeaning: '',
    target,
    pass: null,
    details: [],
    notes: [`Not measured: ${why}`],
    command: `npm run bench -- --only ${id}`,
    raw: {},
  }
}

/** Flushes the bench Redis: every rep starts from an empty queue. */
export async function flush(ctx: BenchContext): Promise<void> {
  await ctx.redis.flushall()
}
