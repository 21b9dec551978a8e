/**
 * Figure 4 — pool scaling: 1, 2 and 3 `bullpen worker` nodes (each its own process and data folder, concurrency 1)
 * on jobs whose encode is paced by ffmpeg's `-readrate`, so that this machine's two cores are not what limits them.
 * Ratio = throughput of 3 nodes ÷ throughput of 1 node (makespans from Bull's processedOn / finishedOn).
 *
 * Pacing without touching Bullpen's code: the workers are given (FFMPEG_PATH) a small shim that runs the real
 * ffmpeg with `-readrate R` in front of its input; the jobs are M4A from AAC (a stream copy), so a job costs almost
 * no CPU and lasts clip length ÷ R.
 */
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cliEnv, cliOk, cliPath, ff, jobTimes, nodeDir, qkey, tmpRoot, waitDrained } from '../lib/env'
import { flush, type BenchContext, type FigureResult } from '../lib/figure'
import { audioClip, freshDir, links } from '../lib/media'
import { background, type Background } from '../lib/proc'
import { fmtRatio, fmtSeconds, ratios, spread } from '../lib/stats'

const NODES = [1, 2, 3]

async function paceShim(rate: number): Promise<string> {
  const dir = await freshDir('f4', 'shim')
  const shim = join(dir, 'ffmpeg')
  // Inserts "-readrate <rate>" before the first "-i"; every other call (-version, -encoders…) passes through.
  await writeFile(
    shim,
    `#!/bin/bash
args=(); seen=0
for a in "$@"; do
  if [ $seen = 0 ] && [ "$a" = "-i" ]; then args+=(-readrate ${rate}); seen=1; fi
  args+=("$a")
done
exec ${ff.ffmpeg} "\${args[@]}"
`,
  )
  await chmod(shim, 0o755)
  return shim
}

export async function poolScaling(ctx: BenchContext): Promise<FigureResult> {
  const jobs = ctx.quick ? 6 : 12
  const clipSecs = 4
  // Quick: 1 s per job; full: 4 s per job (real time). Jobs much longer than Bullpen's per-job work (an
  // ffprobe, Redis) keep this a measure of the pool, not of that work competing for the two cores.
  const rate = ctx.quick ? 4 : 1
  const reps = ctx.quick ? Math.min(ctx.reps, 2) : ctx.reps
  const shim = await paceShim(rate)
  const files = await links(join(tmpRoot, 'f4', 'in'), [await audioClip(clipSecs)], jobs)
  const times = new Map<number, number[]>(NODES.map((n) => [n, []]))

  const runPool = async (nodes: number, rep: number): Promise<void> => {
    await flush(ctx)
    const out = await freshDir('f4', `out-${nodes}-${rep}`)
    const workers: Background[] = []
    try {
      const dirs: string[] = []
      for (let i = 0; i < nodes; i++) {
        // Every node declares bench/tmp as a shared folder: the others read node 0's files in place.
        dirs.push(await nodeDir(`f4-${i}`, { shared: true }))
        const env = cliEnv(ctx.redisUrl, dirs[i] as string, { FFMPEG_PATH: shim })
        workers.push(
          background(process.execPath, [cliPath, 'worker', '--concurrency', '1', '--name', `bench${i}`], {
            env,
          }),
        )
      }
      await Promise.all(workers.map((w) => w.waitFor(/ready/, 60_000)))
      // Queued as node 0 (same data folder): node 0 is the origin, alive and serving, as on a real desktop. The
      // pool is paused while `add` probes and queues the files one by one, then resumed: every node starts with
      // the whole batch waiting, so the makespan measures the pool, not how fast one `add` feeds it.
      const env0 = cliEnv(ctx.redisUrl, dirs[0] as string)
      await cliOk(['pause', '--all'], env0)
      const add = await cliOk(['add', '--preset', 'm4a', '--out', out, ...files], env0)
      const ids = [...add.stdout.matchAll(/^queued (\S+) /gm)].map((m) => m[1] as string)
      if (ids.length !== jobs) throw new Error(`queued ${ids.length} of ${jobs}`)
      await cliOk(['resume', '--all'], env0)
      await waitDrained(ctx.redis, 600_000)
      const failed = await ctx.redis.zcard(qkey('failed'))
      if (failed > 0)
        throw new Error(`${failed} jobs failed:\n${workers.map((w) => w.output().slice(-400)).join('\n')}`)
      const t = await jobTimes(ctx.redis, ids)
      times.get(nodes)?.push((t.last - t.first) / 1000)
    } finally {
      await Promise.all(workers.map((w) => w.stop('SIGTERM')))
    }
  }

  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? NODES : [...NODES].reverse()
    for (const n of order) await runPool(n, rep)
    ctx.log(
      `  rep ${rep + 1}/${reps}: ${NODES.map((n) => `${n} node(s) ${times.get(n)?.at(-1)?.toFixed(2)} s`).join(', ')}`,
    )
  }
  await flush(ctx)
  const one = times.get(1) ?? []
  const r3 = spread(ratios(one, times.get(3) ?? []))
  const r2 = spread(ratios(one, times.get(2) ?? []))
  return {
    id: 4,
    title: 'Pool scaling',
    ratio: r3,
    ratioMeaning: 'jobs/s of 3 worker nodes ÷ jobs/s of 1 node (paced encodes)',
    target: '≥ 2.7×',
    pass: r3.median >= 2.7,
    details: [
      [
        'jobs',
        `${jobs} M4A jobs from a ${clipSecs} s AAC clip (stream copy), read at ${rate}× real time (-readrate ${rate}): ~${(clipSecs / rate).toFixed(1)} s each`,
      ],
      ...NODES.map((n): [string, string] => [
        `${n} node(s), makespan`,
        fmtSeconds(spread(times.get(n) ?? [])),
      ]),
      ['2 nodes ÷ 1 node', fmtRatio(r2)],
      ['3 nodes ÷ 1 node', fmtRatio(r3)],
    ],
    notes: [
      "Each node is a `bullpen worker --concurrency 1` process with its own data folder (own node id) on the same Redis; the jobs are queued as node 0, and every node declares bench/tmp as a shared folder, so nodes 1 and 2 read node 0's inputs in place (shared storage; remote fetching is figure 5).",
      "The pacing is done outside Bullpen (an ffmpeg shim given as FFMPEG_PATH that adds -readrate), so Bullpen's code is unchanged.",
      "Makespan: first job taken to last job finished (Bull's processedOn / finishedOn); node start-up is not in it. " +
        'The batch is queued with the pool paused (`bullpen pause --all`), then resumed, so all nodes start together.',
    ],
    command: `npm run bench -- ${ctx.quick ? '--quick ' : ''}--only 4`,
    raw: { jobs, clipSecs, readrate: rate, makespanSec: Object.fromEntries(times) },
  }
}
