/**
 * Where things are, what machine this is, and how to drive Bullpen as a user does: the built CLI
 * (`node out/main/cli.js …`) against the bench's own redis-server, with its own data folder per node.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import Redis from 'ioredis'
import { findFfmpeg, installerFfprobe } from '../../src/main/core/ffmpeg/locate'
import { run, runOk, type RunResult } from './proc'

export const repoRoot = resolve(__dirname, '..', '..')
export const mediaDir = resolve(repoRoot, '..', 'shared', 'media')
export const tmpRoot = join(repoRoot, 'bench', 'tmp')
export const cliPath = join(repoRoot, 'out', 'main', 'cli.js')

/**
 * The ffmpeg/ffprobe Bullpen would pick here; both sides of every figure are given these explicitly.
 * `BENCH_FFPROBE=bundled` takes the static ffprobe of `@ffprobe-installer/ffprobe` instead (what a desktop with no
 * ffprobe of its own runs: ffmpeg-static ships none), `BENCH_FFPROBE=<path>` that one.
 */
export const ff = (() => {
  const p = findFfmpeg()
  const want = process.env['BENCH_FFPROBE']
  if (want === 'bundled') {
    const bundled = installerFfprobe()
    if (bundled === null)
      throw new Error('BENCH_FFPROBE=bundled: @ffprobe-installer has no ffprobe for this platform')
    return { ffmpeg: p.ffmpeg, ffprobe: bundled }
  }
  return { ffmpeg: p.ffmpeg, ffprobe: want !== undefined && want !== '' ? want : p.ffprobe }
})()

/** Builds the CLI with electron-vite when out/ is missing (or `force`). */
export async function ensureBuilt(force = false): Promise<void> {
  if (!force && existsSync(cliPath)) return
  console.log('bench: building (npx electron-vite build)…')
  await runOk(
    process.execPath,
    [join(repoRoot, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'],
    {
      cwd: repoRoot,
      env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' },
    },
  )
}

export interface Machine {
  cpu: string
  cores: number
  ramGiB: number
  node: string
  ffmpeg: string
  ffprobe: string
  redis: string
  loadAvg: [number, number, number]
  date: string
}

export async function describeMachine(): Promise<Machine> {
  const firstLine = async (cmd: string, args: string[]): Promise<string> => {
    const r = await run(cmd, args).catch(() => undefined)
    return (r?.stdout ?? '').split('\n')[0]?.trim() ?? '?'
  }
  let cpu = cpus()[0]?.model ?? '?'
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1]) cpu = m[1].trim()
  } catch {
    // not Linux: os.cpus() is enough
  }
  const ffv = (await firstLine(ff.ffmpeg, ['-version'])).replace(/^ffmpeg version (\S+).*$/, '$1')
  const fpv = (await firstLine(ff.ffprobe, ['-version'])).replace(/^ffprobe version (\S+).*$/, '$1')
  const rv = (await firstLine('redis-server', ['--version'])).replace(/^.*\bv=(\S+).*$/, '$1')
  const la = loadavg()
  return {
    cpu,
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    ffmpeg: `${ffv} (${ff.ffmpeg})`,
    ffprobe: `${fpv} (${ff.ffprobe})`,
    redis: rv,
    loadAvg: [la[0] ?? 0, la[1] ?? 0, la[2] ?? 0],
    date: new Date().toISOString(),
  }
}

export function machineLine(m: Machine): string {
  return (
    `${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM; node ${m.node}, ffmpeg ${m.ffmpeg}, ffprobe ${m.ffprobe}, redis ${m.redis}; ` +
    `load average at start ${m.loadAvg.map((x) => x.toFixed(2)).join(' ')}; ${m.date}`
  )
}

/** Environment of a Bullpen CLI process: its data folder, the bench Redis, the same ffmpeg as the direct side. */
export function cliEnv(redisUrl: string, dataDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    BULLPEN_DATA_DIR: dataDir,
    BULLPEN_REDIS_URL: redisUrl,
    FFMPEG_PATH: ff.ffmpeg,
    FFPROBE_PATH: ff.ffprobe,
    ...extra,
  }
}

/** `node out/main/cli.js <args>` */
export function cli(args: readonly string[], env: NodeJS.ProcessEnv, cwd = repoRoot): Promise<RunResult> {
  return run(process.execPath, [cliPath, ...args], { env, cwd })
}

/** Same, throwing with the output when the CLI does not exit 0. */
export function cliOk(args: readonly string[], env: NodeJS.ProcessEnv, cwd = repoRoot): Promise<RunResult> {
  return runOk(process.execPath, [cliPath, ...args], { env, cwd })
}

/** A connection to the bench Redis, for counting jobs and reading memory. */
export function redisClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 2 })
}

/** Bull key of the default queue (`bullpen:transcode:<suffix>`). */
export function qkey(suffix: string): string {
  return `bullpen:transcode:${suffix}`
}

/** Jobs still to do (waiting, paused, delayed, active) in the default queue. */
export async function pendingJobs(r: Redis): Promise<number> {
  const [w, p, a, d] = await Promise.all([
    r.llen(qkey('wait')),
    r.llen(qkey('paused')),
    r.llen(qkey('active')),
    r.zcard(qkey('delayed')),
  ])
  return w + p + a + d
}

/** Waits until no job is pending (polling every `everyMs`); returns the time it saw that (performance.now()). */
export async function waitDrained(r: Redis, timeoutMs: number, everyMs = 50): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if ((await pendingJobs(r)) === 0) return performance.now()
    if (Date.now() > deadline) throw new Error(`queue not drained after ${timeoutMs} ms`)
    await new Promise((res) => setTimeout(res, everyMs))
  }
}

/** processedOn/finishedOn of the jobs still in Redis: the makespan the workers achieved. */
export async function jobTimes(
  r: Redis,
  ids: readonly string[],
): Promise<{ first: number; last: number; failed: number }> {
  const pipe = r.pipeline()
  for (const id of ids) pipe.hmget(qkey(id), 'processedOn', 'finishedOn', 'failedReason')
  const res = (await pipe.exec()) ?? []
  let first = Infinity
  let last = 0
  let failed = 0
  for (const [, v] of res) {
    const [p, f, reason] = (v ?? []) as (string | null)[]
    if (p) first = Math.min(first, Number(p))
    if (f) last = Math.max(last, Number(f))
    if (reason) failed++
  }
  return { first, last, failed }
}

/**
 * A fresh data folder for one Bullpen node under bench/tmp. With `shared`, its pool.json declares bench/tmp as a
 * shared folder (every bench node sees the same files there), so a node that is not a job's origin reads the input
 * in place instead of fetching it — the "shared storage" case.
 */
export async function nodeDir(name: string, opts: { shared?: boolean } = {}): Promise<string> {
  const dir = join(tmpRoot, 'nodes', name)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  if (opts.shared) {
    const pool = { sharedFolders: [{ name: 'bench', path: tmpRoot }] }
    await writeFile(join(dir, 'pool.json'), JSON.stringify(pool, null, 2) + '\n')
  }
  return dir
}
