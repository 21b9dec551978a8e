/**
 * README screenshots: starts `serve` over a real queue (a private redis-server, real ffmpeg, real sample files) and
 * takes docs/screenshot-{light,dark}-{empty,busy,failed}.png at 1280×800 in headless Chromium.
 *
 *   npx tsx scripts/screenshots.ts [outDir]
 */
import { rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { startRedisServer } from '../tests/helpers/redis'
import { buildRenderer, launchChromium, makeClip, repoRoot, startStack, type Stack } from '../tests/e2e/stack'

const SCHEMES = ['light', 'dark'] as const
type Scheme = (typeof SCHEMES)[number]

async function openPages(browser: Browser, url: string): Promise<Record<Scheme, Page>> {
  const pages = {} as Record<Scheme, Page>
  for (const colorScheme of SCHEMES) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme })
    const page = await ctx.newPage()
    page.setDefaultTimeout(60_000)
    await page.goto(url)
    await page.getByRole('heading', { name: 'Bullpen' }).waitFor()
    pages[colorScheme] = page
  }
  return pages
}

async function shoot(pages: Record<Scheme, Page>, outDir: string, name: string, tab: RegExp): Promise<void> {
  for (const scheme of SCHEMES) {
    const page = pages[scheme]
    await page.getByRole('tab', { name: tab }).click()
    // Let the list and any progress settle for a moment.
    await page.waitForTimeout(600)
    const file = join(outDir, `screenshot-${scheme}-${name}.png`)
    await page.screenshot({ path: file })
    console.log(`wrote ${file}`)
  }
}

async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function main(): Promise<void> {
  const outDir = resolve(process.argv[2] ?? join(repoRoot, 'docs'))
  const redis = await startRedisServer()
  let stack: Stack | undefined
  let browser: Browser | undefined
  try {
    const rendererDir = await buildRenderer()
    stack = await startStack({ redisUrl: redis.url, rendererDir, concurrency: 2 })
    const api = stack.api
    // The settings say what the header shows; the node above runs two at once.
    await api.updateSettings({ concurrency: 2 })
    browser = await launchChromium()
    const pages = await openPages(browser, stack.server.url)

    await shoot(pages, outDir, 'empty', /^Waiting/)

    // A few short files done first, so the counts look like a day's work.
    const src = join(stack.work, 'sources')
    const quick = [
      await stack.sample("te[s]t_ video ' _ .flv", 'Old camcorder.flv'),
      await stack.sample('phone-rotated-vfr-noaudio.mp4', 'Phone clip (portrait).mp4'),
      await stack.sample('video-only.mp4', 'Screen recording.mp4'),
    ]
    await api.addFiles({ paths: quick.slice(0, 1), preset: 'gif', priority: 'normal' })
    await api.addFiles({ paths: quick.slice(1), preset: '480p', priority: 'normal' })
    await waitUntil('the short files to complete', async () => (await api.getStats()).completed === 3)

    // Busy: two long encodes running, more files waiting at several priorities.
    await api.pause('local')
    const long = [
      await makeClip(join(src, 'Holiday in Lisbon.mp4'), 60, '1280x720'),
      await makeClip(join(src, 'Interview — take 3.mp4'), 60, '1280x720'),
    ]
    const waiting = [
      await stack.sample('real-360p-17s.mp4', 'Drone footage.mp4'),
      await stack.sample('subtitles-srt.mkv', 'Lecture with subtitles.mkv'),
      await stack.sample('iphone-hdr-hevc.mov', 'iPhone HDR.mov'),
      await stack.sample('audio.mp3', 'Podcast episode 12.mp3'),
    ]
    await api.addFiles({ paths: long, preset: '1080p', priority: 'high' })
    await api.addFiles({ paths: waiting.slice(0, 2), preset: '720p', priority: 'normal' })
    await api.addFiles({ paths: waiting.slice(2, 3), preset: 'webm', priority: 'low' })
    await api.addFiles({ paths: waiting.slice(3), preset: 'm4a', priority: 'low' })
    await api.resume('local')
    await waitUntil('two active jobs with progress', async () => {
      const page = await api.listJobs('active', 0, 10)
      return page.items.length === 2 && page.items.every((j) => (j.progress?.percent ?? 0) > 8)
    })
    await shoot(pages, outDir, 'busy', /^Active/)

    // Failed: stop the encodes, drop what waits, and make a real failure (an input removed before its turn).
    await api.pause('local')
    for (const j of (await api.listJobs('active', 0, 10)).items) await api.cancel(j.id)
    for (const j of (await api.listJobs('waiting', 0, 10)).items) await api.remove(j.id)
    const gone = await stack.sample('video-only.mp4', 'Deleted before its turn.mp4')
    const [outcome] = await api.addFiles({ paths: [gone], preset: '720p', priority: 'high' })
    await rm(gone)
    await api.resume('local')
    await waitUntil('the removed input to fail', async () => {
      const v = outcome?.id ? await api.getJob(outcome.id) : null
      return v?.state === 'failed'
    })
    await shoot(pages, outDir, 'failed', /^Failed/)
  } finally {
    await browser?.close()
    await stack?.close()
    await redis.stop()
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
