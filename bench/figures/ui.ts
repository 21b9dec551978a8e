/**
 * Figure 6 — UI at scale: the real renderer in headless Chromium through `bullpen serve --no-work`, with a `bullpen worker --concurrency 8` running paced jobs so that 8 are active and progress
 * streams. Measured with few jobs queued and with 10,000 queued: time until the list shows (ratio = 10,000 ÷ few),
 * then, at 10,000, the longest main-thread task (PerformanceObserver longtask) and the events reaching the page while
 * progress streams, and the memory of the renderer and of the serve process.
 */
import { chmod, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { TranscodeQueue } from '../../src/main/core/queue'
import { JOB_DATA_VERSION, presetSpec, type JobData } from '../../src/shared/spec'
import { cliEnv, cliPath, ff, nodeDir, tmpRoot } from '../lib/env'
import { flush, notMeasured, type BenchContext, type FigureResult } from '../lib/figure'
import { audioClip, freshDir, links } from '../lib/media'
import { background, now, rssOf, runParallel } from '../lib/proc'
import { fmtSeconds, median, ratios, spread } from '../lib/stats'

const CHROMIUM = process.env['BULLPEN_CHROMIUM'] ?? '/usr/bin/chromium'
const ACTIVE = 8
/** How long the page is watched while progress streams (quick runs: less). */
const WATCH_MS = 10_000
const WATCH_MS_QUICK = 6_000

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
}

/** Opens the UI in a fresh page; times the first job row; optionally watches for `watchMs`. */
async function openUi(browser: Browser, url: string, watchMs: number): Promise<PageRun> {
  const context = await browser.newContext()
  const page = await context.newPage()
  let frames = 0
  let events = 0
  let bytes = 0
  let counting = false
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      if (!counting) return
      frames++
      const text = typeof f.payload === 'string' ? f.payload : f.payload.toString('utf8')
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
    const all = await page.evaluate(
      () => (globalThis as unknown as { __longtasks: [number, number][] }).__longtasks,
    )
    // Only what happens while progress streams, after the list is up (the page load is timed above).
    const tasks = all.filter(([start]) => start >= shownAt).map(([, d]) => d)
    const cdp = await context.newCDPSession(page)
    await cdp.send('Performance.enable')
    const { metrics } = await cdp.send('Performance.getMetrics')
    const heap = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0
    return {
      listMs,
      longestTaskMs: tasks.length ? Math.max(...tasks) : 0,
      longTasks: tasks.length,
      frames,
      events,
      bytes,
      heapBytes: heap,
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
    for (let rep = 0; rep < reps; rep++) large.push(await openUi(browser, url, rep === 0 ? watchMs : 0))
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
  const pass = listLarge.median <= 1.5 && watched.longestTaskMs <= 50
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
      ['renderer JS heap', MB(watched.heapBytes)],
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
