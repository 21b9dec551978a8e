/**
 * Figure 1 — encode overhead: a batch of real clips, one preset, `bullpen transcode --concurrency P` against the
 * very same ffmpeg command lines run directly P at a time. Ratio = Bullpen wall time / direct wall time.
 */
import { join } from 'node:path'
import { cli, cliEnv, tmpRoot } from '../lib/env'
import { compareCommands, encodeFor, runEncode, type Encode } from '../lib/commands'
import { flush, type BenchContext, type FigureResult } from '../lib/figure'
import { freshDir, realBatch } from '../lib/media'
import { runParallel } from '../lib/proc'
import { fmtRatio, fmtSeconds, ratios, spread } from '../lib/stats'

export const PRESET = '480p'
export const PARALLEL = 2

export async function encodeOverhead(ctx: BenchContext): Promise<FigureResult> {
  // The floor, quick or not: at least 8 real clips of at least 10 s.
  const n = ctx.quick ? 8 : 12
  const secs = ctx.quick ? 10 : 15
  // Quick: 2 reps (each side is ~14 s of encoding on two cores; the 5-minute budget).
  const reps = ctx.quick ? Math.min(ctx.reps, 2) : ctx.reps
  const files = await realBatch(join(tmpRoot, 'f1', 'in'), n, secs)
  const encodes: Encode[] = await Promise.all(files.map((f) => encodeFor(f, PRESET)))
  const dataDir = await freshDir('f1', 'data')
  const env = cliEnv(ctx.redisUrl, dataDir)
  const bull: number[] = []
  const direct: number[] = []
  const notes: string[] = []
  let mismatch = null as string | null

  const runBullpen = async (rep: number): Promise<void> => {
    await flush(ctx)
    const out = await freshDir('f1', `out-b${rep}`)
    // -v only adds the few log lines that carry each exact ffmpeg command line (checked below).
    const r = await cli(
      ['-v', 'transcode', '--preset', PRESET, '--concurrency', String(PARALLEL), '--out', out, ...files],
      env,
    )
    if (r.code !== 0) throw new Error(`bullpen transcode exited ${r.code}: ${r.stderr.slice(-600)}`)
    mismatch ??= compareCommands(r.stderr, encodes)
    bull.push(r.ms / 1000)
  }
  const runDirect = async (rep: number): Promise<void> => {
    const out = await freshDir('f1', `out-d${rep}`)
    const { ms } = await runParallel(
      encodes.map((e) => () => runEncode(e, out)),
      PARALLEL,
    )
    direct.push(ms / 1000)
  }

  for (let rep = 0; rep < reps; rep++) {
    // Alternate which side goes first, so drift in the machine's state hits both.
    if (rep % 2 === 0) {
      await runBullpen(rep)
      await runDirect(rep)
    } else {
      await runDirect(rep)
      await runBullpen(rep)
    }
    ctx.log(
      `  rep ${rep + 1}/${reps}: bullpen ${bull.at(-1)?.toFixed(2)} s, direct ${direct.at(-1)?.toFixed(2)} s`,
    )
  }
  if (mismatch) notes.push(`WARNING: ${mismatch}`)
  else
    notes.push(
      "Every ffmpeg command line Bullpen logged (`-v`) was identical to the direct side's (output path aside).",
    )
  notes.push(
    "Bullpen's time is the whole CLI run as a user sees it: node start-up, Redis, ffmpeg check, a probe per file " +
      'when queueing, a probe + verification ffprobe per output, and the rename into place.',
  )
  const r = spread(ratios(bull, direct))
  return {
    id: 1,
    title: 'Encode overhead',
    ratio: r,
    ratioMeaning: 'bullpen transcode wall time ÷ same ffmpeg commands run directly',
    target: '≤ 1.05×',
    pass: r.median <= 1.05,
    details: [
      [
        'batch',
        `${n} real clips × ${secs} s (${files.length} files cycling 360p / 720p / rotated 720p phone clip), preset ${PRESET}, ${PARALLEL} at a time`,
      ],
      ['bullpen transcode', fmtSeconds(spread(bull))],
      ['ffmpeg directly', fmtSeconds(spread(direct))],
      ['ratio', fmtRatio(r, 3)],
    ],
    notes,
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 1`,
    raw: { bullpenSec: bull, directSec: direct, files: n, secs, preset: PRESET, parallel: PARALLEL },
  }
}
