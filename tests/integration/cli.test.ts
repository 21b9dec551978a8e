/**
 * The `bullpen` CLI as a user runs it: the built bundle (out/main/cli.js, made by `npm run build` / `npm test`),
 * its own redis-server with AOF, real ffmpeg, real files, outputs checked with ffprobe.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import Bull from 'bull'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServerHandle, startRedisServer, waitFor } from '../helpers/redis'

const run = promisify(execFile)
const root = resolve(__dirname, '..', '..')
const cli = join(root, 'out', 'main', 'cli.js')
const media = resolve(root, '..', 'shared', 'media')

interface Probe {
  streams: Array<{ codec_type: string; codec_name: string; width?: number; height?: number }>
  format: { duration?: string }
}

async function ffprobe(file: string): Promise<Probe> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-show_streams',
    '-show_format',
    '-of',
    'json',
    file,
  ])
  return JSON.parse(stdout) as Probe
}

let redis: RedisServerHandle
let work: string
let dataDir: string

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function bullpen(args: string[], opts: { redisUrl?: string; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: {
        ...process.env,
        BULLPEN_REDIS_URL: opts.redisUrl ?? redis.url,
        BULLPEN_DATA_DIR: dataDir,
        BULLPEN_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
  })
}

/**
 * A CLI run in a process group of its own, as a shell runs a foreground command (a signal to the group is a Ctrl-C),
 * whose output is read as it comes.
 */
function startBullpen(args: string[]): {
  pid: number
  stdout: () => string
  stderr: () => string
  code: Promise<number | null>
} {
  const child = spawn(process.execPath, [cli, ...args], {
    env: {
      ...process.env,
      BULLPEN_REDIS_URL: redis.url,
      BULLPEN_DATA_DIR: dataDir,
      BULLPEN_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = new Promise<number | null>((r) => child.once('close', r))
  return { pid: child.pid as number, stdout: () => stdout, stderr: () => stderr, code }
}

beforeAll(async () => {
  await stat(cli).catch(() => {
    throw new Error(`${cli} is missing: run \`npm run build\` first (npm test does).`)
  })
  redis = await startRedisServer({ appendonly: true, appendfsync: 'everysec' })
  work = await mkdtemp(join(tmpdir(), 'bullpen-cli-'))
  dataDir = join(work, 'data')
})

afterAll(async () => {
  await redis?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

describe('bullpen transcode', () => {
  it('makes a VP9 webm of 426x240 with the input duration (the README main job)', async () => {
    const out = join(work, 'out-webm')
    await mkdir(out)
    const r = await bullpen([
      'transcode',
      join(media, 'real-360p-17s.mp4'),
      '--to',
      'webm',
      '--resize',
      'x240',
      '--out',
      out,
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(await readdir(out)).toEqual(['real-360p-17s.webm'])
    // Plain output: a job that starts before its follower subscribes is still announced, before its progress.
    const id = /^queued (\d+)/m.exec(r.stdout)?.[1] as string
    const lines = r.stdout.split('\n')
    const startedAt = lines.findIndex((l) => l.startsWith(`started ${id} `))
    expect(startedAt, r.stdout).toBeGreaterThan(-1)
    expect(lines.findIndex((l) => l.startsWith(`progress ${id} `))).toBeGreaterThan(startedAt)
    // Once: its own 'active' event, arriving after the progress that announced it, says nothing more.
    expect(
      lines.filter((l) => l.startsWith(`started ${id} `)),
      r.stdout,
    ).toHaveLength(1)
    const p = await ffprobe(join(out, 'real-360p-17s.webm'))
    const v = p.streams.find((s) => s.codec_type === 'video')
    expect(v).toMatchObject({ codec_name: 'vp9', width: 426, height: 240 })
    expect(p.streams.find((s) => s.codec_type === 'audio')?.codec_name).toBe('opus')
    expect(Number(p.format.duration)).toBeCloseTo(17.06, 0)
    const cancel = await bullpen(['cancel', id])
    expect([cancel.code, cancel.stderr.split('\n')[0]]).toEqual([
      1,
      `cancel ${id}: job ${id} has already finished; nothing to cancel`,
    ])
  })

  it('never writes over an existing file and keeps the input intact', async () => {
    const out = join(work, 'out-clash')
    await mkdir(out)
    const input = join(out, 'clip.flv')
    await copyFile(join(media, "te[s]t_ video ' _ .flv"), input)
    const before = await readFile(input)
    await writeFile(join(out, 'clip.mp4'), 'precious')
    const r = await bullpen(['transcode', input, '--to', 'mp4'])
    expect(r.code, r.stderr).toBe(0)
    expect((await readdir(out)).sort()).toEqual(['clip (1).mp4', 'clip.flv', 'clip.mp4'])
    expect(await readFile(join(out, 'clip.mp4'), 'utf8')).toBe('precious')
    expect((await readFile(input)).equals(before)).toBe(true)
    const p = await ffprobe(join(out, 'clip (1).mp4'))
    expect(p.streams.find((s) => s.codec_type === 'video')).toMatchObject({
      codec_name: 'h264',
      width: 320,
      height: 240,
    })
  })

  it('refuses a damaged file, a missing one and an impossible target with reasons, exit code 1', async () => {
    const out = join(work, 'out-bad')
    await mkdir(out)
    const r = await bullpen([
      'transcode',
      join(media, 'broken-no-moov.mp4'),
      join(work, 'no-such-file.mp4'),
      '--to',
      'mp4',
      '--out',
      out,
    ])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/broken-no-moov\.mp4.*damaged/i)
    expect(r.stderr).toMatch(/no-such-file\.mp4: no such file/)
    // A link loop is named as one (it was 'no such file').
    await symlink(join(work, 'loop-b.mp4'), join(work, 'loop-a.mp4'))
    await symlink(join(work, 'loop-a.mp4'), join(work, 'loop-b.mp4'))
    const loop = await bullpen(['add', join(work, 'loop-a.mp4'), '--to', 'mp4', '--out', out])
    expect([loop.code, loop.stderr]).toEqual([
      1,
      expect.stringMatching(/loop-a\.mp4: its links lead round in a loop/),
    ])
    const mp3 = await bullpen(['transcode', join(media, 'video-only.mp4'), '--to', 'mp3', '--out', out])
    expect(mp3.code).toBe(1)
    expect(mp3.stderr).toMatch(/video-only\.mp4.*no audio/i)
    // A name the output cannot take (251 bytes + .webm): refused when queued, not after three failed attempts.
    const long = join(work, `${'a'.repeat(251)}.ts`)
    await copyFile(join(media, 'video-only.mp4'), long)
    const named = await bullpen(['transcode', long, '--to', 'webm', '--out', out])
    expect(named.code).toBe(1)
    expect(named.stderr).toMatch(/its name is too long to name the output after it \(256 bytes as \.webm/)
    expect(await readdir(out)).toEqual([])
  })

  it('writes the output of an input whose name is as long as can be (its temp file name is shortened)', async () => {
    const out = join(work, 'out-long')
    await mkdir(out)
    const long = join(work, `${'é'.repeat(125)}.mp4`) // 250 bytes as .mp4: the temp name would be 272
    await copyFile(join(media, 'video-only.mp4'), long)
    const r = await bullpen(['transcode', long, '--to', 'mkv', '--resize', 'x120', '--out', out])
    expect(r.code, r.stderr).toBe(0)
    expect(await readdir(out)).toEqual([`${'é'.repeat(125)}.mkv`])
  })

  it('exits 2 on a usage error and 3 when Redis cannot be reached', async () => {
    const usage = await bullpen(['transcode', join(media, 'audio.mp3'), '--resize', 'big'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/--resize big/)
    // Refused by the option parser itself (a choice, an unknown option, a missing argument): usage errors too.
    for (const args of [
      ['transcode', join(media, 'audio.mp3'), '--to', 'avi'],
      ['jobs', '--state', 'done'],
      ['status', '--bogus'],
      ['add'],
      // Options that parse but cannot be: also usage errors (they exited 3 and 1).
      ['status', '--redis', 'notaurl'],
      ['serve', '--host', '0.0.0.0'],
      ['serve', '--host', '0.0.0.0', '--token', 'short'],
    ]) {
      const r = await bullpen(args)
      expect(r.code, args.join(' ')).toBe(2)
    }
    // A data folder that cannot be one: said in a sentence (it was a stack trace).
    const inTheWay = await bullpen(['status', '--data-dir', join(media, 'audio.mp3')])
    expect([inTheWay.code, inTheWay.stderr.trim()]).toEqual([
      1,
      `bullpen: The data folder ${join(media, 'audio.mp3')} cannot be used (a file is in the way). Choose another with --data-dir or BULLPEN_DATA_DIR.`,
    ])
    // A shared folder that is not there is said (a typo showed only as jobs never taking the shared route).
    const share = await bullpen(['worker', '--share', `media=${join(work, 'not-mounted')}`], {
      redisUrl: 'redis://127.0.0.1:1',
    })
    expect(share.stderr).toContain(
      `warning: shared folder media: ${join(work, 'not-mounted')} does not exist (yet).`,
    )
    const down = await bullpen(['status'], { redisUrl: 'redis://127.0.0.1:1' })
    expect(down.code).toBe(3)
    expect(down.stderr).toMatch(/127\.0\.0\.1:1/)
  })
})

describe('bullpen transcode, a failed attempt', () => {
  it('says that a job failed an attempt and will be retried, and why', async () => {
    // The header (moov) first, then half of the media: the probe finds 17 s, the encode gets ~8 s and is refused.
    const full = join(work, 'faststart.mp4')
    const args = ['-i', join(media, 'real-360p-17s.mp4'), '-c', 'copy', '-movflags', '+faststart', full]
    await run('ffmpeg', ['-v', 'error', ...args])
    const half = join(work, 'half.mp4')
    await writeFile(half, (await readFile(full)).subarray(0, Math.floor((await stat(full)).size / 2)))
    const out = join(work, 'out-retry')
    await mkdir(out)
    const transcode = startBullpen(['transcode', half, '--to', 'mkv', '--out', out])
    await waitFor(() => /^retrying /m.test(transcode.stdout()), 'a retry line', 60_000)
    const id = /^queued (\d+)/m.exec(transcode.stdout())?.[1] as string
    expect(transcode.stdout()).toMatch(
      new RegExp(`^retrying ${id} half\\.mp4 \\(attempt 2 of 3\\): .*lasts`, 'm'),
    )
    // Waiting for its backoff, it says why in `jobs` (and in the UI), as it did not.
    const delayed = JSON.parse((await bullpen(['jobs', '--state', 'delayed', '--json'])).stdout) as {
      items: { id: string; failedReason: string | null }[]
    }
    expect(delayed.items.find((j) => j.id === id)?.failedReason).toMatch(/the output failed verification/)
    process.kill(-transcode.pid, 'SIGINT')
    expect(await transcode.code).toBe(130)
    expect((await bullpen(['cancel', id])).code).toBe(0)
  })
})

describe('bullpen transcode, pool paused', () => {
  it('says why its jobs wait while the whole pool is paused, and finishes once it is resumed', async () => {
    const out = join(work, 'out-pool-paused')
    await mkdir(out)
    expect((await bullpen(['pause', '--all'])).code).toBe(0)
    const transcode = bullpen(['transcode', join(media, 'video-only.mp4'), '--to', 'mkv', '--out', out])
    const pausedJobs = async (): Promise<number> =>
      (JSON.parse((await bullpen(['status', '--json'])).stdout) as { paused: number }).paused
    await waitFor(async () => (await pausedJobs()) === 1, 'the job queued (paused)', 30_000)
    // The note follows the queueing by one Redis round trip.
    await new Promise((r) => setTimeout(r, 1000))
    expect((await bullpen(['resume', '--all'])).code).toBe(0)
    const r = await transcode
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('note: the pool is paused, so these jobs wait until `bullpen resume --all`')
    expect(await readdir(out)).toEqual(['video-only.mkv'])
  })
})

describe('bullpen transcode, interrupted', () => {
  it('Ctrl-C (twice): exits 130 saying what becomes of the jobs; its running encode goes back to the queue, no temp file left', async () => {
    const out = join(work, 'interrupted')
    await mkdir(out, { recursive: true })
    const child = startBullpen([
      'transcode',
      join(media, 'real-360p-17s.mp4'),
      '--to',
      'webm',
      '--resize',
      '1280x',
      '--out',
      out,
    ])
    await waitFor(() => /^started (\d+)/m.test(child.stdout()), 'the encode to start', 60_000)
    const id = /^started (\d+)/m.exec(child.stdout())?.[1] as string
    // A second Ctrl-C typed before the hand-back is over lets it finish (it used to exit at once and leave the
    // encode's temp file behind, without a word). A stopped ffmpeg makes the hand-back last (SIGTERM, then SIGKILL
    // after a grace period), so the second signal surely comes in the middle of it.
    await waitFor(async () => (await readdir(out)).length > 0, 'the temp file', 10_000)
    const { stdout: ps } = await run('ps', ['-o', 'pid=,args=', '--ppid', String(child.pid)])
    const ffmpeg = Number(
      ps
        .split('\n')
        .find((l) => l.includes('-progress'))
        ?.trim()
        .split(/\s+/)[0],
    )
    process.kill(ffmpeg, 'SIGSTOP')
    process.kill(-child.pid, 'SIGINT')
    await new Promise((r) => setTimeout(r, 300))
    process.kill(-child.pid, 'SIGINT')
    expect(await child.code).toBe(130)
    expect(child.stderr()).toMatch(
      new RegExp(`SIGINT: stopped\\. .*go back to the queue; the jobs not done \\(${id}\\) stay queued`),
    )
    expect(child.stderr()).toContain('one more Ctrl-C quits at once')
    await waitFor(
      async () => {
        const waiting = await bullpen(['jobs', '--state', 'waiting', '--json'])
        return (JSON.parse(waiting.stdout) as { items: { id: string }[] }).items.some((j) => j.id === id)
      },
      'the job back in waiting',
      10_000,
    )
    expect(await readdir(out)).toEqual([])
    const cancel = await bullpen(['cancel', id])
    expect([cancel.code, cancel.stdout.trim()]).toEqual([0, `cancel ${id}: removed from the queue`])
    // A cancel that does nothing says why and fails, as retry and remove do.
    const again = await bullpen(['cancel', id, '999999'])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain(`cancel ${id}: job ${id} does not exist`)
    expect(again.stderr).toContain('cancel 999999: job 999999 does not exist')
    const clean = await bullpen(['clean', '--grace', '1h'])
    expect(clean.stdout.trim()).toBe('removed 0 completed and 0 failed job(s) older than 1h')
  })
})

describe('bullpen add / worker / jobs', () => {
  it('loses no job when Redis is killed and restarted mid-batch (AOF)', async () => {
    const src = join(work, 'batch')
    const out = join(work, 'out-batch')
    await mkdir(src)
    await mkdir(out)
    const files: string[] = []
    for (let i = 0; i < 5; i++) {
      const f = join(src, `clip-${i}.mp4`)
      await copyFile(join(media, 'video-only.mp4'), f)
      files.push(f)
    }
    const add = await bullpen(['add', ...files, '--to', 'mp4', '--resize', 'x360', '--out', out])
    expect(add.code, add.stderr).toBe(0)
    expect(add.stdout.match(/^queued /gm)).toHaveLength(5)

    const worker: ChildProcess = spawn(
      process.execPath,
      [cli, 'worker', '--concurrency', '1', '--name', 'w1'],
      {
        // The same data folder as `add`: this worker is the files' origin node, so it reads them in place.
        env: { ...process.env, BULLPEN_REDIS_URL: redis.url, BULLPEN_DATA_DIR: dataDir },
        stdio: 'ignore',
      },
    )
    try {
      const outputs = async (): Promise<string[]> =>
        (await readdir(out)).filter((f) => f.endsWith('.mp4') && !f.startsWith('.'))
      await waitFor(async () => (await outputs()).length >= 1, 'first output', 60_000)
      await redis.kill('SIGKILL')
      await new Promise((r) => setTimeout(r, 1500))
      await redis.restart()
      await waitFor(async () => (await outputs()).length === 5, 'all five outputs after the restart', 120_000)
      expect((await outputs()).sort()).toEqual(files.map((_, i) => `clip-${i}.mp4`))
      for (const f of await outputs()) {
        const p = await ffprobe(join(out, f))
        expect(p.streams.find((s) => s.codec_type === 'video')).toMatchObject({ width: 640, height: 360 })
      }
      // Exactly one completed job per file: nothing lost, nothing run twice.
      const jobs = await bullpen(['jobs', '--state', 'completed', '--json', '--limit', '100'])
      const page = JSON.parse(jobs.stdout) as {
        items: Array<{ name: string; result: { outputPath: string } }>
      }
      const mine = page.items.filter((j) => j.name.startsWith('clip-')).map((j) => j.result.outputPath)
      expect(mine.sort()).toEqual(files.map((_, i) => join(out, `clip-${i}.mp4`)))
    } finally {
      worker.kill('SIGTERM')
      await new Promise((r) => worker.once('exit', r))
    }
    expect((await readdir(out)).filter((f) => f.includes('.part'))).toEqual([])
  })

  it('reuses the probe made when the file was queued: the worker runs ffprobe only to verify its output', async () => {
    const src = join(work, 'probe-once')
    const out = join(work, 'out-probe-once')
    await mkdir(src)
    await mkdir(out)
    const input = join(src, 'probed-once.mp4')
    await copyFile(join(media, 'real-360p-17s.mp4'), input)
    // A real ffprobe behind a wrapper that writes down every call the worker makes.
    const calls = join(work, 'ffprobe-calls.txt')
    const shim = join(work, 'ffprobe-logged')
    const { stdout: realFfprobe } = await run('sh', ['-c', 'command -v ffprobe'])
    await writeFile(shim, `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${realFfprobe.trim()}' "$@"\n`, {
      mode: 0o755,
    })
    const add = await bullpen(['add', input, '--to', 'mkv', '--out', out])
    expect(add.code, add.stderr).toBe(0)
    const worker = spawn(process.execPath, [cli, 'worker', '--name', 'w-probe'], {
      env: { ...process.env, BULLPEN_REDIS_URL: redis.url, BULLPEN_DATA_DIR: dataDir, FFPROBE_PATH: shim },
      stdio: 'ignore',
    })
    try {
      await waitFor(async () => (await readdir(out)).includes('probed-once.mkv'), 'the mkv output', 60_000)
    } finally {
      worker.kill('SIGTERM')
      await new Promise((r) => worker.once('exit', r))
    }
    const logged = (await readFile(calls, 'utf8')).trim().split('\n')
    expect(logged.filter((l) => l.includes(input))).toEqual([])
    // The verification of the output (its temp file) went through the wrapper, so the wrapper was in use.
    expect(logged.filter((l) => l.includes(out)).length).toBeGreaterThanOrEqual(1)
    const p = await ffprobe(join(out, 'probed-once.mkv'))
    expect(p.streams.map((s) => s.codec_type).sort()).toEqual(['audio', 'video'])
  })

  it('fails a hostile job written straight into Redis without starting ffmpeg', async () => {
    const queue = new Bull('transcode', redis.url, { prefix: 'bullpen' })
    const hostile = [
      { v: 1, outputDir: '/tmp/../../etc', extra: 1 },
      {
        v: 1,
        input: { path: join(media, 'audio.mp3'), size: 1, mtimeMs: 0 },
        spec: { format: 'mp4', resize: { width: 100000 } },
      },
      { v: 1, spec: { format: 'mp4', ffmpegArgs: ['-f', 'null'] } },
    ]
    const ids: string[] = []
    for (const data of hostile) ids.push(String((await queue.add(data, { attempts: 3 })).id))
    const worker = spawn(process.execPath, [cli, 'worker', '--name', 'w2'], {
      env: { ...process.env, BULLPEN_REDIS_URL: redis.url, BULLPEN_DATA_DIR: join(work, 'worker2-data') },
      stdio: 'ignore',
    })
    try {
      await waitFor(
        async () => (await queue.getFailedCount()) >= ids.length + 0,
        'hostile jobs failed',
        30_000,
      )
      for (const id of ids) {
        const job = await queue.getJob(id)
        expect(job?.failedReason).toMatch(/invalid|must|unrecognized|required/i)
        expect(job?.attemptsMade).toBe(1)
      }
    } finally {
      worker.kill('SIGTERM')
      await new Promise((r) => worker.once('exit', r))
      await queue.close()
    }
  })
})

describe('bullpen serve', () => {
  it('serves the UI and the dashboard on loopback, and refuses other hosts without a token', async () => {
    const { freePort } = await import('../helpers/redis')
    const port = await freePort()
    const child = spawn(process.execPath, [cli, 'serve', '--port', String(port), '--no-work'], {
      env: { ...process.env, BULLPEN_REDIS_URL: redis.url, BULLPEN_DATA_DIR: join(work, 'serve-data') },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    try {
      await waitFor(() => out.includes('serving'), 'serve ready', 30_000)
      const page = await fetch(`http://127.0.0.1:${port}/`)
      expect(page.status).toBe(200)
      expect(await page.text()).toMatch(/<div id="root">/)
      expect((await fetch(`http://127.0.0.1:${port}/admin/queues`)).status).toBe(200)
    } finally {
      child.kill('SIGINT')
      await new Promise((r) => child.once('exit', r))
    }
    const open = await bullpen(['serve', '--host', '0.0.0.0', '--port', String(port)])
    expect(open.code).toBe(2) // a usage error, as documented
    expect(open.stderr).toMatch(/without a token/)
    const keep = await bullpen(['serve', '--port', String(port), '--inbox-keep', 'soon'])
    expect(keep.code).toBe(2)
    expect(keep.stderr).toMatch(/--inbox-keep soon: use e\.g\. 7d or 12h/)
  })
})
