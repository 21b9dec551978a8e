/**
 * Figure 2 — default concurrency: a batch with mixed presets, encoded by plain ffmpeg 1, 2, 3 and 4 at a time, and
 * by one `bullpen worker` at its default concurrency (DEFAULT_CONCURRENCY, no --concurrency, fresh settings).
 * Ratio = Bullpen's time ÷ the best plain-ffmpeg time. When the best parallelism is not the default, Bullpen is also
 * run at that parallelism, to show what changing the default would give.
 */
import { join } from 'node:path'
import type { PresetName } from '../../src/shared/spec'
import { DEFAULT_CONCURRENCY } from '../../src/main/core/settings'
import { background, now, runParallel } from '../lib/proc'
import { cliEnv, cliOk, cliPath, jobTimes, nodeDir, qkey, tmpRoot, waitDrained } from '../lib/env'
import { compareCommands, encodeFor, runEncode, type Encode } from '../lib/commands'
import { flush, type BenchContext, type FigureResult } from '../lib/figure'
import { freshDir, realClip, REAL_SOURCES } from '../lib/media'
import { fmtRatio, fmtSeconds, median, spread } from '../lib/stats'
import { link, mkdir, rm } from 'node:fs/promises'

const LEVELS = [1, 2, 3, 4]

/** (source index in REAL_SOURCES, preset): every preset gets a source it can make (mp3 needs audio). */
const MIX: [number, PresetName][] = [
  [0, '720p'],
  [1, 'gif'],
  [0, 'webm'],
  [2, '480p'],
  [0, 'mp3'],
  [1, 'mkv'],
  [2, 'mp4'],
  [0, '480p'],
  [1, '720p'],
  [2, 'webm'],
  [0, 'mkv'],
  [0, 'gif'],
]

async function batch(n: number, secs: number): Promise<{ file: string; preset: PresetName }[]> {
  const dir = join(tmpRoot, 'f2', 'in')
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const out: { file: string; preset: PresetName }[] = []
  for (let i = 0; i < n; i++) {
    const [src, preset] = MIX[i % MIX.length] as [number, PresetName]
    const file = join(dir, `mix${i}-${preset}.mp4`)
    await link(await realClip(REAL_SOURCES[src] as string, secs), file)
    out.push({ file, preset })
  }
  return out
}

export async function defaultConcurrency(ctx: BenchContext): Promise<FigureResult> {
  const n = ctx.quick ? 8 : 12
  const secs = ctx.quick ? 2 : 8
  const reps = ctx.quick ? Math.min(ctx.reps, 2) : ctx.reps
  const mixed = await batch(n, secs)
  const byPreset = new Map<PresetName, string[]>()
  for (const j of mixed) byPreset.set(j.preset, [...(byPreset.get(j.preset) ?? []), j.file])
  // Bullpen queues one `bullpen add` per preset, so it takes the jobs in that order; plain ffmpeg runs them in the
  // very same order (with jobs of unequal length, the order alone changes a parallel makespan).
  const jobs = [...byPreset].flatMap(([preset, files]) => files.map((file) => ({ file, preset })))
  const encodes: Encode[] = await Promise.all(jobs.map((j) => encodeFor(j.file, j.preset)))

  const direct = new Map<number, number[]>(LEVELS.map((p) => [p, []]))
  const bull = new Map<number, number[]>()
  const wall: number[] = []
  const notes: string[] = []
  let mismatch = null as string | null

  const runDirect = async (p: number, rep: number): Promise<void> => {
    const out = await freshDir('f2', `out-d${p}-${rep}`)
    const { ms } = await runParallel(
      encodes.map((e) => () => runEncode(e, out)),
      p,
    )
    direct.get(p)?.push(ms / 1000)
  }
  /** Queues the batch (not timed), then times one `bullpen worker` from its first job to its last. */
  const runBullpen = async (concurrency: number | null, rep: number): Promise<void> => {
    await flush(ctx)
    // Queued from the worker's own data folder: the worker is the jobs' origin and reads them in place.
    const dataDir = await nodeDir(`f2-${concurrency ?? 'default'}`)
    const env = cliEnv(ctx.redisUrl, dataDir)
    const out = await freshDir('f2', `out-b${concurrency ?? 'default'}-${rep}`)
    const ids: string[] = []
    for (const [preset, files] of byPreset) {
      const r = await cliOk(['add', '--preset', preset, '--out', out, ...files], env)
      for (const m of r.stdout.matchAll(/^queued (\S+) /gm)) ids.push(m[1] as string)
    }
    if (ids.length !== n) throw new Error(`queued ${ids.length} of ${n} jobs`)
    const t0 = now()
    const w = background(
      process.execPath,
      [cliPath, '-v', 'worker', ...(concurrency ? ['--concurrency', String(concurrency)] : [])],
      { env },
    )
    try {
      const t1 = await waitDrained(ctx.redis, 600_000)
      wall.push((t1 - t0) / 1000)
    } finally {
      await w.stop('SIGTERM')
    }
    const t = await jobTimes(ctx.redis, ids)
    const failed = await ctx.redis.zcard(qkey('failed'))
    if (failed > 0) throw new Error(`${failed} jobs failed in the bullpen worker:\n${w.output().slice(-600)}`)
    mismatch ??= compareCommands(w.output(), encodes)
    const key = concurrency ?? 0
    bull.set(key, [...(bull.get(key) ?? []), (t.last - t.first) / 1000])
  }

  let best = 0
  for (let rep = 0; rep < reps; rep++) {
    const configs: (() => Promise<void>)[] = [
      ...LEVELS.map((p) => () => runDirect(p, rep)),
      () => runBullpen(null, rep),
    ]
    // Full runs also show Bullpen at the best level (what changing the default would give); quick runs skip it.
    if (!ctx.quick && rep > 0 && best !== DEFAULT_CONCURRENCY) configs.push(() => runBullpen(best, rep))
    // Rotate the order every rep, so no configuration always runs first (cold) or last.
    const shift = rep % configs.length
    for (const c of [...configs.slice(shift), ...configs.slice(0, shift)]) await c()
    best = LEVELS.reduce((a, b) => (median(direct.get(b) ?? []) < median(direct.get(a) ?? []) ? b : a))
    ctx.log(
      `  rep ${rep + 1}/${reps}: ffmpeg ${LEVELS.map((p) => `${p}:${direct.get(p)?.at(-1)?.toFixed(2)}`).join(' ')} s; ` +
        `bullpen default(${DEFAULT_CONCURRENCY}) ${bull.get(0)?.at(-1)?.toFixed(2)} s` +
        (bull.has(best) ? `, bullpen ${best} ${bull.get(best)?.at(-1)?.toFixed(2)} s` : ''),
    )
  }
  await flush(ctx)
  // Per-rep ratio against the best level's time of the same rep.
  const bestTimes = direct.get(best) ?? []
  const r = spread((bull.get(0) ?? []).map((b, i) => b / (bestTimes[i] as number)))
  const details: [string, string][] = [
    ['batch', `${n} real clips × ${secs} s, presets ${jobs.map((j) => j.preset).join(', ')}`],
    ...LEVELS.map((p): [string, string] => [
      `plain ffmpeg, ${p} at a time`,
      fmtSeconds(spread(direct.get(p) ?? [])),
    ]),
    [`bullpen worker, default concurrency ${DEFAULT_CONCURRENCY}`, fmtSeconds(spread(bull.get(0) ?? []))],
  ]
  const atBest = bull.get(best)
  if (best !== DEFAULT_CONCURRENCY && atBest && atBest.length > 0) {
    const n2 = atBest.length
    const rb = spread(atBest.map((b, i) => b / (bestTimes[bestTimes.length - n2 + i] as number)))
    details.push([`bullpen worker --concurrency ${best}`, fmtSeconds(spread(atBest))])
    details.push([`ratio at --concurrency ${best}`, fmtRatio(rb)])
  }
  details.push(['best plain parallelism', String(best)], ['ratio', fmtRatio(r)])
  notes.push(
    `Best plain-ffmpeg parallelism for this mix on this machine: ${best} (DEFAULT_CONCURRENCY is ${DEFAULT_CONCURRENCY}).`,
    "Bullpen's time is the worker's makespan from the first job taken to the last one finished (Bull's processedOn / " +
      "finishedOn), so it holds every per-job cost (probe, ffmpeg, verification, Redis) but not the worker's start-up, " +
      'which figure 1 covers. Wall time including start-up: ' +
      fmtSeconds(spread(wall)) +
      '.',
  )
  if (mismatch) notes.push(`WARNING: ${mismatch}`)
  else notes.push("Every ffmpeg command line the worker logged was identical to the direct side's.")
  return {
    id: 2,
    title: 'Default concurrency',
    ratio: r,
    ratioMeaning: `bullpen worker at its default (${DEFAULT_CONCURRENCY}) ÷ best of plain ffmpeg at 1–4 parallel`,
    target: '≤ 1.05×',
    pass: r.median <= 1.05,
    details,
    notes,
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 2`,
    raw: {
      files: n,
      secs,
      presets: jobs.map((j) => j.preset),
      directSec: Object.fromEntries(direct),
      bullpenSec: Object.fromEntries([...bull].map(([k, v]) => [k === 0 ? 'default' : String(k), v])),
      bullpenWallSec: wall,
      best,
      defaultConcurrency: DEFAULT_CONCURRENCY,
    },
  }
}
