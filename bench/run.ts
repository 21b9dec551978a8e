/**
 * `npm run bench [-- --quick] [-- --only 1,3] [-- --reps N]`: Bullpen against what the machine can do, as ratios
 * measured side by side in the same run (alternating the two sides, repeated; median and min–max reported).
 * Writes bench/RESULTS.md and bench/results.json (a run with --only writes bench/tmp/RESULTS-only.md instead).
 */
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { startRedisServer } from '../tests/helpers/redis'
import { describeMachine, ensureBuilt, machineLine, redisClient, repoRoot, tmpRoot } from './lib/env'
import type { BenchContext, FigureResult } from './lib/figure'
import { now } from './lib/proc'
import { fmtRatio } from './lib/stats'
import { encodeFigures } from './figures/encode'
import { queueLayer, probeQueueing } from './figures/queue'
import { poolScaling } from './figures/pool'
import { remoteInput } from './figures/remote'
import { uiAtScale } from './figures/ui'
import { soak } from './figures/soak'

interface Args {
  quick: boolean
  only: Set<number> | null
  reps: number | null
  build: boolean
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, only: null, reps: null, build: false }
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]
    if (x === '--quick') a.quick = true
    else if (x === '--build') a.build = true
    else if (x === '--only') a.only = new Set((argv[++i] ?? '').split(',').map(Number))
    else if (x === '--reps') a.reps = Number(argv[++i])
    else if (x === '--help' || x === '-h') {
      console.log('usage: npm run bench -- [--quick] [--only 1,3] [--reps N] [--build]')
      console.log('  BENCH_FFPROBE=bundled (or a path): Bullpen and the direct probes use that ffprobe')
      process.exit(0)
    } else throw new Error(`unknown argument ${x}`)
  }
  return a
}

type Figure = (ctx: BenchContext, want: ReadonlySet<number>) => Promise<FigureResult | FigureResult[]>

/**
 * In order of the list. Figures 1 and 2 share one batch and one interleaved set of runs; figure 3 has two
 * parts (3a queue layer, 3b queueing real files).
 */
const FIGURES: [number[], Figure][] = [
  [[1, 2], encodeFigures],
  [
    [3],
    async (ctx) => [
      await queueLayer(ctx),
      ...(process.env['BENCH_SKIP_3B'] ? [] : [await probeQueueing(ctx)]),
    ],
  ],
  [[4], poolScaling],
  [[5], remoteInput],
  [[6], uiAtScale],
  [[7], soak],
]

function verdict(f: FigureResult): string {
  if (f.ratio && !Number.isFinite(f.ratio.median)) return 'not measured'
  if (f.pass === null) return f.ratio ? '—' : 'not measured'
  return f.pass ? 'met' : '**missed**'
}

/** The commit measured (noting changes to the code measured or the bench), or null outside a git checkout. */
function commitLine(): string | null {
  try {
    const git = (...a: string[]): string =>
      execFileSync('git', a, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const head = git('rev-parse', '--short', 'HEAD')
    const dirty =
      git(
        'status',
        '--porcelain',
        '--untracked-files=no',
        '--',
        'src',
        'bench/run.ts',
        'bench/figures',
        'bench/lib',
        'package.json',
        'package-lock.json',
      ) !== ''
    return `${head}${dirty ? ' + uncommitted changes' : ''}`
  } catch {
    return null
  }
}

function render(results: FigureResult[], machine: string, args: Args, totalSec: number): string {
  const commit = commitLine()
  const cmd = `npm run bench${args.quick ? ' -- --quick' : ''}`
  const lines: string[] = [
    '# Bullpen benchmarks',
    '',
    `Machine: ${machine}`,
    '',
    `Run: \`${cmd}\` (${args.quick ? 'quick sizes' : 'full sizes'}), ${totalSec.toFixed(0)} s in all` +
      (commit ? `, at commit ${commit}. ` : '. ') +
      'Figures 1–5 are ratios of two things measured side by side in this same run, the two sides alternated and ' +
      'repeated, shown as median (min–max) over the repetitions; figures 6 and 7 say in their notes how they are read.',
    '',
    '| # | figure | ratio | what the ratio is | target | verdict | reproduce |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const f of results) {
    lines.push(
      `| ${f.id} | ${f.title} | ${f.ratio ? fmtRatio(f.ratio) : 'n/a'} | ${f.ratioMeaning} | ${f.target} | ${verdict(f)} | \`${f.command}\` |`,
    )
  }
  for (const f of results) {
    lines.push('', `## ${f.id}. ${f.title}`, '')
    if (f.details.length > 0) {
      lines.push('| | |', '|---|---|')
      for (const [k, v] of f.details) lines.push(`| ${k} | ${v} |`)
      lines.push('')
    }
    for (const n of f.notes) lines.push(`- ${n}`)
    lines.push('', `Reproduce: \`${f.command}\``)
  }
  return lines.join('\n') + '\n'
}

/** bench/analysis.md (causes of missed targets, found by profiling and counting), appended to RESULTS.md. */
async function analysis(): Promise<string> {
  try {
    return '\n' + (await readFile(join(repoRoot, 'bench', 'analysis.md'), 'utf8'))
  } catch {
    return ''
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const t0 = now()
  // Machine first: the load average is the one before the bench adds its own.
  const machine = await describeMachine()
  console.log(`bench: ${machineLine(machine)}`)
  await ensureBuilt(args.build)
  await mkdir(tmpRoot, { recursive: true })
  const redis = await startRedisServer({ appendonly: false })
  const client = redisClient(redis.url)
  const ctx: BenchContext = {
    quick: args.quick,
    redisUrl: redis.url,
    redis: client,
    reps: args.reps ?? (args.quick ? 3 : 5),
    log: (m) => console.log(m),
  }
  const results: FigureResult[] = []
  try {
    for (const [ids, fig] of FIGURES) {
      const want = new Set(ids.filter((i) => !args.only || args.only.has(i)))
      if (want.size === 0) continue
      const id = [...want].join(' and ')
      const started = now()
      console.log(`bench: figure ${id}…`)
      try {
        const r = await fig(ctx, want)
        for (const f of Array.isArray(r) ? r : [r]) {
          results.push(f)
          console.log(
            `bench: figure ${f.id} ${f.title}: ${f.ratio ? fmtRatio(f.ratio) : 'n/a'} (target ${f.target}) ${verdict(f)}`,
          )
        }
      } catch (err) {
        console.error(`bench: figure ${id} failed:`, err)
        for (const i of want) {
          results.push({
            id: i,
            title: `figure ${i}`,
            ratio: null,
            ratioMeaning: '',
            target: '',
            pass: null,
            details: [],
            notes: [`The bench itself failed: ${err instanceof Error ? err.message : String(err)}`],
            command: `npm run bench -- ${args.quick ? '--quick ' : ''}--only ${i}`,
            raw: {},
          })
        }
      }
      console.log(`bench: figure ${id} took ${((now() - started) / 1000).toFixed(1)} s`)
    }
  } finally {
    client.disconnect()
    await redis.stop()
  }
  const totalSec = (now() - t0) / 1000
  // Other work on the machine shows as a rise between start and end.
  const line = `${machineLine(machine)}; load average at the end ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`
  const md = render(results, line, args, totalSec) + (await analysis())
  const json = JSON.stringify({ machine, quick: args.quick, totalSec, figures: results }, null, 2) + '\n'
  const partial = args.only !== null
  const mdPath = partial ? join(tmpRoot, 'RESULTS-only.md') : join(repoRoot, 'bench', 'RESULTS.md')
  const jsonPath = partial ? join(tmpRoot, 'results-only.json') : join(repoRoot, 'bench', 'results.json')
  await writeFile(mdPath, md)
  await writeFile(jsonPath, json)
  console.log(md)
  console.log(`bench: wrote ${mdPath} and ${jsonPath} in ${totalSec.toFixed(1)} s`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
