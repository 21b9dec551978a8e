/**
 * The real stack the browser tests (and the README screenshots) run against: the renderer built by electron-vite,
 * a `serve` node over the real core (queue, worker, ffmpeg) on a Redis the caller gives, the bridge server, and
 * Debian's Chromium driven by playwright-core.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { chromium, type Browser } from 'playwright-core'
import { createAppApi, type CoreApi } from '../../src/main/core/app'
import { BullpenNode } from '../../src/main/core/node'
import { startServer, type RunningServer } from '../../src/main/core/server'

const run = promisify(execFile)

export const repoRoot = resolve(__dirname, '..', '..')
/** The shared sample media (CI puts shared/ beside the clone). */
export const mediaDir = resolve(repoRoot, '..', 'shared', 'media')

/** Builds main, preload and renderer with electron-vite into `outDir` (≈2 s); returns the renderer folder. */
export async function buildRenderer(outDir = join(repoRoot, 'tests', '.tmp', 'e2e-out')): Promise<string> {
  await run(
    process.execPath,
    [join(repoRoot, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build', '--outDir', outDir],
    {
      cwd: repoRoot,
      env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' },
    },
  )
  return join(outDir, 'renderer')
}

/** Headless Debian Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env['BULLPEN_CHROMIUM'] ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
}

export interface Stack {
  node: BullpenNode
  api: CoreApi
  /** The bridge; replaced by {@link Stack.restartServer}. */
  server: RunningServer
  /**
   * Closes the bridge (clients see it go), runs `whileDown`, and starts it again on the same port over the same
   * core.
   */
  restartServer(whileDown?: () => Promise<void>): Promise<void>
  /** Scratch folder of this stack (data dir, inbox, sources). */
  work: string
  inboxDir: string
  /** Copies a sample file under a new name into the scratch folder; returns its path. */
  sample(file: string, as?: string): Promise<string>
  close(): Promise<void>
}

export interface StackOptions {
  redisUrl: string
  rendererDir: string
  concurrency?: number
}

/** Starts a `serve` node that works on the queue, with the bridge over it on a free loopback port. */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const work = await mkdtemp(join(tmpdir(), 'bullpen-e2e-'))
  const inboxDir = join(work, 'inbox')
  const sources = join(work, 'sources')
  await mkdir(sources, { recursive: true })
  const tag = randomBytes(4).toString('hex')
  const node = await BullpenNode.start({
    kind: 'serve',
    dataDir: join(work, 'data'),
    redisUrl: opts.redisUrl,
    manageRedis: false,
    work: true,
    concurrency: opts.concurrency ?? 1,
    queueName: `e2e-${tag}`,
    prefix: `bptest-e2e-${tag}`,
    name: 'e2e-node',
  })
  const api = createAppApi(node)
  const serve = (port: number): Promise<RunningServer> =>
    startServer({ api, port, rendererDir: opts.rendererDir, inboxDir, queue: node.queue.bull })
  let closed = false
  const stack: Stack = {
    node,
    api,
    server: await serve(0),
    async restartServer(whileDown?: () => Promise<void>): Promise<void> {
      const port = stack.server.port
      await stack.server.close()
      await whileDown?.()
      stack.server = await serve(port)
    },
    work,
    inboxDir,
    async sample(file: string, as?: string): Promise<string> {
      const to = join(sources, as ?? file)
      await copyFile(join(mediaDir, file), to)
      return to
    },
    async close(): Promise<void> {
      if (closed) return
      closed = true
      await stack.server.close()
      await api.close()
      await node.stop({ handBack: true })
      await rm(work, { recursive: true, force: true })
    },
  }
  return stack
}

/** Makes a synthetic clip with ffmpeg's lavfi sources (H.264 + AAC), e.g. a long one to cancel mid-way. */
export async function makeClip(path: string, seconds: number, size = '1280x720'): Promise<string> {
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=s=${size}:r=30:d=${seconds}`,
    '-f',
    'lavfi',
    '-i',
    `sine=d=${seconds}`,
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'aac',
    '-shortest',
    path,
  ])
  return path
}

/** ffprobe's view of a file's first video stream and duration. */
export async function probe(
  path: string,
): Promise<{ codec: string; width: number; height: number; duration: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=codec_name,width,height:format=duration',
    '-of',
    'json',
    path,
  ])
  const j = JSON.parse(stdout) as {
    streams: { codec_name: string; width: number; height: number }[]
    format: { duration: string }
  }
  const s = j.streams[0]
  if (!s) throw new Error(`${path} has no video stream`)
  return { codec: s.codec_name, width: s.width, height: s.height, duration: Number(j.format.duration) }
}
