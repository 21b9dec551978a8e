/**
 * Figure 6 — UI at scale: the real renderer in headless Chromium through `bullpen serve --no-work`, with a `bullpen worker --concurrency 8` running paced jobs so that 8 are active and progress
 * streams. Measured with few jobs queued and with 10,000 queued: time until the list shows (ratio = 10,000 ÷ few),
 * then, at 10,000, the longest main-thread task (PerformanceObserver longtask) and the events reaching the page while
 * progress streams, and the memory of the renderer and of the serve process. Last, a flood of progress for 500 jobs
 * shows whether what reaches the renderer stays under the app's coalescing ceiling ("bounded whatever the number of
 * active jobs": 8 active jobs alone stay far below it, so they cannot show it).
 */
import { readFileSync } from 'node:fs'
import { chmod, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { MAX_PROGRESS_PER_FLUSH, PROGRESS_FLUSH_MS } from '../../src/main/core/app'
import { TranscodeQueue } from '../../src/main/core/queue'
import { JOB_DATA_VERSION, presetSpec, type JobData } from '../../src/shared/spec'
import { cliEnv, cliPath, ff, nodeDir, qkey, tmpRoot } from '../lib/env'
import { flush, notMeasured, type BenchContext, type FigureResult } from '../lib/figure'
import { audioClip, freshDir, links } from '../lib/media'
import { background, now, rssOf, runParallel } from '../lib/proc'
import { fmtSeconds, median, ratios, spread } from '../lib/stats'

const CHROMIUM = process.env['BULLPEN_CHROMIUM'] ?? '/usr/bin/chromium'
const ACTIVE = 8
/** How long the page is watched while progress streams (quick runs: less). */
const WATCH_MS = 10_000
const WATCH_MS_QUICK = 6_000
/**
 * The flood: progress for this many jobs at once, each reported 4 times a second (as a worker reports an encode),
 * published on Bull's progress channel for FLOOD_MS: far more active jobs than one machine runs, to see that what
 * reaches the renderer stays under the coalescer's ceiling whatever their number.
 */
const FLOOD_JOBS = 500
const FLOOD_MS = 3_000
/** Progress events per second the app lets through at most: a flush every PROGRESS_FLUSH_MS of up to MAX_… jobs. */
const PROGRESS_CEILING = (1000 / PROGRESS_FLUSH_MS) * MAX_PROGRESS_PER_FLUSH

async function paceShim(rate: number): Promise<string> {
  const dir = await freshDir('f6', 'shim')
  const shim = join(dir, 'ffmpeg')
  await writeFile(
    shim,
    `#!/bin/bash
args=(); seen=0
for a in "$@"; do
  if [ $seen = 0 ] && [ "$a" = "-i" ]; then args+=(-readrate ${rate}); seen=1; fi
  args+=("$a")
done
exec ${ff.ffmpeg} "\${args[@]}"
`,
  )
  await chmod(shim, 0o755)
  return shim
}

interface PageRun {
  listMs: number
  longestTaskMs: number
  longTasks: number
  frames: number
  events: number
  bytes: number
  heapBytes: number
  /**
   * Chromium's renderer processes while the page is open: how many, and their proportional set size in all (PSS:
   * pages shared with the zygote counted once; RSS would count them in every process). Null when not readable.
   */
  renderers: { count: number; pss: number } | null
  /** During the flood (when there is one): progress events that reached the page, and the longest task. */
  flood: { progressEvents: number; seconds: number; longestTaskMs: number } | null
}

/** Proportional set size of a process (its share of shared pages), from /proc; null when not readable. */
function pssOf(pid: number): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return m ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

/**
 * Opens the UI in a fresh page; times the first job row; optionally watches for `watchMs`, then, with `flood`, counts
 * the progress events that reach the page while `flood()` runs.
 */
async function openUi(
  browser: Browser,
  url: string,
  watchMs: number,
  flood?: () => Promise<void>,
): Promise<PageRun> {
  const context = await browser.newContext()
  const page = await context.newPage()
  let frames = 0
  let events = 0
  let bytes = 0
  let counting = false
  let flooding = false
  let floodProgress = 0
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      if (!counting && !flooding) return
      const text = typeof f.payload === 'string' ? f.payload : f.payload.toString('utf8')
      if (flooding) {
        if (text.startsWith('{"event":"job:progress"')) floodProgress++
        return
      }
      frames++
      bytes += Buffer.byteLength(text)
      // Pushed events are {event, payload}; replies to the page's own calls are {id, result}.
      if (text.startsWith('{"event"')) events++
    })
  })
  // Runs in the page (DOM globals; this file is typed for Node, hence the casts).
  await page.addInitScript(() => {
    const w = globalThis as unknown as { __longtasks: [number, number][] }
    w.__longtasks = []
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longtasks.push([e.startTime, e.duration])
    }).observe({ type: 'longtask' as never, buffered: true })
  })
  try {
    const t0 = now()
    await page.goto(url)
    await page.locator('.job-row[data-job-id]').first().waitFor({ timeout: 30_000 })
    const listMs = now() - t0
    const shownAt = await page.evaluate(() => performance.now())
    counting = true
    if (watchMs > 0) await page.waitForTimeout(watchMs)
    counting = false
    const watchEnd = await page.evaluate(() => performance.now())
    let floodSec = 0
    if (flood) {
      const f0 = now()
      flooding = true
      await flood()
      // What the app still holds is flushed within one interval.
      await page.waitForTimeout(PROGRESS_FLUSH_MS)
      flooding = false
      floodSec = (now() - f0) / 1000
    }
    const all = await page.evaluate(
      () => (globalThis as unknown as { __longtasks: [number, number][] }).__longtasks,
    )
    // Only what happens while progress streams, after the list is up (the page load is timed above).
    const tasks = all.filter(([start]) => start >= shownAt && start < watchEnd).map(([, d]) => d)
    const floodTasks = all.filter(([start]) => start >= watchEnd).map(([, d]) => d)
    const cdp = await context.newCDPSession(page)
    await cdp.send('Performance.enable')
    const { metrics } = await cdp.send('Performance.getMetrics')
    const heap = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0
    // The renderer processes' pids, from the browser; their RSS from /proc (this page's context is the only one open).
    const bcdp = await browser.newBrowserCDPSession()
    const { processInfo } = (await bcdp.send('SystemInfo.getProcessInfo')) as {
      processInfo: { type: string; id: number }[]
    }
    await bcdp.detach()
    const pss = processInfo.filter((p) => p.type === 'renderer').map((p) => pssOf(p.id))
    const renderers =
      pss.length > 0 && pss.every((x) => x !== null)
        ? { count: pss.length, pss: pss.reduce((a: number, b) => a + (b ?? 0), 0) }
        : null
    return {
      listMs,
      longestTaskMs: tasks.length ? Math.max(...tasks) : 0,
      longTasks: tasks.length,
      frames,
      events,
      bytes,
      heapBytes: heap,
      renderers,
      flood: flood
        ? {
            progressEvents: floodProgress,
            seconds: floodSec,
            longestTaskMs: floodTasks.length ? Math.max(...floodTasks) : 0,
          }
        : null,
    }
  } finally {
    await context.close()
  }
}

export async function uiAtScale(ctx: BenchContext): Promise<FigureResult> {
  const total = 10_000
  const watchMs = ctx.quick ? WATCH_MS_QUICK : WATCH_MS
  const few = 10
  const reps = ctx.quick ? Math.min(ctx.reps, 2) : ctx.reps
  try {
    await stat(CHROMIUM)
  } catch {
    return notMeasured(
      6,
      'UI at scale',
      'list ≤ 1.5 s; no task > 50 ms; events bounded',
      `no Chromium at ${CHROMIUM}`,
    )
  }
  await flush(ctx)
  const [input] = await links(join(tmpRoot, 'f6', 'in'), [await audioClip(8)], 1)
  const st = await stat(input as string)
  const outDir = await freshDir('f6', 'out')
  // `bullpen serve --no-work` as a user runs it: the UI and the bridge, no encodes of its own.
  const serve = background(
    process.execPath,
    [cliPath, 'serve', '--no-work', '--port', '0', '--name', 'bench-ui'],
    {
      env: cliEnv(ctx.redisUrl, await nodeDir('f6-serve', { shared: true })),
    },
  )
  await serve.waitFor(/serving \S+ \(\S+\) at \S+/, 60_000)
  const m = /serving \S+ \((\S+)\) at (\S+)/.exec(serve.output()) as RegExpExecArray
  const serveId = m[1] as string
  const url = m[2] as string
  // Jobs are queued straight into the queue (Bullpen's own TranscodeQueue.add, validation and de-duplication
  // included) with the serve node as their origin: probing 10,000 files through `bullpen add` would take minutes.
  const queue = new TranscodeQueue({ redisUrl: ctx.redisUrl, nodeId: 'bench-queuer' })
  await queue.ready()
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  let added = 0
  const addJobs = async (n: number): Promise<void> => {
    const spec = presetSpec('m4a')
    const one = async (k: number): Promise<void> => {
      const data: JobData = {
        v: JOB_DATA_VERSION,
        input: { path: input as string, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) },
        outputDir: outDir,
        spec,
        priority: 'normal',
        origin: serveId,
        summary: { durationSec: 8, hasVideo: false, hasAudio: true, width: null, height: null },
        // One real file queued many times: each job its own de-duplication key (as if to different outputs).
        dedupeKey: k.toString(16).padStart(32, 'a'),
        createdAt: Date.now(),
        batch: 'bench6',
      }
      await queue.add(data)
    }
    const from = added
    added += n
    // Several adds in flight, as several desktops queueing at once would; each add stays atomic.
    await runParallel(
      Array.from({ length: n }, (_, i) => () => one(from + i)),
      16,
    )
  }
  const shim = await paceShim(1)
  const worker = background(
    process.execPath,
    [cliPath, 'worker', '--concurrency', String(ACTIVE), '--name', 'bench-ui-worker'],
    { env: cliEnv(ctx.redisUrl, await nodeDir('f6-worker', { shared: true }), { FFMPEG_PATH: shim }) },
  )
  const small: PageRun[] = []
  let serveRss = 0
  const large: PageRun[] = []
  try {
    await worker.waitFor(/ready/, 60_000)
    await addJobs(few + ACTIVE)
    // Let the worker take its 8.
    await new Promise((r) => setTimeout(r, 1500))
    await openUi(browser, url, 0) // warm-up: the first page of a fresh browser is slower
    for (let rep = 0; rep < reps; rep++) small.push(await openUi(browser, url, 0))
    const t = now()
    await addJobs(total - added)
    ctx.log(`  queued ${added} jobs in ${((now() - t) / 1000).toFixed(1)} s`)
    // Progress for FLOOD_JOBS of the queued jobs, as their workers would publish it (Bull's progress channel).
    const floodIds = Array.from({ length: FLOOD_JOBS }, (_, i) => String(added - i))
    const flood = async (): Promise<void> => {
      const end = now() + FLOOD_MS
      for (let tick = 0; now() < end; tick++) {
        const started = now()
        const pipe = ctx.redis.pipeline()
        for (const id of floodIds) {
          const progress = { stage: 'encode', percent: Math.min(99, tick), fps: 30, speed: 1, etaSec: 60 }
          pipe.publish(qkey('progress'), JSON.stringify({ jobId: id, progress }))
        }
        await pipe.exec()
        await new Promise((r) => setTimeout(r, Math.max(0, 250 - (now() - started))))
      }
    }
    for (let rep = 0; rep < reps; rep++)
      large.push(await openUi(browser, url, rep === 0 ? watchMs : 0, rep === 0 ? flood : undefined))
    ctx.log(
      `  list: ${small.map((s) => s.listMs.toFixed(0)).join('/')} ms with ${few} waiting, ` +
        `${large.map((s) => s.listMs.toFixed(0)).join('/')} ms with ${total}`,
    )
    serveRss = rssOf(serve.pid) ?? 0
  } finally {
    await browser.close()
    // Twice: the second SIGTERM hands the active jobs back at once instead of finishing them.
    worker.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    await worker.stop('SIGTERM', 10_000)
    await serve.stop('SIGTERM', 10_000)
    await queue.close()
    await flush(ctx)
  }
  const watched = large[0] as PageRun
  const r = spread(
    ratios(
      large.map((x) => x.listMs),
      small.map((x) => x.listMs),
    ),
  )
  const listLarge = spread(large.map((x) => x.listMs / 1000))
  const framesPerSec = watched.frames / (watchMs / 1000)
  const eventsPerSec = watched.events / (watchMs / 1000)
  const MB = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`
  const flooded = watched.flood ?? { progressEvents: NaN, seconds: NaN, longestTaskMs: NaN }
  // Events counted over the flood plus the one flush interval after it, over the time that took.
  const floodPerSec = flooded.progressEvents / flooded.seconds
  const floodPublished = FLOOD_JOBS * (1000 / 250)
  // A little over the ceiling is timer jitter; an app that forwarded every report would send ~8× the ceiling.
  const bounded = floodPerSec <= PROGRESS_CEILING * 1.1
  const pass = listLarge.median <= 1.5 && watched.longestTaskMs <= 50 && bounded
  return {
    id: 6,
    title: 'UI at scale',
    ratio: r,
    ratioMeaning: `time until the list shows with ${total.toLocaleString('en')} jobs queued ÷ with ${few}`,
    target: 'list ≤ 1.5 s; no task > 50 ms; events bounded',
    pass,
    details: [
      [
        'set-up',
        `${total.toLocaleString('en')} jobs queued, ${ACTIVE} active (paced M4A jobs on a \`bullpen worker --concurrency ${ACTIVE}\`), headless Chromium through the serve bridge`,
      ],
      [`list shows, ${few} queued`, fmtSeconds(spread(small.map((x) => x.listMs / 1000)))],
      [`list shows, ${total.toLocaleString('en')} queued`, fmtSeconds(listLarge)],
      [
        `longest main-thread task over ${watchMs / 1000} s of progress`,
        `${watched.longestTaskMs.toFixed(0)} ms (${watched.longTasks} tasks > 50 ms; the page load is not counted)`,
      ],
      [
        'events reaching the renderer',
        `${eventsPerSec.toFixed(1)} pushed events/s, ${framesPerSec.toFixed(1)} WebSocket frames/s in all (replies to the page's calls included), ${(watched.bytes / 1024 / (watchMs / 1000)).toFixed(1)} KiB/s, with ${ACTIVE} active jobs`,
      ],
      [
        `flood: progress of ${FLOOD_JOBS} jobs, 4 reports/s each, for ${FLOOD_MS / 1000} s`,
        `${floodPublished} reports/s published → ${floodPerSec.toFixed(0)} progress events/s reached the renderer ` +
          `(the app's ceiling: ${PROGRESS_CEILING}/s, a flush every ${PROGRESS_FLUSH_MS} ms of up to ` +
          `${MAX_PROGRESS_PER_FLUSH} jobs) — ${bounded ? 'bounded' : 'NOT bounded'}; longest task meanwhile ` +
          `${flooded.longestTaskMs.toFixed(0)} ms`,
      ],
      [
        'renderer',
        `JS heap ${MB(watched.heapBytes)}; ` +
          (watched.renderers === null
            ? 'renderer processes not readable'
            : `${watched.renderers.count} renderer processes (Chromium keeps spares), PSS ${MB(watched.renderers.pss)} in all`),
      ],
      [
        '`bullpen serve` process',
        `RSS ${MB(serveRss)} after the 10,000-job page loads and ${watchMs / 1000} s of progress`,
      ],
    ],
    notes: [
      'The 10,000 jobs are queued with TranscodeQueue.add (validation and de-duplication included) from the bench ' +
        'process, with the serve node as their origin, not with `bullpen add` (which would probe 10,000 files).',
      `Few-jobs and 10,000-jobs page loads are not interleaved (queueing 10,000 jobs takes seconds); each page load is a fresh browser context. Median list time at 10,000: ${(median(large.map((x) => x.listMs)) / 1000).toFixed(2)} s.`,
    ],
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 6`,
    raw: { total, few, active: ACTIVE, small, large, serveRssBytes: serveRss },
  }
}
