/**
 * A streamed remote job with separate processes and no shared storage: an origin (`bullpen add --wait`) and a worker
 * (`bullpen worker`, whose ffmpeg is a wrapper that writes down its argv and environment) on a private redis-server.
 * The origin is SIGKILLed while the worker's ffmpeg is reading the input through the relay: the job is handed back
 * (delayed, no attempt counted, "does not answer"), the worker's ffmpeg is gone, nothing is left in its scratch
 * folder or beside the input. When the origin is back (the same data folder) the job is streamed again and its
 * output, checked with ffprobe, lands beside the input. The job's token never appears in ffmpeg's argv or
 * environment.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import Bull from 'bull'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ffmpegPaths, probeInput } from '../../src/main/core/ffmpeg'
import { partFiles, recordingFfmpeg } from '../helpers/files'
import { killAll, killGroup, type Proc, repoRoot, startBullpen, tail, until } from '../helpers/processes'
import { type RedisServerHandle, startRedisServer } from '../helpers/redis'

const media = resolve(repoRoot, '..', 'shared', 'media')

let redis: RedisServerHandle
let dir: string

function bullpen(name: string, args: string[], env: Record<string, string> = {}): Proc {
  return startBullpen(name, args, {
    BULLPEN_LOCK_DURATION_MS: '4000',
    BULLPEN_STALLED_INTERVAL_MS: '2000',
    ...env,
  })
}

/** Processes whose parent is `pid`, with their command names (from /proc). */
async function childrenOf(pid: number): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // pid (comm) state ppid …; comm may hold spaces or parentheses: split after the last ')'.
    const close = stat.lastIndexOf(')')
    const ppid = Number(stat.slice(close + 2).split(' ')[1])
    if (ppid === pid) found.push(stat.slice(stat.indexOf('(') + 1, close))
  }
  return found
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bullpen-stream-'))
  redis = await startRedisServer()
})

afterAll(async () => {
  await killAll()
  await redis?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('a streamed remote job, origin killed mid-stream', () => {
  it('is handed back without debris or orphan ffmpeg, and completes when the origin is back', async () => {
    const files = join(dir, 'origin-files')
    await mkdir(files)
    // 7 × the 17 s clip, stream-copied (~21 MB, its moov at the end): an encode of several seconds, and more than
    // the socket buffers between origin, relay and ffmpeg hold (so the origin dies mid-stream, not after it).
    const input = join(files, 'long clip.mp4')
    const real = ffmpegPaths()
    await promisify(execFile)(real.ffmpeg, [
      '-v',
      'error',
      '-stream_loop',
      '6',
      '-i',
      join(media, 'real-360p-17s.mp4'),
      '-c',
      'copy',
      '-y',
      input,
    ])
    const { wrapper, argvLog } = await recordingFfmpeg(dir, real.ffmpeg)
    const global = (data: string) => ['--redis', redis.url, '--data-dir', join(dir, data)]

    const w = bullpen('w', [...global('w'), 'worker', '--name', 'w', '--concurrency', '1'], {
      FFMPEG_PATH: wrapper,
      FFPROBE_PATH: real.ffprobe,
    })
    await until(
      () => w.out.some((l) => l.includes('ready')),
      () => `w to start\n${tail(w)}`,
      30_000,
    )
    const addArgs = [...global('origin'), 'add', '--wait', '--to', 'mp4', '--resize', 'x120', input]
    const origin = bullpen('origin', addArgs)
    const r = new Redis(redis.url, { maxRetriesPerRequest: null })
    r.on('error', () => undefined)
    const q = new Bull('transcode', { redis: redis.url, prefix: 'bullpen' })
    q.on('error', () => undefined)
    try {
      // The worker's ffmpeg is reading the relay: kill the origin there and then.
      await until(
        () => w.err.some((l) => l.includes('ffmpeg started')),
        () => `the worker's ffmpeg to start\n${tail(w)}\n${tail(origin)}`,
        60_000,
        20,
      )
      expect(w.err.some((l) => l.includes('streaming the input from the origin'))).toBe(true)
      killGroup(origin, 'SIGKILL')
      await origin.exited
      const id = /^queued (\S+) /m.exec(origin.out.join('\n'))?.[1] ?? ''
      expect(id).not.toBe('')
      const token = await r.get(`bullpen:transcode:pool:token:${id}`)
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)

      // Handed back: delayed, waiting for the origin, no attempt counted.
      await until(
        async () =>
          /does not answer|waiting for node/.test(
            (await r.hget(`bullpen:transcode:${id}`, 'failedReason')) ?? '',
          ),
        () => `job ${id} to be handed back\n${tail(w)}`,
        30_000,
      )
      const job = await q.getJob(id)
      expect(await job?.getState()).toBe('delayed')
      expect(job?.attemptsMade).toBe(0)
      // No ffmpeg left under the worker, nothing in its scratch folder, no partial beside the input.
      expect(await childrenOf(w.child.pid as number)).not.toContain('ffmpeg')
      expect(await readdir(join(dir, 'w', 'scratch'))).toEqual([])
      expect(await readdir(files)).toEqual(['long clip.mp4'])

      // The origin is back (same data folder: same node, same files); the job is run again, streamed.
      const back = bullpen('origin-again', addArgs)
      await until(
        () => back.out.some((l) => l.includes('already queued')),
        () => `the origin to follow its job\n${tail(back)}`,
        30_000,
      )
      await job?.promote().catch(() => undefined)
      const code = await Promise.race([
        back.exited,
        new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 120_000)),
      ])
      expect(code, `${tail(back)}\n${tail(w)}`).toBe(0)
      const out = join(files, 'long clip (1).mp4')
      const info = await probeInput(out)
      expect(info.video?.codec).toBe('h264')
      expect(info.video?.displayHeight).toBe(120)
      expect(info.durationSec).toBeGreaterThan(115)
      const done = await q.getJob(id)
      expect(await done?.getState()).toBe('completed')
      expect((done?.returnvalue as { node?: string } | undefined)?.node).toBe('w')
      expect(w.err.filter((l) => l.includes('input streamed from the origin')).length).toBeGreaterThanOrEqual(
        1,
      )

      // ffmpeg only ever saw relay URLs: never the token, never the origin's file service.
      const argv = (await readFile(argvLog, 'utf8')).split('\n')
      const urls = argv.filter((a) => /^[a-z]+:\/\//.test(a))
      expect(urls.length).toBeGreaterThanOrEqual(2)
      for (const u of urls) expect(u).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[a-f0-9]{32}\/long%20clip\.mp4$/)
      const everything = `${argv.join('\n')}\n${await readFile(`${argvLog}.env`, 'utf8')}`
      expect(everything).not.toContain(token as string)
      expect(everything).not.toMatch(/Bearer|\/jobs\//)
    } finally {
      await q.close().catch(() => undefined)
      r.disconnect()
    }

    killGroup(w, 'SIGTERM')
    await w.exited
    expect(await partFiles(dir)).toEqual([])
    expect(await readdir(join(dir, 'w', 'scratch'))).toEqual([])
    expect((await readdir(files)).sort()).toEqual(['long clip (1).mp4', 'long clip.mp4'])
  })
})
