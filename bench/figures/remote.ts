/**
 * Figure 5 — remote input: a ~200 MB input made into M4A (the AAC track is stream-copied, so ffmpeg only demuxes and
 * remuxes: the transfer is what costs), by a node that must fetch it from the origin over the pool's file service
 * against the origin doing it from its own disk. Ratio = job time (Bull's processedOn → finishedOn) remote ÷ local.
 */
import { join } from 'node:path'
import { cli, cliEnv, cliOk, cliPath, nodeDir, qkey, tmpRoot } from '../lib/env'
import { flush, type BenchContext, type FigureResult } from '../lib/figure'
import { bigClip, freshDir, links } from '../lib/media'
import { background } from '../lib/proc'
import { fmtRatio, fmtSeconds, ratios, spread } from '../lib/stats'
import { stat } from 'node:fs/promises'
import { encodeFor, type Encode } from '../lib/commands'
import { startPlainHttp, type PlainHttp } from '../lib/plainHttp'
import { run } from '../lib/proc'

async function jobSeconds(ctx: BenchContext, id: string): Promise<number> {
  const [p, f] = await ctx.redis.hmget(qkey(id), 'processedOn', 'finishedOn')
  if (!p || !f) throw new Error(`job ${id} has no processedOn/finishedOn`)
  return (Number(f) - Number(p)) / 1000
}

export async function remoteInput(ctx: BenchContext): Promise<FigureResult> {
  const mb = 200
  const reps = ctx.reps
  const [input] = await links(join(tmpRoot, 'f5', 'in'), [await bigClip(mb)], 1)
  const size = (await stat(input as string)).size
  // Node A is the origin (its own disk); node B shares no folder with it and must fetch over HTTP.
  const dirA = await nodeDir('f5-a')
  const dirB = await nodeDir('f5-b')
  const envA = cliEnv(ctx.redisUrl, dirA)
  const local: number[] = []
  const remote: number[] = []
  const fetchMs: number[] = []
  const routes: string[] = []
  const originRequests: number[] = []
  const streamedBytes: number[] = []
  // Reference sides (no Bullpen): the same ffmpeg command reading the file from disk, over plain HTTP, and through a
  // plain proxy — what loopback HTTP itself costs ffmpeg here.
  const refFile: number[] = []
  const refHttp: number[] = []
  const refProxy: number[] = []
  const encode: Encode = await encodeFor(input as string, 'm4a')
  const plain: PlainHttp = await startPlainHttp(input as string)
  const runReference = async (rep: number): Promise<void> => {
    const out = await freshDir('f5', `out-ref-${rep}`)
    const [cmd, ...args] = encode.argv
    const at = args.indexOf(`file:${encode.input}`)
    const timed = async (url: string, name: string): Promise<number> => {
      const a = [...args]
      a[at] = url
      const r = await run(cmd as string, [...a, `file:${join(out, `${name}.${encode.extension}`)}`])
      if (r.code !== 0) throw new Error(`reference ffmpeg (${name}) failed: ${r.stderr.slice(-400)}`)
      return r.ms / 1000
    }
    refFile.push(await timed(`file:${encode.input}`, 'file'))
    refHttp.push(await timed(plain.direct, 'http'))
    refProxy.push(await timed(plain.proxied, 'proxy'))
  }

  const runLocal = async (rep: number): Promise<void> => {
    await flush(ctx)
    const out = await freshDir('f5', `out-local-${rep}`)
    const r = await cliOk(['transcode', '--preset', 'm4a', '--out', out, input as string], envA)
    const id = /^queued (\S+) /m.exec(r.stdout)?.[1]
    if (!id) throw new Error(`no job id in: ${r.stdout}`)
    local.push(await jobSeconds(ctx, id))
  }
  const runRemote = async (rep: number): Promise<void> => {
    await flush(ctx)
    const out = await freshDir('f5', `out-remote-${rep}`)
    const w = background(
      process.execPath,
      [cliPath, '-v', 'worker', '--concurrency', '1', '--name', 'remote'],
      {
        env: cliEnv(ctx.redisUrl, dirB),
      },
    )
    try {
      await w.waitFor(/ready/, 60_000)
      // `add --wait` keeps the origin up (file service on) until the job is done.
      const r = await cli(['add', '--wait', '--preset', 'm4a', '--out', out, input as string], envA)
      if (r.code !== 0)
        throw new Error(`add --wait exited ${r.code}: ${r.stderr.slice(-500)}\n${w.output().slice(-800)}`)
      const id = /^queued (\S+) /m.exec(r.stdout)?.[1]
      if (!id) throw new Error(`no job id in: ${r.stdout}`)
      // Streamed (the encode reads the input as it arrives) or, for a job without its probe, fetched first.
      const log = w.output()
      const streamed = /^.*input streamed from the origin.*$/m.exec(log)?.[0]
      const fetched = /"ms":(\d+)[^\n]*input fetched from the origin/.exec(log)
      if (streamed) {
        const field = (k: string): number => Number(new RegExp(`"${k}":(\\d+)`).exec(streamed)?.[1] ?? NaN)
        routes.push('stream')
        fetchMs.push(field('ms'))
        originRequests.push(field('originRequests'))
        streamedBytes.push(field('bytes'))
      } else if (fetched) {
        routes.push('fetch')
        fetchMs.push(Number(fetched[1]))
      } else {
        throw new Error(`the remote node did not fetch the input:\n${log.slice(-800)}`)
      }
      remote.push(await jobSeconds(ctx, id))
    } finally {
      await w.stop('SIGTERM')
    }
  }

  // Warm-up, not counted: the first local run of a session was seen 5–7× slower than the next ones.
  await runLocal(-1)
  local.pop()
  try {
    for (let rep = 0; rep < reps; rep++) {
      if (rep % 2 === 0) {
        await runLocal(rep)
        await runRemote(rep)
        await runReference(rep)
      } else {
        await runReference(rep)
        await runRemote(rep)
        await runLocal(rep)
      }
      ctx.log(
        `  rep ${rep + 1}/${reps}: local ${local.at(-1)?.toFixed(2)} s, remote ${remote.at(-1)?.toFixed(2)} s (${routes.at(-1)} ${fetchMs.at(-1)} ms); ` +
          `plain ffmpeg: file ${refFile.at(-1)?.toFixed(2)} s, http ${refHttp.at(-1)?.toFixed(2)} s, proxied ${refProxy.at(-1)?.toFixed(2)} s`,
      )
    }
  } finally {
    await plain.stop()
  }
  await flush(ctx)
  const httpFloor = spread(ratios(refHttp, refFile))
  const proxyFloor = spread(ratios(refProxy, refFile))
  const r = spread(ratios(remote, local))
  const mbps = fetchMs.map((ms) => size / 1e6 / (ms / 1000))
  const streaming = routes.length > 0 && routes.every((x) => x === 'stream')
  return {
    id: 5,
    title: 'Remote input',
    ratio: r,
    ratioMeaning: 'job time on a node that fetches the input ÷ on the origin reading its own disk',
    target: '≤ 1.3×',
    pass: r.median <= 1.3,
    details: [
      [
        'input',
        `${(size / 1e6).toFixed(0)} MB real H.264/AAC clip (looped), preset m4a: the AAC track stream-copied`,
      ],
      ['origin, own disk', fmtSeconds(spread(local))],
      ['other node, fetched over HTTP', fmtSeconds(spread(remote))],
      streaming
        ? [
            'input streamed into ffmpeg',
            `${fmtSeconds(spread(fetchMs.map((x) => x / 1000)))} from relay start to the encode's end ` +
              `(${Math.round(spread(mbps).median)} MB/s), ${spread(streamedBytes.map((b) => b / 1e6)).median.toFixed(0)} MB ` +
              `read by ffmpeg in ${spread(originRequests).median} origin request(s)`,
          ]
        : [
            'fetch alone',
            `${fmtSeconds(spread(fetchMs.map((x) => x / 1000)))}, ${Math.round(spread(mbps).median)} MB/s`,
          ],
      [
        'no Bullpen: plain ffmpeg, same command',
        `from disk ${fmtSeconds(spread(refFile))}; over plain loopback HTTP ${fmtSeconds(spread(refHttp))} ` +
          `(${fmtRatio(httpFloor)} of disk); through a plain proxy ${fmtSeconds(spread(refProxy))} (${fmtRatio(proxyFloor)})`,
      ],
    ],
    notes: [
      'The "no Bullpen" line is the floor of this route on this machine: a minimal Node file server (and a minimal ' +
        'Node proxy in front of it, the shape of origin → relay → ffmpeg) with the very command Bullpen runs. A stream ' +
        'copy is all I/O, so reading it over loopback HTTP already costs ffmpeg that much more than reading the disk, ' +
        'before any transfer token, check or output upload.',
      'Both nodes run on this one machine, so "remote" goes over loopback: the figure shows Bullpen\'s own transfer cost ' +
        "(HTTP, checksums, scratch files, upload of the output), not a network's.",
      'The fetching node is a `bullpen worker` with its own data folder and no shared folder; the origin is ' +
        '`bullpen add --wait` (it serves its files while it waits).',
      'The worker streams the input into ffmpeg through a loopback relay as it arrives (the job carries its ' +
        'queue-time probe); `BULLPEN_POOL_STREAM=0` on the worker measures the older download-then-encode route.',
    ],
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 5`,
    raw: {
      bytes: size,
      localSec: local,
      remoteSec: remote,
      fetchMs,
      routes,
      originRequests,
      streamedBytes,
      plainFileSec: refFile,
      plainHttpSec: refHttp,
      plainProxySec: refProxy,
    },
  }
}
