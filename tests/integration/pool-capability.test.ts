/**
 * Capability routing by check-and-hand-back, with separate processes: a worker whose ffmpeg lacks an encoder the
 * job needs leaves the job (no attempt counted) while a live pool node has that encoder, and a worker that has it
 * completes it.
 */
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ffmpegPaths, probeInput } from '../../src/main/core/ffmpeg'
import { killAll, repoRoot, startBullpen, tail, until } from '../helpers/processes'
import { type RedisServerHandle, startRedisServer } from '../helpers/redis'

const media = resolve(repoRoot, '..', 'shared', 'media')

let redis: RedisServerHandle
let dir: string
const bullpen = startBullpen

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bullpen-cap-'))
  redis = await startRedisServer()
})

afterAll(async () => {
  await killAll()
  await redis?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('capability routing', () => {
  it('leaves a job needing an encoder this ffmpeg lacks to a node that has it, without burning attempts', async () => {
    // An ffmpeg that does everything the real one does but has no MP3 encoder (it hides it from -encoders).
    const realFfmpeg = ffmpegPaths().ffmpeg
    const wrapper = join(dir, 'ffmpeg-without-mp3')
    await writeFile(
      wrapper,
      `#!/bin/sh\nfor a in "$@"; do\n  if [ "$a" = "-encoders" ]; then\n    "${realFfmpeg}" "$@" | grep -v libmp3lame\n    exit 0\n  fi\ndone\nexec "${realFfmpeg}" "$@"\n`,
    )
    await chmod(wrapper, 0o755)
    const files = join(dir, 'files')
    await mkdir(files)
    await copyFile(join(media, 'audio-only.mp4'), join(files, 'song.mp4'))
    const global = (data: string) => ['--redis', redis.url, '--data-dir', join(dir, data)]

    const lame = bullpen('lame', [...global('lame'), 'worker', '--name', 'lame'], { FFMPEG_PATH: wrapper })
    await until(
      () => lame.out.some((l) => l.includes('ready')),
      () => tail(lame),
      30_000,
    )

    // A live pool node that has libmp3lame (written straight into the registry; it takes no jobs itself).
    const r = new Redis(redis.url, { maxRetriesPerRequest: null })
    const ghostKey = 'bullpen:transcode:pool:node:ghost-1'
    await r.hset(ghostKey, {
      id: 'ghost-1',
      name: 'ghost',
      host: 'elsewhere',
      kind: 'worker',
      concurrency: '1',
      active: '1',
      paused: '0',
      ffmpegVersion: 'test',
      encoders: JSON.stringify(['libx264', 'aac', 'libmp3lame']),
      fileServiceUrl: '',
      sharedFolders: '[]',
      mode: 'pool',
      startedAt: String(Date.now()),
      lastSeen: String(Date.now()),
    })
    await r.pexpire(ghostKey, 120_000)
    await r.sadd('bullpen:transcode:pool:nodes', 'ghost-1')

    const origin = bullpen('origin', [
      ...global('origin'),
      'add',
      '--wait',
      '--to',
      'mp3',
      join(files, 'song.mp4'),
    ])
    try {
      await until(
        () => origin.out.some((l) => l.startsWith('queued ')),
        () => tail(origin),
        30_000,
      )
      const id = /^queued (\d+) /.exec(origin.out.find((l) => l.startsWith('queued ')) ?? '')?.[1] ?? ''
      await until(
        async () => /left for ghost/.test((await r.hget(`bullpen:transcode:${id}`, 'failedReason')) ?? ''),
        () => `the lame worker to hand the job back\n${tail(lame)}\n${tail(origin)}`,
        30_000,
      )
      expect(await r.hget(`bullpen:transcode:${id}`, 'attemptsMade')).toBe('0')

      // The ghost goes; a real worker with the encoder joins and completes the job.
      await r.del(ghostKey)
      await r.srem('bullpen:transcode:pool:nodes', 'ghost-1')
      const full = bullpen('full', [...global('full'), 'worker', '--name', 'full'])
      const code = await Promise.race([
        origin.exited,
        new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 90_000)),
      ])
      expect(code, `${tail(origin)}\n${tail(lame)}\n${tail(full)}`).toBe(0)
      const result = JSON.parse((await r.hget(`bullpen:transcode:${id}`, 'returnvalue')) ?? '{}') as {
        node?: string
        outputPath?: string
      }
      expect(result.node).toBe('full')
      expect(result.outputPath).toBe(join(files, 'song.mp3'))
      const info = await probeInput(join(files, 'song.mp3'))
      expect(info.audio?.codec).toBe('mp3')
      expect(info.video).toBeUndefined()
      expect(await r.hget(`bullpen:transcode:${id}`, 'attemptsMade')).toBe('0')
    } finally {
      r.disconnect()
    }
  })
})
