/**
 * End to end: the real renderer in Debian's Chromium, over the WebSocket bridge of `bullpen serve`, over the real
 * core — a private redis-server, the Bull queue, a worker running real ffmpeg on real sample files. Controls are
 * found by their accessible roles and names only (listed at the top of src/renderer/src/App.tsx).
 */
import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Browser, Locator, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startRedisServer, waitFor, type RedisServerHandle } from '../helpers/redis'
import { buildRenderer, launchChromium, makeClip, mediaDir, probe, startStack, type Stack } from './stack'

let redis: RedisServerHandle
let stack: Stack
let browser: Browser
let page: Page
/** Errors the page logged (CSP violations among them). */
const consoleErrors: string[] = []

beforeAll(async () => {
  const [rendererDir, r] = await Promise.all([buildRenderer(), startRedisServer()])
  redis = r
  stack = await startStack({ redisUrl: redis.url, rendererDir })
  browser = await launchChromium()
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  page.setDefaultTimeout(30_000)
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text())
  })
  await page.goto(stack.server.url)
  await page.getByRole('heading', { name: 'Bullpen' }).waitFor()
})

// A failed test must not leave the next one a paused node or a busy queue.
afterEach(async () => {
  if (!stack) return
  await stack.api.resume('local').catch(() => undefined)
  for (const state of ['waiting', 'active'] as const) {
    const page = await stack.api.listJobs(state, 0, 100).catch(() => null)
    for (const j of page?.items ?? []) await stack.api.cancel(j.id).catch(() => undefined)
  }
})

afterAll(async () => {
  await browser?.close()
  await stack?.close()
  await redis?.stop()
})

/** Pids of ffmpeg processes whose parent is this test process. */
async function childFfmpegs(): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // "pid (comm) state ppid …": comm may contain spaces, so split after the last ')'.
    const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat)
    if (m?.[1] === 'ffmpeg' && Number(m[2]) === process.pid) found.push(Number(entry))
  }
  return found
}

function tab(state: 'Waiting' | 'Active' | 'Completed' | 'Failed'): Locator {
  return page.getByRole('tab', { name: new RegExp(`^${state}\\b`) })
}

/** The row of a job in the list of the selected tab. */
function row(file: string): Locator {
  return page.getByRole('tabpanel').getByRole('listitem').filter({ hasText: file })
}

async function rowNames(): Promise<string[]> {
  const texts = await page.getByRole('tabpanel').getByRole('listitem').allTextContents()
  return texts
}

async function setLocalPaused(paused: boolean): Promise<void> {
  await page.getByRole('button', { name: paused ? 'Pause this node' : 'Resume this node' }).click()
  await page.getByRole('button', { name: paused ? 'Resume this node' : 'Pause this node' }).waitFor()
  // The button flips as soon as the UI asks; Bull's local pause aborts its in-flight blocking fetch a moment later,
  // and a job added in between can still be taken. Wait for the pause itself (idempotent) before going on.
  if (paused) await stack.api.pause('local')
}

async function choose(preset: string, priority: 'high' | 'normal' | 'low' = 'normal'): Promise<void> {
  await page.getByRole('combobox', { name: 'Preset', exact: true }).selectOption(`preset:${preset}`)
  await page.getByRole('combobox', { name: 'Priority', exact: true }).selectOption(priority)
}

/** "Add files…" → the page's file chooser → the given real files. */
async function addWithChooser(paths: string[]): Promise<void> {
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.getByRole('button', { name: 'Add files…' }).click(),
  ])
  await chooser.setFiles(paths)
}

async function jobIdOf(file: string): Promise<string> {
  // The id sits on the list item itself or on the row inside it.
  const r = row(file)
  const id =
    (await r.getAttribute('data-job-id')) ??
    (await r.locator('[data-job-id]').first().getAttribute('data-job-id'))
  if (!id) throw new Error(`no job id on the row of ${file}`)
  return id
}

describe('Bullpen in a browser over `bullpen serve`', () => {
  it('takes a dropped file from waiting to active with moving progress to completed, with a reveal action', async () => {
    const input = await stack.sample('real-360p-17s.mp4', 'first-clip.mp4')
    await setLocalPaused(true)
    await choose('480p')
    await addWithChooser([input])

    await tab('Waiting').click()
    await row('first-clip.mp4').waitFor()
    // The browser uploaded the file: the job's input is in the node's inbox, byte for byte.
    const id = await jobIdOf('first-clip.mp4')
    const queued = await stack.api.getJob(id)
    expect(queued?.state).toBe('waiting')
    expect(dirname(queued?.inputPath ?? '')).toBe(stack.inboxDir)
    expect(await readFile(queued?.inputPath ?? '')).toEqual(await readFile(input))

    await setLocalPaused(false)
    await tab('Active').click()
    const bar = page.getByRole('progressbar', { name: 'Progress of first-clip.mp4' })
    const seen = new Set<number>()
    await waitFor(
      async () => {
        const now = await bar.getAttribute('aria-valuenow', { timeout: 1000 }).catch(() => null)
        if (now !== null) seen.add(Number(now))
        return seen.size >= 2
      },
      'the progress bar of first-clip.mp4 to move',
      60_000,
      100,
    )
    expect(Math.max(...seen)).toBeGreaterThan(Math.min(...seen))

    await tab('Completed').click()
    await page.getByRole('button', { name: 'Reveal output of first-clip.mp4' }).waitFor({ timeout: 90_000 })
    const done = await stack.api.getJob(id)
    expect(done?.state).toBe('completed')
    const out = await probe(done?.result?.outputPath ?? '')
    expect(out).toMatchObject({ codec: 'h264', height: 480, width: 854 })
    expect(out.duration).toBeGreaterThan(16)
  })

  it('queues a file dropped on the window (a synthetic drop with a DataTransfer)', async () => {
    const name = "te[s]t_ video ' _ .flv"
    const bytes = await readFile(join(mediaDir, name))
    await choose('480p')
    // A string, because this file is type-checked without the DOM library; it runs in the page.
    const dataTransfer = await page.evaluateHandle(`(() => {
      const bin = atob(${JSON.stringify(bytes.toString('base64'))})
      const arr = new Uint8Array(bin.length)
      for (let i = 0; i < bin.length; i++) arr[i] = bin.charCodeAt(i)
      const dt = new DataTransfer()
      dt.items.add(new File([arr], ${JSON.stringify(name)}, { type: 'video/x-flv' }))
      return dt
    })()`)
    await page.dispatchEvent('body', 'dragenter', { dataTransfer })
    await page.dispatchEvent('body', 'dragover', { dataTransfer })
    await page.dispatchEvent('body', 'drop', { dataTransfer })

    await tab('Completed').click()
    await page.getByRole('button', { name: `Reveal output of ${name}` }).waitFor({ timeout: 60_000 })
    const id = await jobIdOf(name)
    const view = await stack.api.getJob(id)
    expect(basename(view?.inputPath ?? '')).toBe(name)
    expect(await probe(view?.result?.outputPath ?? '')).toMatchObject({ codec: 'h264', height: 480 })
  })

  it('shows the progress of a slow browser upload, then queues the file', async () => {
    const input = await stack.sample('phone-rotated-vfr-noaudio.mp4', 'slow-upload.mp4')
    await choose('480p')
    // Chromium's network emulation slows the upload to ~1 MB/s, so its progress can be seen.
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Network.enable')
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 1024 * 1024,
    })
    try {
      await addWithChooser([input])
      const bar = page.getByRole('progressbar', { name: 'Uploading slow-upload.mp4' })
      await bar.waitFor({ timeout: 10_000 })
      const seen = new Set<number>()
      await waitFor(
        async () => {
          const v = await bar.getAttribute('aria-valuenow', { timeout: 500 }).catch(() => null)
          if (v !== null) seen.add(Number(v))
          return [...seen].some((n) => n > 0 && n < 100)
        },
        'a partial upload to show',
        15_000,
        50,
      )
    } finally {
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: -1,
      })
      await cdp.detach()
    }
    await tab('Completed').click()
    await page.getByRole('button', { name: 'Reveal output of slow-upload.mp4' }).waitFor({ timeout: 60_000 })
    const view = await stack.api.getJob(await jobIdOf('slow-upload.mp4'))
    expect((await readFile(view?.inputPath ?? '')).equals(await readFile(input))).toBe(true)
  })

  it('reorders waiting jobs when a priority changes', async () => {
    await setLocalPaused(true)
    await choose('mp4', 'normal')
    const files = [
      await stack.sample('video-only.mp4', 'order-a.mp4'),
      await stack.sample('odd-161x121.webm', 'order-b.webm'),
      await stack.sample('subtitles-srt.mkv', 'order-c.mkv'),
    ]
    await addWithChooser(files)
    await tab('Waiting').click()
    await row('order-c.mkv').waitFor()
    const order = async (): Promise<string[]> =>
      (await rowNames())
        .map((t) => /order-[abc]\.(?:mp4|webm|mkv)/.exec(t)?.[0] ?? '')
        .filter((n) => n !== '')
    await expect.poll(order).toEqual(['order-a.mp4', 'order-b.webm', 'order-c.mkv'])

    await page.getByRole('combobox', { name: 'Change priority of order-c.mkv' }).selectOption('high')
    await expect.poll(order, { timeout: 10_000 }).toEqual(['order-c.mkv', 'order-a.mp4', 'order-b.webm'])
    const c = await stack.api.getJob(await jobIdOf('order-c.mkv'))
    expect(c?.priority).toBe('high')

    // Leave nothing waiting for the next tests.
    for (const f of ['order-a.mp4', 'order-b.webm', 'order-c.mkv']) {
      await page.getByRole('button', { name: `Cancel ${f}` }).click()
      await row(f).waitFor({ state: 'detached' })
    }
    await setLocalPaused(false)
  })

  it('cancels an active job', async () => {
    const input = await makeClip(join(stack.work, 'sources', 'long-clip.mp4'), 30, '640x360')
    await choose('webm')
    await addWithChooser([input])
    await tab('Active').click()
    const bar = page.getByRole('progressbar', { name: 'Progress of long-clip.mp4' })
    await bar.waitFor({ timeout: 60_000 })
    const id = await jobIdOf('long-clip.mp4')
    // The job turns active before its ffmpeg starts (probe first): wait for the encoder to be running.
    if (process.platform === 'linux') {
      await expect.poll(async () => (await childFfmpegs()).length, { timeout: 30_000 }).toBeGreaterThan(0)
    }
    await page.getByRole('button', { name: 'Cancel long-clip.mp4' }).click()
    await row('long-clip.mp4').waitFor({ state: 'detached', timeout: 30_000 })
    await expect.poll(async () => (await stack.api.getJob(id))?.cancelled, { timeout: 30_000 }).toBe(true)
    const view = await stack.api.getJob(id)
    expect(view?.state).toBe('failed')
    expect(view?.result).toBeNull()
    expect((await stack.api.getStats()).active).toBe(0)
    // Its ffmpeg is gone too (Linux: look for children of this process).
    if (process.platform === 'linux') await expect.poll(childFfmpegs, { timeout: 10_000 }).toEqual([])
  })

  it('opens the queue dashboard (Bull Board) behind the same server, under its CSP', async () => {
    const cspErrors: string[] = []
    // Listen from the new page's first moment, not after it has loaded.
    page.context().once('page', (p) =>
      p.on('console', (m) => {
        const text = m.text()
        // Bull Board asks for Google Fonts; our CSP keeps the dashboard offline on purpose (system fonts are used).
        if (/fonts\.googleapis\.com/.test(text)) return
        if (/Content[- ]Security[- ]Policy/i.test(text)) cspErrors.push(text)
      }),
    )
    const [board] = await Promise.all([
      page.context().waitForEvent('page'),
      page.getByRole('link', { name: 'Queue dashboard' }).click(),
    ])
    await board.waitForLoadState()
    await board.getByText(stack.node.queue.name).first().waitFor()
    // Give late scripts and fetches a moment to trip the CSP if they would.
    await board.waitForTimeout(500)
    expect(new URL(board.url()).pathname).toMatch(/^\/admin\/queues/)
    expect(cspErrors).toEqual([])
    await board.close()
  })

  it('shows a banner while Redis is down and recovers when it is back', async () => {
    await redis.kill()
    const banner = page.getByRole('alert').filter({ hasText: /Redis is unreachable/ })
    await banner.waitFor({ timeout: 30_000 })
    await redis.restart()
    await banner.waitFor({ state: 'detached', timeout: 60_000 })
    // Working again: a new file goes all the way through.
    const input = await stack.sample('video-only.mp4', 'after-restart.mp4')
    await choose('480p')
    await addWithChooser([input])
    await tab('Completed').click()
    await page
      .getByRole('button', { name: 'Reveal output of after-restart.mp4' })
      .waitFor({ timeout: 90_000 })
  })

  it('shows a banner while the server is gone and reconnects by itself', async () => {
    const banner = page.getByRole('alert').filter({ hasText: /Not connected to the Bullpen server/ })
    await stack.restartServer(() => banner.waitFor({ timeout: 15_000 }))
    await banner.waitFor({ state: 'detached', timeout: 30_000 })
    // Calls work again over the new socket.
    await setLocalPaused(true)
    await setLocalPaused(false)
  })

  it('ran the whole session without a CSP violation in the page', () => {
    expect(consoleErrors.filter((t) => /Content[- ]Security[- ]Policy/i.test(t))).toEqual([])
  })
})
