/**
 * Figure 7 — soak: N short jobs through one `bullpen worker`. Its resident memory at the end against after the first
 * 200 jobs, and what stays behind in Redis (retention: 100 completed, 200 failed).
 */
import { readFile, readdir, realpath, rm } from 'node:fs/promises'
import { dedupeKey, prepareFile } from '../../src/main/core/enqueue'
import { TranscodeQueue } from '../../src/main/core/queue'
import { nodeIdFor } from '../../src/main/core/settings'
import { presetSpec } from '../../src/shared/spec'
import { join } from 'node:path'
import { cliEnv, cliPath, nodeDir, pendingJobs, qkey, tmpRoot } from '../lib/env'
import { flush, type BenchContext, type FigureResult } from '../lib/figure'
import { freshDir, links, tinyClip } from '../lib/media'
import { background, now, rssOf } from '../lib/proc'
import { median, spread } from '../lib/stats'

/** M4A of a clip with AAC: the audio is stream-copied, so each job is mostly Bullpen's own per-job work. */
const SOAK_PRESET = 'm4a'

interface Sample {
  t: number
  done: number
  rss: number
  redisMem: number
}

async function redisKeys(ctx: BenchContext): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  let cursor = '0'
  do {
    const [next, keys] = await ctx.redis.scan(cursor, 'COUNT', 1000)
    cursor = next
    for (const k of keys) {
      const rest = k.startsWith(qkey('')) ? k.slice(qkey('').length) : null
      const kind =
        rest === null
          ? 'other keys'
          : /^\d+$/.test(rest)
            ? 'job hashes'
            : /^\d+:logs$/.test(rest)
              ? 'job logs'
              : /^bp:[a-z]+:/i.test(rest)
                ? `${/^bp:[a-z]+:/i.exec(rest)?.[0] ?? ''}* keys`
                : `${rest}`
      counts[kind] = (counts[kind] ?? 0) + 1
    }
  } while (cursor !== '0')
  return counts
}

interface GcReading {
  done: number
  /** Worker RSS right after the full collection a heap snapshot makes. */
  rss: number
  /** Live JavaScript heap: the sum of the snapshot's object sizes. */
  heap: number
}

/**
 * Asks the worker for a heap snapshot (a full GC first, then the file) and reads its RSS and live heap. A worker's
 * raw RSS rises and falls with V8's old-space collections, which come every few hundred short jobs: two raw readings
 * can sit at opposite points of that cycle. After a full GC both readings are taken in the same state.
 */
async function postGc(pid: number, dir: string, done: number): Promise<GcReading> {
  const before = new Set(await readdir(dir))
  process.kill(pid, 'SIGUSR2')
  const deadline = now() + 60_000
  for (;;) {
    if (now() > deadline) throw new Error('the worker wrote no heap snapshot in 60 s')
    await new Promise((r) => setTimeout(r, 200))
    const file = (await readdir(dir)).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'))
    if (!file) continue
    let snap: { snapshot: { meta: { node_fields: string[] } }; nodes: number[] }
    try {
      snap = JSON.parse(await readFile(join(dir, file), 'utf8')) as typeof snap
    } catch {
      continue // still being written
    }
    const fields = snap.snapshot.meta.node_fields
    const at = fields.indexOf('self_size')
    let heap = 0
    for (let i = at; i < snap.nodes.length; i += fields.length) heap += snap.nodes[i] as number
    const rss = rssOf(pid)
    if (rss === null) throw new Error('the worker died')
    await rm(join(dir, file), { force: true })
    return { done, rss, heap }
  }
}

async function usedMemory(ctx: BenchContext): Promise<number> {
  const info = await ctx.redis.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0)
}

export async function soak(ctx: BenchContext): Promise<FigureResult> {
  const n = Number(process.env['BENCH_SOAK_JOBS'] ?? 0) || (ctx.quick ? 300 : 2000)
  const early = 200
  const concurrency = 4
  await flush(ctx)
  const files = await links(join(tmpRoot, 'f7', 'in'), [await tinyClip()], n)
  const out = await freshDir('f7', 'out')
  const dataDir = await nodeDir('f7')
  const env = cliEnv(ctx.redisUrl, dataDir)
  // Queued in two parts: the first `early` jobs, then, once the worker has done them and is idle again (the early
  // reading), the rest; the end reading is taken idle too, so both readings are of the same state. Queued as
  // `bullpen add` would queue them from the worker's own data folder (the worker is their origin; each job carries
  // its probe), but with one ffprobe for the one clip all the files link to instead of one per file (that alone took
  // ~8 s of the quick run).
  const queue = new TranscodeQueue({ redisUrl: ctx.redisUrl, nodeId: nodeIdFor(dataDir) })
  await queue.ready()
  const spec = presetSpec(SOAK_PRESET)
  const first = await prepareFile(files[0] as string, spec, 'normal', {
    origin: queue.nodeId,
    outputDir: out,
  })
  if (!first.data) throw new Error(`cannot queue the soak clip: ${first.error}`)
  const template = first.data
  const queueFiles = async (list: string[]): Promise<void> => {
    for (const file of list) {
      const input = { ...template.input, path: await realpath(file) }
      await queue.add({ ...template, input, dedupeKey: dedupeKey(input, spec, template.outputDir) })
    }
  }
  await queueFiles(files.slice(0, early))
  const redisQueued = await usedMemory(ctx)
  const t0 = now()
  // --heapsnapshot-signal: on SIGUSR2 the worker writes a heap snapshot into its cwd, after a full garbage
  // collection; that gives the two readings the verdict compares (see postGc). Bullpen's code is unchanged.
  const snapDir = await freshDir('f7', 'heap')
  const w = background(
    process.execPath,
    ['--heapsnapshot-signal=SIGUSR2', cliPath, 'worker', '--concurrency', String(concurrency)],
    { env, cwd: snapDir },
  )
  const samples: Sample[] = []
  const gc: GcReading[] = []
  try {
    await w.waitFor(/ready/, 60_000)
    let queued = early
    for (;;) {
      const pending = await pendingJobs(ctx.redis)
      const rss = rssOf(w.pid)
      if (rss === null) throw new Error(`the worker died:\n${w.output().slice(-800)}`)
      const done = queued - pending
      samples.push({ t: (now() - t0) / 1000, done, rss, redisMem: await usedMemory(ctx) })
      if (pending === 0) {
        // Idle: every job queued so far is done.
        gc.push(await postGc(w.pid, snapDir, done))
        if (queued === n) break
        await queueFiles(files.slice(queued))
        queued = n
      }
      if (now() - t0 > 1_800_000) throw new Error('soak did not finish in 30 min')
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    await w.stop('SIGTERM')
    await queue.close()
  }
  const seconds = (now() - t0) / 1000
  const failed = await ctx.redis.zcard(qkey('failed'))
  const completed = await ctx.redis.zcard(qkey('completed'))
  const keys = await redisKeys(ctx)
  await flush(ctx)

  // RSS moves with every GC: compare medians of a window of samples, not single readings.
  const win = (lo: number, hi: number): Sample[] => samples.filter((s) => s.done >= lo && s.done <= hi)
  const earlyWin = win(early, early + Math.max(50, n * 0.05))
  const endWin = win(n - Math.max(50, n * 0.05), n)
  const rssEarly = median(earlyWin.map((s) => s.rss))
  const rssEnd = median(endWin.map((s) => s.rss))
  const memEarly = median(earlyWin.map((s) => s.redisMem))
  const memEnd = median(endWin.map((s) => s.redisMem))
  const [gcEarly, gcEnd] = gc as [GcReading, GcReading]
  const growth = spread([gcEnd.rss / gcEarly.rss])
  const MB = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`
  // Only the jobs retention keeps may leave a hash behind (the quick run's 300 jobs would leave 300 without it).
  const retentionOk = completed <= 100 && failed <= 200 && (keys['job hashes'] ?? 0) <= completed + failed
  const notes = [
    `Redis retention: ${completed} completed and ${failed} failed jobs kept (limits 100 / 200); ` +
      `${keys['job hashes'] ?? 0} job hashes left — ${retentionOk ? 'bounded as configured' : 'NOT bounded as configured'}.`,
    `Keys left in Redis after ${n} jobs: ${Object.entries(keys)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
  ]
  if ((keys['bp:dedupe:* keys'] ?? 0) > 300) {
    notes.push(
      'WARNING: de-duplication keys (`bp:dedupe:<hash>`) outnumber the jobs Redis keeps: they should be released ' +
        'when their job completes or fails for good (worker batch in src/main/core/queue.ts).',
    )
  }
  return {
    id: 7,
    title: `Soak: ${n} short jobs, one node`,
    ratio: growth,
    ratioMeaning: `worker RSS at the end ÷ after the first ${early} jobs (each read idle, right after a full GC)`,
    target: '< 1.10× (and Redis bounded)',
    pass: growth.median < 1.1 && retentionOk,
    details: [
      [
        'jobs',
        `${n} × 0.5 s 160x120 H.264+AAC clip → preset ${SOAK_PRESET} (AAC stream copy), one \`bullpen worker --concurrency ${concurrency}\``,
      ],
      ['run', `${seconds.toFixed(1)} s (${(n / seconds).toFixed(1)} jobs/s), ${failed} failed`],
      [
        `worker RSS after ${gcEarly.done} jobs / at the end, after a full GC`,
        `${MB(gcEarly.rss)} / ${MB(gcEnd.rss)}`,
      ],
      [`live JS heap after ${gcEarly.done} jobs / at the end`, `${MB(gcEarly.heap)} / ${MB(gcEnd.heap)}`],
      ['growth (RSS after GC)', `${((gcEnd.rss / gcEarly.rss - 1) * 100).toFixed(1)} %`],
      [
        `raw worker RSS, median of the samples after ${early} jobs / at the end`,
        `${MB(rssEarly)} / ${MB(rssEnd)} (${((rssEnd / rssEarly - 1) * 100).toFixed(1)} %; moves with V8's collections)`,
      ],
      [
        `Redis used_memory: first ${early} queued / after ${early} / end`,
        `${MB(redisQueued)} / ${MB(memEarly)} / ${MB(memEnd)}`,
      ],
    ],
    notes,
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 7`,
    // Every k-th sample only: results.json stays readable.
    raw: {
      jobs: n,
      postGc: gc,
      concurrency,
      seconds,
      failed,
      completed,
      keys,
      samples: samples.filter((_, i) => i % Math.ceil(samples.length / 60) === 0),
    },
  }
}
