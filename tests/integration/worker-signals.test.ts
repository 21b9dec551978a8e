/**
 * `bullpen worker` and its signals, as a user stops it: the first SIGTERM lets the active job finish, a second one
 * hands it back to the queue at once; either way no ffmpeg is left behind.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import Bull from 'bull'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServerHandle, startRedisServer, waitFor } from '../helpers/redis'

const run = promisify(execFile)
const root = resolve(__dirname, '..', '..')
const cli = join(root, 'out', 'main', 'cli.js')
const media = resolve(root, '..', 'shared', 'media')

let redis: RedisServerHandle
let work: string
let queue: Bull.Queue

function env(dataDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    BULLPEN_REDIS_URL: redis.url,
    BULLPEN_DATA_DIR: dataDir,
    BULLPEN_LOG_LEVEL: 'warn',
  }
}

async function cliRun(args: string[], dataDir: string): Promise<string> {
  const { stdout } = await run(process.execPath, [cli, ...args], { env: env(dataDir) })
  return stdout
}

/** Pids of the ffmpeg processes whose parent is `pid`. */
/**
 * The encodes (ffmpeg with `-progress`) a worker runs. A worker also runs short `ffmpeg -version / -encoders /
 * -formats` at start: those are not jobs, and one caught here would still be exiting when the test looks again.
 */
async function ffmpegChildren(pid: number): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=,args=', '--ppid', String(pid)]).catch(() => ({
    stdout: '',
  }))
  return stdout
    .split('\n')
    .filter((l) => l.includes('ffmpeg') && l.includes('-progress'))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
}

/** True while `pid` is a live process (a zombie waiting to be reaped does not count). */
async function isRunning(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return status !== '' && !/^State:\s+Z/m.test(status)
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode)
    else child.once('exit', (code) => r(code))
  })
}

/**
 * A long encode (the 17 s clip to 1280-wide VP9) queued from data folder `data`, and a `bullpen worker` (its own
 * data folder, one slot) running its ffmpeg; returns the output folder, the worker and the ffmpeg pids.
 */
async function encodingWorker(
  data: string,
  outName: string,
): Promise<{ out: string; worker: ChildProcess; ffmpegs: number[] }> {
  const out = join(work, outName)
  await mkdir(out)
  await cliRun(
    ['add', join(media, 'real-360p-17s.mp4'), '--to', 'webm', '--resize', '1280x', '--out', out],
    join(work, data),
  )
  const worker = spawn(process.execPath, [cli, 'worker', '--concurrency', '1'], {
    env: env(join(work, data)),
    stdio: 'ignore',
  })
  await waitFor(async () => (await ffmpegChildren(worker.pid as number)).length > 0, 'ffmpeg running', 30_000)
  return { out, worker, ffmpegs: await ffmpegChildren(worker.pid as number) }
}

beforeAll(async () => {
  redis = await startRedisServer()
  work = await mkdtemp(join(tmpdir(), 'bullpen-signals-'))
  queue = new Bull('transcode', redis.url, { prefix: 'bullpen' })
})

afterAll(async () => {
  await queue?.close()
  await redis?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

describe('bullpen worker signals', () => {
  it('first signal: takes no new job, lets the active one finish, exits 0', async () => {
    const out = join(work, 'graceful')
    await mkdir(out)
    await cliRun(['add', join(media, 'real-360p-17s.mp4'), '--to', 'webm', '--out', out], join(work, 'd1'))
    await cliRun(['add', join(media, 'video-only.mp4'), '--to', 'webm', '--out', out], join(work, 'd1'))
    const worker = spawn(process.execPath, [cli, 'worker', '--concurrency', '1'], {
      env: env(join(work, 'd1')),
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    let stdout = ''
    worker.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    await waitFor(async () => (await queue.getActiveCount()) === 1, 'a job active', 30_000)
    await waitFor(
      async () => (await ffmpegChildren(worker.pid as number)).length > 0,
      'ffmpeg running',
      30_000,
    )
    worker.kill('SIGTERM')
    expect(await exited(worker)).toBe(0)
    // The active one finished; the other was never started.
    expect(await queue.getCompletedCount()).toBe(1)
    expect(await queue.getWaitingCount()).toBe(1)
    expect((await readdir(out)).filter((f) => !f.startsWith('.'))).toHaveLength(1)
    expect((await readdir(out)).filter((f) => f.startsWith('.'))).toEqual([])
    // The worker said what it did, a line a job (it used to print nothing but 'ready').
    const [done] = await queue.getCompleted()
    expect(stdout).toMatch(new RegExp(`^started ${done?.id} real-360p-17s\\.mp4$`, 'm'))
    expect(stdout).toMatch(new RegExp(`^done ${done?.id} real-360p-17s\\.mp4 -> .*real-360p-17s\\.webm`, 'm'))
    await queue.empty()
  })

  it('Ctrl-C in a terminal (SIGINT to the whole process group) lets the active job finish too', async () => {
    const out = join(work, 'terminal')
    await mkdir(out)
    const before = await queue.getCompletedCount()
    await cliRun(['add', join(media, 'real-360p-17s.mp4'), '--to', 'webm', '--out', out], join(work, 'd4'))
    // A group of its own, as a shell gives a foreground command: the signal below reaches every process in it.
    const worker = spawn(process.execPath, [cli, 'worker', '--concurrency', '1'], {
      env: env(join(work, 'd4')),
      stdio: 'ignore',
      detached: true,
    })
    await waitFor(
      async () => (await ffmpegChildren(worker.pid as number)).length > 0,
      'ffmpeg running',
      30_000,
    )
    process.kill(-(worker.pid as number), 'SIGINT')
    expect(await exited(worker)).toBe(0)
    expect(await queue.getCompletedCount()).toBe(before + 1)
    expect(await queue.getFailedCount()).toBe(0)
    expect(await queue.getDelayedCount()).toBe(0)
    expect((await readdir(out)).filter((f) => !f.startsWith('.'))).toEqual(['real-360p-17s.webm'])
  })

  it('second signal: hands the active job back at once and leaves no ffmpeg or temp file', async () => {
    const { out, worker, ffmpegs } = await encodingWorker('d2', 'handback')
    worker.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    worker.kill('SIGTERM')
    const t0 = Date.now()
    await exited(worker)
    expect(Date.now() - t0).toBeLessThan(15_000)
    await waitFor(async () => (await queue.getWaitingCount()) === 1, 'job back in waiting', 10_000)
    expect(await queue.getActiveCount()).toBe(0)
    expect(await queue.getCompletedCount()).toBe(2) // from the two tests above only
    for (const pid of ffmpegs) expect(await isRunning(pid), `ffmpeg ${pid} still running`).toBe(false)
    expect(await readdir(out)).toEqual([])
  })
})

describe('bullpen pause / resume (this node)', () => {
  it('pauses the worker of this data folder only, and says so when there is none', async () => {
    const data = join(work, 'd3')
    const none = await run(process.execPath, [cli, 'pause'], { env: env(data) }).then(
      () => 'exit 0',
      (err: { code: number; stderr: string }) => `exit ${err.code}: ${err.stderr}`,
    )
    expect(none).toMatch(/^exit 1: .*no worker of this node/s)
    await queue.empty()
    const out = join(work, 'paused')
    await mkdir(out)
    const worker = spawn(process.execPath, [cli, 'worker'], { env: env(data), stdio: 'ignore' })
    try {
      await waitFor(
        async () => (await cliRun(['nodes'], data)).includes('worker'),
        'worker registered',
        20_000,
      )
      expect(await cliRun(['pause'], data)).toMatch(/paused node/)
      // The request travels over Redis; wait until the worker reports itself paused (its next heartbeat).
      await waitFor(
        async () =>
          (JSON.parse(await cliRun(['nodes', '--json'], data)) as Array<{ paused: boolean }>).some(
            (n) => n.paused,
          ),
        'worker paused',
        20_000,
      )
      await cliRun(['add', join(media, 'video-only.mp4'), '--to', 'mkv', '--out', out], data)
      await new Promise((r) => setTimeout(r, 3000))
      expect(await queue.getWaitingCount()).toBe(1)
      expect(await queue.isPaused()).toBe(false) // the pool is not paused, only this node
      // `status` tells the worker's state, not that of its own short-lived process (it always said false).
      expect(JSON.parse(await cliRun(['status', '--json'], data))).toMatchObject({
        poolPaused: false,
        localPaused: true,
      })
      expect(await cliRun(['resume'], data)).toMatch(/resumed node/)
      await waitFor(
        async () => (await readdir(out)).includes('video-only.mkv'),
        'output after resume',
        60_000,
      )
    } finally {
      worker.kill('SIGTERM')
      await exited(worker)
    }
  })
})

describe('a closed terminal (SIGHUP)', () => {
  it('exits 129 and takes its encodes with it (they run in process groups of their own)', async () => {
    await queue.empty()
    const { out, worker, ffmpegs } = await encodingWorker('d5', 'hangup')
    worker.kill('SIGHUP')
    expect(await exited(worker)).toBe(129)
    for (const pid of ffmpegs) {
      await waitFor(async () => !(await isRunning(pid)), `ffmpeg ${pid} to be gone`, 5_000)
    }
    // Nothing half-written took the output's name; the job is recovered by the stalled check, as after a crash.
    expect((await readdir(out)).filter((f) => !f.startsWith('.'))).toEqual([])
  })
})

describe('a worker killed outright (SIGKILL, a crash)', () => {
  // No exit hook runs: on Linux the kernel kills the encode (parent-death signal, set through setpriv).
  it.runIf(process.platform === 'linux')(
    'takes its encodes with it instead of leaving them orphaned',
    async () => {
      await queue.empty()
      const { worker, ffmpegs } = await encodingWorker('d6', 'killed')
      expect(ffmpegs.length).toBe(1)
      worker.kill('SIGKILL')
      await exited(worker)
      for (const pid of ffmpegs) {
        await waitFor(async () => !(await isRunning(pid)), `ffmpeg ${pid} to be gone`, 5_000)
      }
    },
  )
})

describe('a worker stopped while Redis is away', () => {
  it('stops (exit 0) instead of waiting for Redis forever or crashing', async () => {
    const own = await startRedisServer()
    const data = join(work, 'd7')
    const out = join(work, 'redis-away')
    await mkdir(out)
    const ownEnv = { ...env(data), BULLPEN_REDIS_URL: own.url }
    try {
      await run(process.execPath, [cli, 'add', join(media, 'video-only.mp4'), '--to', 'mkv', '--out', out], {
        env: ownEnv,
      })
      const worker = spawn(process.execPath, [cli, 'worker', '--concurrency', '1'], {
        env: ownEnv,
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      let stderr = ''
      worker.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
      await waitFor(
        async () => (await ffmpegChildren(worker.pid as number)).length > 0,
        'ffmpeg running',
        30_000,
      )
      const [ffmpeg] = await ffmpegChildren(worker.pid as number)
      await own.kill()
      // The encode ends and its output is put in place; its completion waits for Redis, which does not come back.
      await waitFor(async () => !(await isRunning(ffmpeg as number)), 'the encode to end', 30_000)
      worker.kill('SIGTERM')
      // It used to wait for the throughput count forever, or crash on Bull's reconnection ('Connection is closed').
      const code = await Promise.race([exited(worker), sleep(25_000).then(() => 'still running')])
      if (code === 'still running') worker.kill('SIGKILL')
      expect(code).toBe(0)
      // Said in words, not only in the log's JSON lines.
      expect(stderr).toContain(`bullpen: Redis at ${own.url} is not answering; waiting for it to come back`)
    } finally {
      await own.stop()
    }
  })
})
