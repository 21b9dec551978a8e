/**
 * The pool on one machine, as separate processes with separate data folders and no shared storage: an origin that
 * queues six real files and serves them (`bullpen add --wait`, it does not work itself) and two workers
 * (`bullpen worker`), all on a private redis-server with AOF. One worker is SIGKILLed mid-job and Redis is
 * SIGKILLed and restarted once. Every file comes out exactly once in the origin's folder (checked with ffprobe),
 * the killed worker's job is finished by the other worker, and no temp file is left on any node.
 */
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { connect } from 'node:net'
import { join, resolve } from 'node:path'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { probeInput } from '../../src/main/core/ffmpeg'
import {
  killAll,
  killGroup,
  type Proc,
  procs,
  repoRoot,
  startBullpen,
  tail,
  until,
} from '../helpers/processes'
import { partFiles } from '../helpers/files'
import { type RedisServerHandle, startRedisServer } from '../helpers/redis'

const media = resolve(repoRoot, '..', 'shared', 'media')

let redis: RedisServerHandle
let dir: string

/** Starts `bullpen <args>`, with short locks so a killed worker's job is noticed in seconds (the defaults suit long encodes). */
function bullpen(name: string, args: string[]): Proc {
  return startBullpen(name, args, { BULLPEN_LOCK_DURATION_MS: '4000', BULLPEN_STALLED_INTERVAL_MS: '2000' })
}

/** One raw HTTP request (exact bytes); the status and how many body bytes came back. */
function rawHttp(port: number, text: string): Promise<{ status: number; bodyBytes: number }> {
  return new Promise((resolveReq, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text))
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', reject)
    s.on('close', () => {
      const all = Buffer.concat(chunks).toString('latin1')
      const cut = all.indexOf('\r\n\r\n')
      resolveReq({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(all)?.[1] ?? 0),
        bodyBytes: cut < 0 ? 0 : all.length - cut - 4,
      })
    })
  })
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bullpen-pool-'))
  redis = await startRedisServer()
})

afterAll(async () => {
  // Keep every process's output of a failed run for the post-mortem.
  if (process.env['BULLPEN_POOL_TEST_LOGS']) {
    const { writeFile } = await import('node:fs/promises')
    for (const p of procs) {
      await writeFile(
        join(process.env['BULLPEN_POOL_TEST_LOGS'], `${p.name}.log`),
        [...p.out, ...p.err].join('\n'),
      )
    }
  }
  await killAll()
  await redis?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('pool of separate processes without shared storage', () => {
  it('transcodes six files on two workers through a worker crash and a Redis restart, once each', async () => {
    const files = join(dir, 'origin-files')
    await mkdir(files)
    const inputs: Array<[string, string]> = [
      ['real-360p-17s.mp4', 'one.mp4'],
      ['real-360p-17s.mp4', 'two.mp4'],
      ['real-360p-17s.mp4', 'three.mp4'],
      ['video-only.mp4', 'four.mp4'],
      ["te[s]t_ video ' _ .flv", "five [x] ' .flv"],
      ['phone-rotated-vfr-noaudio.mp4', 'six.mp4'],
    ]
    for (const [src, dest] of inputs) await copyFile(join(media, src), join(files, dest))
    const global = (data: string) => ['--redis', redis.url, '--data-dir', join(dir, data)]

    const w1 = bullpen('w1', [...global('w1'), 'worker', '--name', 'w1', '--concurrency', '1'])
    let w2 = bullpen('w2', [...global('w2'), 'worker', '--name', 'w2', '--concurrency', '1'])
    await until(
      () => w1.out.some((l) => l.includes('ready')),
      () => `w1 to start\n${tail(w1)}`,
      30_000,
    )
    await until(
      () => w2.out.some((l) => l.includes('ready')),
      () => `w2 to start\n${tail(w2)}`,
      30_000,
    )
    const w2Id = (await readFile(join(dir, 'w2', 'node-id'), 'utf8')).trim()

    const origin = bullpen('origin', [
      ...global('origin'),
      'add',
      '--wait',
      '--to',
      'mp4',
      '--resize',
      'x120',
      ...inputs.map(([, d]) => join(files, d)),
    ])

    const r = new Redis(redis.url, { maxRetriesPerRequest: null })
    r.on('error', () => undefined)
    try {
      // A 17 s file running on w2: kill w2 (and its ffmpeg) there and then.
      let victim = ''
      await until(
        async () => {
          for (const id of await r.lrange('bullpen:transcode:active', 0, -1)) {
            const [node, data] = await r.hmget(`bullpen:transcode:${id}`, 'bpNode', 'data')
            if (node === w2Id && /\/(one|two|three)\.mp4"/.test(data ?? '')) {
              victim = id
              return true
            }
          }
          return false
        },
        () => `a long job to run on w2\n${tail(w1)}\n${tail(w2)}\n${tail(origin)}`,
        60_000,
        100,
      )
      // The origin's real file service refuses what is not a job's token holder: 403, no bytes.
      const originId = (await readFile(join(dir, 'origin', 'node-id'), 'utf8')).trim()
      const url = await r.hget(`bullpen:transcode:pool:node:${originId}`, 'fileServiceUrl')
      const port = Number(new URL(url ?? 'http://x:1').port)
      for (const head of [
        `GET /jobs/${victim}/input HTTP/1.1\r\nHost: x\r\n`,
        `GET /jobs/${victim}/input HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'A'.repeat(43)}\r\n`,
        `GET /jobs/../../etc/passwd HTTP/1.1\r\nHost: x\r\n`,
        `GET /jobs/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n`,
      ]) {
        expect(await rawHttp(port, `${head}Connection: close\r\n\r\n`), head).toEqual({
          status: 403,
          bodyBytes: 0,
        })
      }

      await new Promise((res) => setTimeout(res, 300))
      killGroup(w2, 'SIGKILL')
      await w2.exited

      // Redis dies too, and comes back on its AOF.
      await redis.kill('SIGKILL')
      await new Promise((res) => setTimeout(res, 500))
      await redis.restart()

      // The stalled job goes back to the queue and the other worker completes it.
      await until(
        async () => (await r.hget(`bullpen:transcode:${victim}`, 'finishedOn')) !== null,
        () => `job ${victim} to be finished by w1\n${tail(w1)}\n${tail(origin)}`,
        90_000,
        200,
      )
      const victimResult = JSON.parse(
        (await r.hget(`bullpen:transcode:${victim}`, 'returnvalue')) ?? '{}',
      ) as {
        node?: string
      }
      expect(victimResult.node).toBe('w1')

      // The killed worker left its partial files of the job in its scratch folder; when w2 comes back (same data
      // folder) it empties it at start (it may then take a new job at once: only the old job's files count).
      const leftBehind = await readdir(join(dir, 'w2', 'scratch'))
      w2 = bullpen('w2-again', [...global('w2'), 'worker', '--name', 'w2', '--concurrency', '1'])
      await until(
        () => w2.out.some((l) => l.includes('ready')),
        () => `w2 to restart\n${tail(w2)}`,
        30_000,
      )
      expect(leftBehind.filter((n) => n !== victim)).toEqual([])
      expect(await readdir(join(dir, 'w2', 'scratch'))).not.toContain(victim)

      // `bullpen nodes` from a fourth data folder: both workers, with w1's throughput (the origin may be done).
      const nodesCmd = bullpen('nodes', [...global('observer'), 'nodes', '--json'])
      expect(await nodesCmd.exited, tail(nodesCmd)).toBe(0)
      const listed = JSON.parse(nodesCmd.out.join('')) as Array<{
        name: string
        kind: string
        completedLastHour: number
        isSelf: boolean
      }>
      expect(
        listed
          .filter((n) => n.kind === 'worker')
          .map((n) => n.name)
          .sort(),
      ).toEqual(['w1', 'w2'])
      expect(listed.find((n) => n.name === 'w1')?.completedLastHour).toBeGreaterThanOrEqual(1)
      expect(listed.some((n) => n.isSelf)).toBe(false)

      const code = await Promise.race([
        origin.exited,
        new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 120_000)),
      ])
      expect(code, tail(origin)).toBe(0)

      // Exactly one output per input, each a real H.264 file 120 pixels high.
      const done = origin.out.filter((l) => l.startsWith('done '))
      expect(done, tail(origin)).toHaveLength(6)
      expect(new Set(done.map((l) => l.split(' ')[1])).size).toBe(6)
      const names = (await readdir(files)).sort()
      const outputs = names.filter((n) => !inputs.some(([, d]) => d === n))
      expect(outputs.sort()).toEqual(
        [
          "five [x] ' .mp4",
          'four (1).mp4',
          'one (1).mp4',
          'six (1).mp4',
          'three (1).mp4',
          'two (1).mp4',
        ].sort(),
      )
      for (const o of outputs) {
        const info = await probeInput(join(files, o))
        expect(info.video?.codec, o).toBe('h264')
        // As displayed (the phone clip is rotated): 120 pixels high.
        expect(info.video?.displayHeight, o).toBe(120)
        expect(info.durationSec, o).toBeGreaterThan(1)
      }

      // The queue agrees: six completed, none failed.
      const completed = await r.zrange('bullpen:transcode:completed', 0, -1)
      expect(completed).toHaveLength(6)
      expect(await r.zcard('bullpen:transcode:failed')).toBe(0)
      const byNode = await Promise.all(
        completed.map(
          async (id) =>
            (
              JSON.parse((await r.hget(`bullpen:transcode:${id}`, 'returnvalue')) ?? '{}') as {
                node?: string
              }
            ).node,
        ),
      )
      // Every job ran on a worker (the origin does not work); w2 had the victim until it was killed.
      expect(
        byNode.every((n) => n === 'w1' || n === 'w2'),
        JSON.stringify(byNode),
      ).toBe(true)
    } finally {
      r.disconnect()
    }

    // `add` without --wait: fine when a node of its data folder serves (w1's), a note when none does.
    const extra = join(files, 'extra.flv')
    await copyFile(join(media, "te[s]t_ video ' _ .flv"), extra)
    const served = bullpen('add-served', [...global('w1'), 'add', '--to', 'mkv', extra])
    expect(await served.exited, tail(served)).toBe(0)
    expect(served.err.join('\n')).not.toContain('no Bullpen node')
    const lonely = bullpen('add-lonely', [...global('lonely'), 'add', '--to', 'webm', extra])
    expect(await lonely.exited, tail(lonely)).toBe(0)
    expect(lonely.err.join('\n')).toContain('no Bullpen node with this data folder is running')
    // w1 is the origin of the first one and does it; the second waits for its origin (never started).
    await until(
      async () => (await readdir(files)).includes('extra.mkv'),
      () => `extra.mkv\n${tail(w1)}\n${tail(w2)}\n${tail(served)}`,
      30_000,
    )
    // The job whose origin never runs waits (handed back, no attempt counted) instead of failing.
    const lonelyId = /^queued (\d+) /m.exec(lonely.out.join('\n'))?.[1] ?? ''
    const r2 = new Redis(redis.url, { maxRetriesPerRequest: null })
    try {
      await until(
        async () =>
          /waiting for node/.test((await r2.hget(`bullpen:transcode:${lonelyId}`, 'failedReason')) ?? ''),
        () => `job ${lonelyId} to be handed back\n${tail(w1)}\n${tail(w2)}`,
        30_000,
      )
      expect(await r2.hget(`bullpen:transcode:${lonelyId}`, 'attemptsMade')).toBe('0')
      expect(await r2.zscore('bullpen:transcode:failed', lonelyId)).toBeNull()
      expect(await r2.hget(`bullpen:transcode:${lonelyId}`, 'finishedOn')).toBeNull()
    } finally {
      r2.disconnect()
    }

    // No temp file anywhere: not at the origin, not in any worker's data folder.
    killGroup(w1, 'SIGTERM')
    killGroup(w2, 'SIGTERM')
    await Promise.all([w1.exited, w2.exited])
    expect(await partFiles(dir)).toEqual([])
    expect(await readdir(join(dir, 'w1', 'scratch'))).toEqual([])
    expect(await readdir(join(dir, 'w2', 'scratch'))).toEqual([])
  })
})
