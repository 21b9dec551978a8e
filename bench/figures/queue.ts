/**
 * Figure 3 — the queue layer.
 * 3a: N jobs through Bullpen's TranscodeQueue (a processor that does no encoding, `queue.process(C, handler)`
 *     in-process) against raw Bull 4 with the same job options, worker settings, concurrency and processor.
 * 3b: queueing M real files with `bullpen add` (probes included) against ffprobe run directly on the same files
 *     with the same parallelism (PROBE_CONCURRENCY).
 */
import { join } from 'node:path'
import Bull from 'bull'
import { PROBE_CONCURRENCY } from '../../src/main/core/enqueue'
import { DEFAULT_WORKER_SETTINGS, TranscodeQueue } from '../../src/main/core/queue'
import { JOB_DATA_VERSION, PRIORITY_VALUES, type JobData } from '../../src/shared/spec'
import { cli, cliEnv, ff, tmpRoot } from '../lib/env'
import { flush, type BenchContext, type FigureResult } from '../lib/figure'
import { freshDir, links, smallSamples } from '../lib/media'
import { now, run, runParallel } from '../lib/proc'
import { fmtRate, fmtRatio, fmtSeconds, ratios, spread } from '../lib/stats'

/** Worker concurrency of both sides of 3a. */
export const QUEUE_CONCURRENCY = 4

function payload(i: number, batch: string): JobData {
  return {
    v: JOB_DATA_VERSION,
    input: { path: `/bench/in/clip${i}.mp4`, size: 1_000_000 + i, mtimeMs: 1_700_000_000_000 },
    outputDir: '/bench/out',
    spec: { format: 'mp4', resize: { height: 480 }, subtitles: 'keep', preset: '480p' },
    priority: 'normal',
    origin: 'bench-node',
    summary: { durationSec: 10, hasVideo: true, hasAudio: true, width: 640, height: 360 },
    dedupeKey: (i.toString(16) + batch).padStart(32, '0').slice(-32),
    createdAt: Date.now(),
    batch,
  }
}

interface Phase {
  addSec: number
  processSec: number
}

/** Waits until `count()` reaches n (resolved by an event counter). */
function counter(): { hit(): void; until(n: number): Promise<void> } {
  let c = 0
  let target = Infinity
  let done: (() => void) | undefined
  return {
    hit() {
      c++
      if (c >= target) done?.()
    },
    until(n) {
      target = n
      return c >= n ? Promise.resolve() : new Promise<void>((r) => (done = r))
    },
  }
}

async function bullpenSide(ctx: BenchContext, n: number, rep: number): Promise<Phase> {
  const q = new TranscodeQueue({
    redisUrl: ctx.redisUrl,
    name: `q3-${rep}`,
    prefix: 'bpbench',
    nodeId: 'bench-node',
  })
  try {
    await q.ready()
    const batch = `b${rep}`
    const t0 = now()
    for (let i = 0; i < n; i++) await q.add(payload(i, batch))
    const t1 = now()
    const done = counter()
    q.bull.on('completed', () => done.hit())
    const t2 = now()
    await q.process(QUEUE_CONCURRENCY, async () => Promise.resolve({}))
    await done.until(n)
    const t3 = now()
    return { addSec: (t1 - t0) / 1000, processSec: (t3 - t2) / 1000 }
  } finally {
    await q.close()
  }
}

async function rawSide(ctx: BenchContext, n: number, rep: number): Promise<Phase> {
  const q = new Bull<JobData>(`r3-${rep}`, ctx.redisUrl, {
    prefix: 'rawbench',
    settings: { ...DEFAULT_WORKER_SETTINGS },
  })
  try {
    await q.isReady()
    const batch = `b${rep}`
    const opts: Bull.JobOptions = {
      priority: PRIORITY_VALUES.normal,
      attempts: 3,
      backoff: { type: 'exponential', delay: 5000 },
      removeOnComplete: 100,
      removeOnFail: 200,
    }
    const t0 = now()
    for (let i = 0; i < n; i++) await q.add(payload(i, batch), opts)
    const t1 = now()
    const done = counter()
    q.on('completed', () => done.hit())
    const t2 = now()
    void q.process(QUEUE_CONCURRENCY, async () => Promise.resolve({}))
    await done.until(n)
    const t3 = now()
    return { addSec: (t1 - t0) / 1000, processSec: (t3 - t2) / 1000 }
  } finally {
    await q.close()
  }
}

export async function queueLayer(ctx: BenchContext): Promise<FigureResult> {
  // The size in quick runs too: with 2,000 jobs a side's processing is over in ~0.2 s and the ratio is noise.
  const n = 10_000
  const bp: Phase[] = []
  const raw: Phase[] = []
  // Warm-up, not counted: the first pass of each side pays for JIT compilation and Redis's script cache.
  await flush(ctx)
  await bullpenSide(ctx, 1000, 99)
  await rawSide(ctx, 1000, 99)
  for (let rep = 0; rep < ctx.reps; rep++) {
    await flush(ctx)
    if (rep % 2 === 0) {
      bp.push(await bullpenSide(ctx, n, rep))
      await flush(ctx)
      raw.push(await rawSide(ctx, n, rep))
    } else {
      raw.push(await rawSide(ctx, n, rep))
      await flush(ctx)
      bp.push(await bullpenSide(ctx, n, rep))
    }
    const b = bp.at(-1) as Phase
    const r = raw.at(-1) as Phase
    ctx.log(
      `  rep ${rep + 1}/${ctx.reps}: bullpen add ${(n / b.addSec).toFixed(0)}/s process ${(n / b.processSec).toFixed(0)}/s; ` +
        `raw add ${(n / r.addSec).toFixed(0)}/s process ${(n / r.processSec).toFixed(0)}/s`,
    )
  }
  await flush(ctx)
  const rate = (xs: Phase[], f: (p: Phase) => number): number[] => xs.map((p) => n / f(p))
  const total = (p: Phase): number => p.addSec + p.processSec
  const e2e = spread(ratios(rate(bp, total), rate(raw, total)))
  const addR = spread(
    ratios(
      rate(bp, (p) => p.addSec),
      rate(raw, (p) => p.addSec),
    ),
  )
  const procR = spread(
    ratios(
      rate(bp, (p) => p.processSec),
      rate(raw, (p) => p.processSec),
    ),
  )
  return {
    id: 3,
    title: `Queue layer: ${n.toLocaleString('en')} jobs`,
    ratio: e2e,
    ratioMeaning: 'Bullpen jobs/s ÷ raw Bull jobs/s (add then process, no encoding)',
    target: '≥ 0.8×',
    pass: e2e.median >= 0.8,
    details: [
      [
        'jobs',
        `${n} added one after another, then processed with concurrency ${QUEUE_CONCURRENCY} by an empty processor, in-process`,
      ],
      ['Bullpen add', fmtRate(spread(rate(bp, (p) => p.addSec)), ' jobs/s')],
      ['raw Bull add', fmtRate(spread(rate(raw, (p) => p.addSec)), ' jobs/s')],
      ['add ratio', fmtRatio(addR)],
      ['Bullpen process', fmtRate(spread(rate(bp, (p) => p.processSec)), ' jobs/s')],
      ['raw Bull process', fmtRate(spread(rate(raw, (p) => p.processSec)), ' jobs/s')],
      ['process ratio', fmtRatio(procR)],
      ['end to end ratio', fmtRatio(e2e)],
    ],
    notes: [
      'Same payload, same job options (priority normal, 3 attempts, exponential backoff, keep 100 completed / 200 failed), ' +
        'same worker settings (DEFAULT_WORKER_SETTINGS), same concurrency and an empty processor on both sides.',
      "Bullpen's add also validates the payload (zod) and claims a de-duplication key in the same script as Bull's own " +
        'add (one round trip); its worker also validates each payload, marks the job active with its node and checks ' +
        'for a cancel request (one batched Lua call per event-loop turn, with a pub/sub message per job), and releases ' +
        'the de-duplication key when the job ends.',
    ],
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 3`,
    raw: { jobs: n, concurrency: QUEUE_CONCURRENCY, bullpen: bp, rawBull: raw },
  }
}

export async function probeQueueing(ctx: BenchContext): Promise<FigureResult> {
  const n = ctx.quick ? 120 : 1000
  const files = await links(join(tmpRoot, 'f3b', 'in'), await smallSamples(), n)
  const dataDir = await freshDir('f3b', 'data')
  const env = cliEnv(ctx.redisUrl, dataDir)
  const bp: number[] = []
  const direct: number[] = []
  const runBullpen = async (rep: number): Promise<void> => {
    await flush(ctx)
    const out = await freshDir('f3b', `out${rep}`)
    const r = await cli(['add', '--preset', 'mp4', '--out', out, ...files], env)
    if (r.code !== 0) throw new Error(`bullpen add exited ${r.code}: ${r.stderr.slice(-600)}`)
    const queued = r.stdout.split('\n').filter((l) => l.startsWith('queued ')).length
    if (queued !== n) throw new Error(`bullpen add queued ${queued} of ${n}`)
    bp.push(r.ms / 1000)
  }
  const runDirect = async (): Promise<void> => {
    // The very probe Bullpen runs (src/main/core/ffmpeg/probe.ts): JSON of format and streams.
    const { ms } = await runParallel(
      files.map((f) => async () => {
        const r = await run(ff.ffprobe, [
          '-v',
          'error',
          '-hide_banner',
          '-show_format',
          '-show_streams',
          '-of',
          'json',
          `file:${f}`,
        ])
        if (r.code !== 0) throw new Error(`ffprobe failed on ${f}`)
        JSON.parse(r.stdout)
      }),
      PROBE_CONCURRENCY,
    )
    direct.push(ms / 1000)
  }
  // Quick: 2 reps (each side probes 120 files; the 5-minute budget).
  const reps = ctx.quick ? Math.min(ctx.reps, 2) : ctx.reps
  for (let rep = 0; rep < reps; rep++) {
    if (rep % 2 === 0) {
      await runBullpen(rep)
      await runDirect()
    } else {
      await runDirect()
      await runBullpen(rep)
    }
    ctx.log(
      `  rep ${rep + 1}/${reps}: bullpen add ${bp.at(-1)?.toFixed(2)} s, ffprobe ${direct.at(-1)?.toFixed(2)} s`,
    )
  }
  await flush(ctx)
  const r = spread(ratios(bp, direct))
  return {
    id: 3,
    title: `Queueing ${n} real files`,
    ratio: r,
    ratioMeaning: '`bullpen add` wall time ÷ the same ffprobes run directly',
    target: '≤ 1.2×',
    pass: r.median <= 1.2,
    details: [
      [
        'files',
        `${n} hard links of 4 small real samples (webm, mp4, mkv with subtitles), preset mp4, ${PROBE_CONCURRENCY} probes at a time`,
      ],
      ['bullpen add', fmtSeconds(spread(bp))],
      ['ffprobe directly', fmtSeconds(spread(direct))],
      ['ratio', fmtRatio(r)],
    ],
    notes: [
      "Bullpen's time is the whole CLI run: node start-up, Redis connection, ffmpeg check, probes, validation, de-duplication and the adds.",
    ],
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 3`,
    raw: { files: n, parallel: PROBE_CONCURRENCY, bullpenSec: bp, directSec: direct },
  }
}
