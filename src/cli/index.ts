/**
 * `bullpen`: the headless entry over the core. See README.md ("CLI") for every command and the exit codes.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import type Bull from 'bull'
import cliProgress from 'cli-progress'
import { existsSync } from 'node:fs'
import { basename } from 'node:path'
import type { AddOutcome, JobProgress, JobState, JobView } from '../shared/api'
import { JOB_STATES } from '../shared/api'
import {
  FORMATS,
  PRESETS,
  PRESET_NAMES,
  PRIORITIES,
  type Priority,
  type TranscodeSpecInput,
  parseResize,
} from '../shared/spec'
import { PROBE_CONCURRENCY } from '../main/core/enqueue'
import { FfmpegMissingError, RedisUnavailableError, UserFacingError, errorMessage } from '../main/core/errors'
import { prefetchProbes } from '../main/core/ffmpeg'
import { logger } from '../main/core/logger'
import { BullpenNode, type NodeKind } from '../main/core/node'
import type { CancelOutcome } from '../main/core/queue'
import { parseRedisUrl } from '../main/core/redis'
import { listenProblem } from '../main/core/server/auth'
import { POOL_MODES, type PoolConfig, PoolConfigSchema, type PoolMode } from '../main/core/pool/config'
import { DEFAULT_CONCURRENCY, MAX_CONCURRENCY } from '../main/core/settings'
import { formatBytes, formatEta, parseDuration, table } from './format'

/** Exit codes (documented in the README). */
export const EXIT = {
  ok: 0,
  /** A job failed, a file was refused, or an operation on a job could not be done. */
  failed: 1,
  usage: 2,
  redis: 3,
  ffmpeg: 4,
  interrupted: 130,
  hangup: 129,
} as const

interface GlobalOpts {
  redis?: string
  dataDir?: string
  verbose?: boolean
}

interface AddOpts {
  to?: string
  resize?: string
  preset?: string
  priority: Priority
  out?: string
  subtitles?: 'keep' | 'drop'
  wait?: boolean
}

class ExitError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message)
    this.name = 'ExitError'
  }
}

const isTty = Boolean(process.stdout.isTTY)

function positiveInt(max: number) {
  return (v: string): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new InvalidArgumentError(`a whole number from 1 to ${max}`)
    return n
  }
}

function specFrom(opts: AddOpts): { preset?: string; spec?: TranscodeSpecInput } {
  if (opts.preset && (opts.to || opts.resize)) {
    throw new ExitError(EXIT.usage, 'Give either --preset or --to/--resize, not both.')
  }
  if (opts.preset) {
    if (!(PRESET_NAMES as string[]).includes(opts.preset)) {
      throw new ExitError(
        EXIT.usage,
        `Unknown preset "${opts.preset}". Run \`bullpen presets\` to list them.`,
      )
    }
    return { preset: opts.preset }
  }
  if (!opts.to && !opts.resize) {
    throw new ExitError(EXIT.usage, 'Say what to make: --to FORMAT, --resize WxH, or --preset NAME.')
  }
  const spec: TranscodeSpecInput = { format: (opts.to ?? 'mp4') as TranscodeSpecInput['format'] }
  if (opts.resize) {
    const r = parseResize(opts.resize)
    if (!r)
      throw new ExitError(EXIT.usage, `--resize ${opts.resize}: use WxH, Wx or xH (e.g. 1280x720, x240).`)
    spec.resize = r
  }
  if (opts.subtitles) spec.subtitles = opts.subtitles
  return { spec }
}

async function withNode<T>(
  cmd: Command,
  kind: NodeKind,
  extra: { work?: boolean; concurrency?: number; name?: string; serve?: boolean },
  fn: (node: BullpenNode) => Promise<T>,
): Promise<T> {
  const g = cmd.optsWithGlobals<GlobalOpts>()
  const node = await BullpenNode.start({
    kind,
    ...(g.redis ? { redisUrl: g.redis } : {}),
    ...(g.dataDir ? { dataDir: g.dataDir } : {}),
    ...(extra.work ? { work: true } : {}),
    ...(extra.concurrency ? { concurrency: extra.concurrency } : {}),
    ...(extra.name ? { name: extra.name } : {}),
    ...(extra.serve !== undefined ? { serve: extra.serve } : {}),
  })
  try {
    return await fn(node)
  } finally {
    await node.stop({ handBack: true })
  }
}

function reportOutcomes(outcomes: AddOutcome[]): string[] {
  const ids: string[] = []
  for (const o of outcomes) {
    if (o.error) console.error(`refused: ${o.error}`)
    else if (o.id) {
      ids.push(o.id)
      const note = o.duplicate ? ' (already queued: this is that job)' : ''
      if (!isTty) console.log(`queued ${o.id} ${o.path}${note}`)
      else if (o.duplicate) console.log(`${basename(o.path)}: already queued as job ${o.id}`)
    }
  }
  return ids
}

function describeDone(v: Pick<JobView, 'id' | 'name' | 'state' | 'result' | 'failedReason'>): string {
  if (v.state === 'completed' && v.result) {
    const r = v.result
    const size = r.width && r.height ? ` ${r.width}x${r.height}` : ''
    return `done ${v.id} ${v.name} -> ${r.outputPath}${size} (${formatBytes(r.size)}, ${(r.elapsedMs / 1000).toFixed(1)} s on ${r.node})`
  }
  return `failed ${v.id} ${v.name}: ${v.failedReason ?? 'unknown reason'}`
}

function describeRetry(v: JobView, reason: string): string {
  return `retrying ${v.id} ${v.name} (attempt ${v.attemptsMade + 1} of ${v.attempts}): ${reason}`
}

/** Follows queued jobs with a progress bar per file on a terminal, plain lines otherwise. */
async function followJobs(node: BullpenNode, ids: string[], names: Map<string, string>): Promise<JobView[]> {
  if (ids.length === 0) return []
  if (!isTty) {
    let lastLine = new Map<string, number>()
    return node.follow(ids, {
      onActive: (id) => console.log(`started ${id} ${names.get(id) ?? ''}`),
      onProgress: (id, p) => {
        // Plain output: one line per 10 % so logs stay short.
        const step = p.percent === null ? -1 : Math.floor(p.percent / 10)
        if (step >= 0 && step !== lastLine.get(id)) {
          lastLine = lastLine.set(id, step)
          console.log(
            // What ffmpeg has not said yet (no fps before the first frames) is left out, not shown as '-'.
            [
              `progress ${id} ${p.percent?.toFixed(0)}%`,
              p.fps !== null ? `${p.fps} fps` : '',
              p.speed !== null ? `${p.speed}x` : '',
              `eta ${formatEta(p.etaSec)}`,
            ]
              .filter(Boolean)
              .join(' '),
          )
        }
      },
      onDone: (v) => console.log(describeDone(v)),
      onRetry: (v, reason) => console.log(describeRetry(v, reason)),
    })
  }
  const bars = new cliProgress.MultiBar(
    {
      format: ' {name} |{bar}| {pct} {fps} {speed} {eta2}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  )
  const width = Math.min(40, Math.max(...[...names.values()].map((n) => n.length), 8))
  const label = (n: string): string => (n.length > width ? `${n.slice(0, width - 1)}…` : n.padEnd(width))
  const byId = new Map<string, cliProgress.SingleBar>()
  for (const id of ids) {
    byId.set(
      id,
      bars.create(100, 0, { name: label(names.get(id) ?? id), pct: 'waiting', fps: '', speed: '', eta2: '' }),
    )
  }
  const show = (id: string, p: JobProgress): void => {
    byId.get(id)?.update(p.percent ?? 0, {
      pct: p.percent === null ? '  ?%' : `${p.percent.toFixed(0).padStart(3)}%`,
      fps: p.fps !== null ? `${p.fps.toFixed(0)} fps` : '',
      speed: p.speed !== null ? `${p.speed.toFixed(2)}x` : '',
      eta2: `ETA ${formatEta(p.etaSec)}`,
    })
  }
  const finals = await node.follow(ids, {
    onActive: (id) => byId.get(id)?.update(0, { pct: '  0%' }),
    onProgress: show,
    onRetry: (v, reason) => {
      byId.get(v.id)?.update(0, { pct: 'retry', fps: '', speed: '', eta2: '' })
      bars.log(`${describeRetry(v, reason)}\n`)
    },
    onDone: (v) => {
      const bar = byId.get(v.id)
      if (v.state === 'completed') bar?.update(100, { pct: 'done', fps: '', speed: '', eta2: '' })
      else bar?.update({ pct: 'FAILED', fps: '', speed: '', eta2: '' })
    },
  })
  bars.stop()
  for (const v of finals) (v.state === 'completed' ? console.log : console.error)(describeDone(v))
  return finals
}

function stallTimeout(text: string): number {
  const ms = parseDuration(text)
  if (ms === undefined || ms < 1000)
    throw new ExitError(EXIT.usage, `--stall-timeout ${text}: use e.g. 90s or 5m`)
  return ms
}

/**
 * Runs until SIGINT/SIGTERM: the first signal takes no new jobs and lets active ones finish, a second hands them
 * back to the queue at once. `beforeStop` runs first (e.g. closing a server).
 */
function untilStopped(node: BullpenNode, beforeStop?: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolveStop) => {
    let signals = 0
    const onSignal = (sig: string): void => {
      signals++
      if (signals === 1) {
        console.log(`${sig}: taking no new jobs; letting active ones finish (again to hand them back now)`)
        void (beforeStop?.() ?? Promise.resolve())
          .catch((err: unknown) => console.error(`bullpen: ${errorMessage(err)}`))
          .then(() => node.stop({ handBack: false }))
          .then(resolveStop)
      } else {
        console.log(`${sig}: handing active jobs back to the queue`)
        void node.queue.close({ handBack: true }).then(resolveStop)
      }
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

/**
 * `work` raced against SIGINT/SIGTERM, for the commands that follow their own jobs (`transcode`, `add --wait`). On a
 * first signal it stops following, with an ExitError (130) saying what becomes of the jobs; the caller's node then
 * stops and hands its running encodes back to the queue. A second signal lets that finish; a third exits at once.
 */
async function interruptible<T>(ids: readonly string[], work: Promise<T>): Promise<T> {
  let onSignal: ((sig: NodeJS.Signals) => void) | undefined
  const stopListening = (): void => {
    if (!onSignal) return
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
  const interrupted = new Promise<never>((_, reject) => {
    onSignal = (sig) => {
      stopListening()
      // The hand-back takes a moment (each ffmpeg stopped, its temp file removed): a second signal, often typed right
      // after the first, says so instead of cutting it short; only a third exits at once.
      let signals = 1
      const more = (): void => {
        if (++signals > 2) process.exit(EXIT.interrupted)
        console.error(
          'bullpen: handing the running encodes back to the queue and removing their temporary files; ' +
            'one more Ctrl-C quits at once and may leave them behind.',
        )
      }
      process.on('SIGINT', more)
      process.on('SIGTERM', more)
      const list = ids.length > 8 ? `${ids.slice(0, 8).join(', ')}, …` : ids.join(', ')
      reject(
        new ExitError(
          EXIT.interrupted,
          `${sig}: stopped. Encodes running here go back to the queue; the jobs not done (${list}) stay queued and ` +
            'run when a node works on this queue and can read their files (`bullpen worker` or `bullpen transcode` ' +
            'with this data folder); `bullpen jobs` shows them, `bullpen cancel <ids>` drops them.',
        ),
      )
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  })
  try {
    return await Promise.race([work, interrupted])
  } finally {
    stopListening()
  }
}

function addOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--to <format>', 'output format').choices([...FORMATS]))
    .option('--resize <WxH>', 'fit within W×H, or to a width W× or a height ×H; the aspect is always kept')
    .addOption(new Option('--preset <name>', 'a named preset (see `bullpen presets`)'))
    .addOption(new Option('--priority <p>', 'queue priority').choices([...PRIORITIES]).default('normal'))
    .option('--out <dir>', 'output folder (default: next to each input)')
    .addOption(
      new Option('--subtitles <mode>', 'keep (copy/convert where possible) or drop').choices([
        'keep',
        'drop',
      ]),
    )
}

/**
 * Says in words when Redis stops answering and when it is back, for the commands that keep running (the JSON
 * warnings of the log were all a person saw, and a `transcode` whose Redis had gone seemed to hang).
 */
function sayRedisState(node: BullpenNode): () => void {
  let away = false
  return node.queue.events.on('connection', ({ state, url }) => {
    if (state !== 'ready' && !away) {
      away = true
      console.error(
        `bullpen: Redis at ${url} is not answering; waiting for it to come back (Ctrl-C to stop).`,
      )
    } else if (state === 'ready' && away) {
      away = false
      console.error(`bullpen: Redis at ${url} is back.`)
    }
  })
}

/**
 * A worker's own account of its jobs, a line each: started, done, failed (it printed nothing between 'ready' and its
 * exit). From this process's own Bull events, which need no Redis round trip, so the last job's line is out before
 * a stopping worker exits; a retry is said by the 'retrying' message of the attempt that failed here.
 */
function reportWork(node: BullpenNode): void {
  const bull = node.queue.bull
  const nameOf = (job: Bull.Job): string => {
    const input = (job.data as { input?: { path?: unknown } } | null)?.input?.path
    return typeof input === 'string' ? basename(input) : `job ${String(job.id)}`
  }
  bull.on('active', (job: Bull.Job) => console.log(`started ${String(job.id)} ${nameOf(job)}`))
  bull.on('completed', (job: Bull.Job, result: JobView['result']) =>
    console.log(
      describeDone({ id: String(job.id), name: nameOf(job), state: 'completed', result, failedReason: null }),
    ),
  )
  bull.on('failed', (job: Bull.Job, err: Error) => {
    // A failure that will be retried (its job waits for its backoff) is said as such by the 'retrying' message.
    const discarded = (job as unknown as { _discarded?: boolean })._discarded === true // cancelled, invalid…
    const final = discarded || job.attemptsMade >= (job.opts.attempts ?? 1)
    if (final)
      console.error(
        describeDone({
          id: String(job.id),
          name: nameOf(job),
          state: 'failed',
          result: null,
          failedReason: err.message,
        }),
      )
  })
  node.queue.events.on('retrying', ({ jobId, reason }) => {
    node
      .view(jobId)
      .then((v) => (v?.node === node.id ? console.log(describeRetry(v, reason)) : undefined))
      .catch(() => undefined)
  })
}

/** Says so when the jobs about to be followed cannot start because the whole pool is paused (else a silent wait). */
async function notePoolPaused(node: BullpenNode, ids: readonly string[]): Promise<void> {
  if (ids.length === 0 || !(await node.queue.stats()).poolPaused) return
  console.error(
    'note: the pool is paused, so these jobs wait until `bullpen resume --all` (or the app) resumes it.',
  )
}

async function enqueueFrom(
  node: BullpenNode,
  files: string[],
  opts: AddOpts,
): Promise<{ ids: string[]; refused: number; names: Map<string, string> }> {
  const outcomes = await node.enqueue({
    paths: files,
    ...specFrom(opts),
    priority: opts.priority,
    ...(opts.out ? { outputDir: opts.out } : {}),
  })
  const ids = reportOutcomes(outcomes)
  const names = new Map(outcomes.filter((o) => o.id).map((o) => [o.id as string, basename(o.path)]))
  return { ids, refused: outcomes.filter((o) => o.error).length, names }
}

interface WorkerOpts {
  concurrency?: number
  name?: string
  stallTimeout?: string
  mode?: PoolMode
  bind?: string
  advertiseHost?: string
  filePort?: number
  share?: string[]
}

/** Pool settings given on the command line (they override pool.json in the data folder). */
function poolOverrides(opts: WorkerOpts): Partial<PoolConfig> {
  const raw: Record<string, unknown> = {}
  if (opts.mode) raw['mode'] = opts.mode
  if (opts.bind) raw['bind'] = opts.bind
  if (opts.advertiseHost) raw['advertiseHost'] = opts.advertiseHost
  if (opts.filePort !== undefined) raw['port'] = opts.filePort
  if (opts.share) {
    raw['sharedFolders'] = opts.share.map((s) => {
      const i = s.indexOf('=')
      return i > 0 ? { name: s.slice(0, i), path: s.slice(i + 1) } : { name: s, path: '' }
    })
  }
  const parsed = PoolConfigSchema.partial().safeParse(raw)
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
    throw new ExitError(EXIT.usage, `Invalid pool option (${why}). --share takes NAME=/absolute/path.`)
  }
  // A folder that is not there (yet: a share mounted later) is allowed, but said: a typo would otherwise only show
  // as jobs that never take the shared route.
  for (const f of parsed.data.sharedFolders ?? []) {
    if (!existsSync(f.path))
      console.error(`bullpen: warning: shared folder ${f.name}: ${f.path} does not exist (yet).`)
  }
  return parsed.data as Partial<PoolConfig>
}

/** Builds the program; exported for tests. */
export function buildProgram(): Command {
  const program = new Command()
  program
    .name('bullpen')
    .description('Transcode video with FFmpeg workers pooled through one Redis.')
    .version(process.env['npm_package_version'] ?? '0.1.0')
    .option(
      '--redis <url>',
      'Redis URL (redis://[:password@]host:port[/db], rediss:// for TLS); default: settings, $BULLPEN_REDIS_URL, redis://127.0.0.1:6379',
    )
    .option(
      '--data-dir <dir>',
      "data folder (settings, node id, managed Redis); default: $BULLPEN_DATA_DIR or the platform's app-data folder",
    )
    .option('-v, --verbose', 'log what happens (JSON lines on stderr)')
    .showHelpAfterError()
    .hook('preAction', (_this, action) => {
      const g = action.optsWithGlobals<GlobalOpts>()
      if (g.verbose) logger.level = 'debug'
      else if (!process.env['BULLPEN_LOG_LEVEL']) logger.level = 'warn'
      // A --redis that is no Redis URL is a usage error (2); a URL from the settings or the environment stays a
      // Redis problem (3), found when the node starts.
      if (g.redis !== undefined) {
        try {
          parseRedisUrl(g.redis)
        } catch (err) {
          throw new ExitError(EXIT.usage, `--redis: ${errorMessage(err)}`)
        }
      }
    })

  addOptions(
    program
      .command('transcode')
      .description('queue files, then work on the queue in this process until they are done')
      .argument('<files...>', 'input files'),
  )
    .addOption(
      new Option('--concurrency <n>', 'parallel encodes in this process').argParser(
        positiveInt(MAX_CONCURRENCY),
      ),
    )
    .action(async (files: string[], opts: AddOpts & { concurrency?: number }, cmd: Command) => {
      // The probes of the first jobs run while the node starts (they need no Redis); queueing then finds them done.
      // Only as many as will start at once: more ffprobes at this moment compete for the cores with the start-up
      // and hold the first encode back (8 of them took ~0.3 s more on two cores); the rest are probed as queued.
      prefetchProbes(files, opts.concurrency ?? DEFAULT_CONCURRENCY)
      await withNode(
        cmd,
        'cli',
        { work: true, ...(opts.concurrency ? { concurrency: opts.concurrency } : {}) },
        async (node) => {
          const { ids, refused, names } = await enqueueFrom(node, files, opts)
          await notePoolPaused(node, ids)
          sayRedisState(node)
          const finals = await interruptible(ids, followJobs(node, ids, names))
          const failed = finals.filter((v) => v.state !== 'completed').length
          if (failed > 0 || refused > 0) {
            throw new ExitError(
              EXIT.failed,
              `${failed + refused} of ${files.length} file(s) did not come out.`,
            )
          }
        },
      )
    })

  addOptions(
    program
      .command('add')
      .description('queue files for the pool; with --wait, follow them to the end')
      .argument('<files...>', 'input files'),
  )
    .option('--wait', 'wait until the jobs are done')
    .action(async (files: string[], opts: AddOpts, cmd: Command) => {
      // As many as prepareEach then runs at once: queueing keeps to PROBE_CONCURRENCY probes at a time.
      prefetchProbes(files, PROBE_CONCURRENCY)
      // With --wait this process serves the files to the pool until the jobs end.
      await withNode(cmd, 'cli', { serve: opts.wait === true }, async (node) => {
        const { ids, refused, names } = await enqueueFrom(node, files, opts)
        if (!opts.wait && ids.length > 0 && !(await node.isServing())) {
          console.error(
            'note: no Bullpen node with this data folder is running, so other nodes cannot fetch these files yet; ' +
              'the jobs wait until one runs (`bullpen worker`, `bullpen serve` or the app), or use --wait.',
          )
        }
        if (opts.wait) {
          await notePoolPaused(node, ids)
          sayRedisState(node)
          const finals = await interruptible(ids, followJobs(node, ids, names))
          const failed = finals.filter((v) => v.state !== 'completed').length
          if (failed > 0) throw new ExitError(EXIT.failed, `${failed} job(s) failed.`)
        } else if (isTty) {
          for (const id of ids) console.log(`queued ${id} ${names.get(id) ?? ''}`)
        }
        if (refused > 0) throw new ExitError(EXIT.failed, `${refused} file(s) refused.`)
      })
    })

  program
    .command('serve')
    .description(
      'a node with the desktop UI in a browser: HTTP + WebSocket bridge, Bull Board at /admin/queues',
    )
    .option('--host <address>', 'address to listen on; anything but loopback needs --token', '127.0.0.1')
    .option('--port <n>', 'port', (v) => Number(v), 8060)
    .option('--token <token>', 'access token (or $BULLPEN_TOKEN); required off loopback')
    .addOption(new Option('--concurrency <n>', 'parallel encodes').argParser(positiveInt(MAX_CONCURRENCY)))
    .option('--name <name>', 'node name shown in the pool')
    .option('--no-work', 'serve the UI and files but run no encodes here')
    .option(
      '--inbox-keep <duration>',
      'delete a browser upload this long after it arrived, once no unfinished or failed job needs it',
      '7d',
    )
    .action(
      async (
        opts: {
          host: string
          port: number
          token?: string
          concurrency?: number
          name?: string
          work: boolean
          inboxKeep: string
        },
        cmd: Command,
      ) => {
        if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
          throw new ExitError(EXIT.usage, `--port ${opts.port}: a port number from 0 to 65535`)
        }
        const inboxKeepMs = parseDuration(opts.inboxKeep)
        if (inboxKeepMs === undefined || inboxKeepMs < 60_000) {
          throw new ExitError(EXIT.usage, `--inbox-keep ${opts.inboxKeep}: use e.g. 7d or 12h (at least 1m)`)
        }
        const g = cmd.optsWithGlobals<GlobalOpts>()
        const token = opts.token ?? process.env['BULLPEN_TOKEN']
        const problem = listenProblem(opts.host, token === '' ? undefined : token)
        if (problem) throw new ExitError(EXIT.usage, problem)
        const node = await BullpenNode.start({
          kind: 'serve',
          work: opts.work,
          ...(g.redis ? { redisUrl: g.redis } : {}),
          ...(g.dataDir ? { dataDir: g.dataDir } : {}),
          ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
          ...(opts.name ? { name: opts.name } : {}),
        })
        let server
        try {
          // Loaded here, not at start: Express and Bull Board are a quarter of a second of start-up that only
          // `serve` needs (every `transcode`, `worker` and `status` paid it).
          const { serveNode } = await import('../main/core/server')
          server = await serveNode(node, {
            host: opts.host,
            port: opts.port,
            inboxKeepMs,
            ...(token ? { token } : {}),
          })
        } catch (err) {
          await node.stop({ handBack: true })
          throw new ExitError(EXIT.failed, errorMessage(err))
        }
        console.log(`serving ${node.name} (${node.id}) at ${server.openUrl}`)
        console.log(`queue dashboard: ${server.dashboardUrl ?? '(none)'}; Ctrl-C to stop`)
        const running = server
        await untilStopped(node, () => running.close())
      },
    )

  program
    .command('worker')
    .description('work on the queue until SIGINT/SIGTERM (a second signal hands active jobs back at once)')
    .addOption(new Option('--concurrency <n>', 'parallel encodes').argParser(positiveInt(MAX_CONCURRENCY)))
    .option('--name <name>', 'node name shown in the pool')
    .option(
      '--stall-timeout <duration>',
      'kill an ffmpeg that makes no progress this long and retry its job (default 2m)',
    )
    .addOption(
      new Option(
        '--mode <mode>',
        "pool: take anyone's jobs; own: only jobs queued here (default: pool.json)",
      ).choices([...POOL_MODES]),
    )
    .option(
      '--bind <address>',
      'address the file service listens on (0.0.0.0 for the LAN; default 127.0.0.1)',
    )
    .option('--advertise-host <host>', 'host or IP other nodes use to reach this one')
    .option('--file-port <n>', 'file service port (default: any free one)', (v) => Number(v))
    .option(
      '--share <name=path>',
      'a shared folder, e.g. media=/mnt/media (repeatable; the same name on every node)',
      (v: string, all: string[] = []) => [...all, v],
    )
    .action(async (opts: WorkerOpts, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>()
      const node = await BullpenNode.start({
        kind: 'worker',
        work: true,
        ...(g.redis ? { redisUrl: g.redis } : {}),
        ...(g.dataDir ? { dataDir: g.dataDir } : {}),
        ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.stallTimeout !== undefined ? { stallTimeoutMs: stallTimeout(opts.stallTimeout) } : {}),
        pool: poolOverrides(opts),
      })
      console.log(`worker ${node.name} (${node.id}) ready; Ctrl-C to stop`)
      sayRedisState(node)
      reportWork(node)
      await untilStopped(node)
    })

  program
    .command('nodes')
    .description('the nodes of the pool: who is working, on how many jobs, with what')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withNode(cmd, 'cli', {}, async (node) => {
        const nodes = await node.listNodes()
        if (opts.json) {
          console.log(JSON.stringify(nodes))
          return
        }
        const rows = [['name', 'id', 'kind', 'host', 'jobs', 'paused', 'done/h', 'seen', 'ffmpeg']]
        for (const n of nodes) {
          rows.push([
            n.name + (n.isSelf ? ' (this)' : ''),
            n.id,
            n.kind,
            n.host,
            `${n.active}/${n.concurrency}`,
            n.paused ? 'yes' : '',
            String(n.completedLastHour),
            `${Math.max(0, Math.round((Date.now() - n.lastSeen) / 1000))}s ago`,
            /version (\S+)/.exec(n.ffmpegVersion)?.[1] ?? n.ffmpegVersion,
          ])
        }
        console.log(table(rows))
        console.log(`${nodes.length} node(s)`)
      })
    })

  program
    .command('status')
    .description('queue counts and whether the pool is paused')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withNode(cmd, 'cli', {}, async (node) => {
        const stats = await node.queue.stats()
        // Whether this data folder's worker is paused (`bullpen pause`), as it tells the pool; not this short-lived
        // process's own flag, which is always false.
        const self = (await node.listNodes()).find((n) => n.isSelf)
        const s = { ...stats, localPaused: self?.paused ?? false }
        if (opts.json) console.log(JSON.stringify(s))
        else {
          console.log(table(Object.entries(s).map(([k, v]) => [k, String(v)])))
        }
      })
    })

  program
    .command('jobs')
    .description('list jobs by state')
    .addOption(new Option('--state <state>', 'which jobs').choices([...JOB_STATES]).default('waiting'))
    .addOption(new Option('--limit <n>', 'how many').argParser(positiveInt(10_000)).default(50))
    .option('--offset <n>', 'skip this many', (v) => Math.max(0, Number(v) || 0), 0)
    .option('--json', 'machine-readable output (one JSON object: items, total, offset)')
    .action(
      async (opts: { state: JobState; limit: number; offset: number; json?: boolean }, cmd: Command) => {
        await withNode(cmd, 'cli', {}, async (node) => {
          const page = await node.list(opts.state, opts.offset, opts.limit)
          if (opts.json) {
            console.log(JSON.stringify(page))
            return
          }
          const rows = [['id', 'priority', 'preset', 'progress', 'name', 'detail']]
          for (const v of page.items) {
            const pct =
              v.progress?.percent !== undefined && v.progress?.percent !== null
                ? `${v.progress.percent.toFixed(0)}%`
                : ''
            const detail = v.failedReason ?? v.result?.outputPath ?? ''
            rows.push([v.id, v.priority, v.label, pct, v.name, detail])
          }
          console.log(table(rows))
          console.log(`${page.items.length} of ${page.total} ${opts.state}`)
        })
      },
    )

  for (const verb of ['pause', 'resume'] as const) {
    program
      .command(verb)
      .description(
        `${verb} this node's worker (the one using this data folder, e.g. \`bullpen worker\`), or with --all the whole pool; running jobs go on`,
      )
      .option('--all', 'every node in the pool')
      .action(async (opts: { all?: boolean }, cmd: Command) => {
        await withNode(cmd, 'cli', {}, async (node) => {
          if (opts.all) {
            await (verb === 'pause' ? node.queue.pausePool() : node.queue.resumePool())
            console.log(`${verb}d the pool`)
            return
          }
          const mine = (await node.listNodes()).filter((n) => n.id === node.id && n.concurrency > 0)
          if (mine.length === 0) {
            throw new ExitError(
              EXIT.failed,
              `no worker of this node (${node.id}, data folder ${node.dataDir}) is running, so there is nothing to ${verb}. Use --all for the whole pool.`,
            )
          }
          await node.queue.requestNodePause(node.id, verb === 'pause')
          console.log(`${verb}d node ${node.name} (${node.id})`)
        })
      })
  }

  /** What a cancel did, in words; one that did nothing is an error (exit 1), as for retry and remove. */
  const cancelled = (id: string, outcome: CancelOutcome): string => {
    if (outcome === 'not-found') throw new Error(`job ${id} does not exist`)
    if (outcome === 'finished') throw new Error(`job ${id} has already finished; nothing to cancel`)
    return outcome === 'removed' ? 'removed from the queue' : 'stopping on the node that runs it'
  }

  const jobCommand = (verb: 'retry' | 'cancel' | 'remove', describe: string): void => {
    program
      .command(verb)
      .description(describe)
      .argument('<ids...>', 'job ids')
      .action(async (ids: string[], _opts: unknown, cmd: Command) => {
        await withNode(cmd, 'cli', {}, async (node) => {
          let bad = 0
          for (const id of ids) {
            try {
              let said = 'ok'
              if (verb === 'cancel') said = cancelled(id, await node.queue.cancel(id))
              else await node.queue[verb](id)
              console.log(`${verb} ${id}: ${said}`)
            } catch (err) {
              bad++
              console.error(`${verb} ${id}: ${errorMessage(err)}`)
            }
          }
          if (bad > 0) throw new ExitError(EXIT.failed, `${bad} of ${ids.length} failed`)
        })
      })
  }
  jobCommand('retry', 'retry failed jobs')
  jobCommand(
    'cancel',
    'cancel jobs: waiting ones are removed, active ones are stopped on whichever node runs them',
  )
  jobCommand('remove', 'remove jobs that are not active')

  program
    .command('priority')
    .description('change the priority of a waiting job')
    .argument('<id>', 'job id')
    .addArgument(new Command().createArgument('<priority>', 'high, normal or low').choices([...PRIORITIES]))
    .action(async (id: string, priority: Priority, _opts: unknown, cmd: Command) => {
      await withNode(cmd, 'cli', {}, async (node) => {
        await node.queue.setPriority(id, priority)
        console.log(`job ${id}: priority ${priority}`)
      })
    })

  program
    .command('clean')
    .description('remove completed and failed jobs older than the grace period')
    .option('--grace <duration>', 'age, e.g. 90s, 30m, 24h, 7d', '24h')
    .action(async (opts: { grace: string }, cmd: Command) => {
      const grace = parseDuration(opts.grace)
      if (grace === undefined)
        throw new ExitError(EXIT.usage, `--grace ${opts.grace}: use e.g. 90s, 30m, 24h or 7d`)
      await withNode(cmd, 'cli', {}, async (node) => {
        const n = await node.queue.clean(grace)
        console.log(`removed ${n.completed} completed and ${n.failed} failed job(s) older than ${opts.grace}`)
      })
    })

  program
    .command('presets')
    .description('list the named presets')
    .action(() => {
      const rows = [['name', 'format', 'resize', 'what']]
      for (const name of PRESET_NAMES) {
        const p: { format: string; resize?: { width?: number; height?: number }; description: string } =
          PRESETS[name]
        rows.push([
          name,
          p.format,
          p.resize ? `${p.resize.width ?? ''}x${p.resize.height ?? ''}` : '',
          p.description,
        ])
      }
      console.log(table(rows))
    })

  return program
}

/** Runs the CLI and exits with a documented code. */
export async function main(argv: string[]): Promise<never> {
  const program = buildProgram()
  // On every command, not only the top one (commander copies the setting only to commands made after it): a bad
  // option of a subcommand is a usage error too (exit 2), not commander's own exit 1.
  const overrideAll = (c: Command): void => {
    c.exitOverride()
    for (const sub of c.commands) overrideAll(sub)
  }
  overrideAll(program)
  // A closed terminal: exit (the encodes, in process groups of their own, are killed on exit; the jobs this node
  // was running go back to the queue when their locks expire, as after a crash).
  process.once('SIGHUP', () => process.exit(EXIT.hangup))
  let code: number = EXIT.ok
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      code = err.exitCode === 0 ? EXIT.ok : EXIT.usage
    } else if (err instanceof ExitError) {
      console.error(`bullpen: ${err.message}`)
      code = err.code
    } else if (err instanceof RedisUnavailableError) {
      console.error(`bullpen: ${err.message}`)
      code = EXIT.redis
    } else if (err instanceof FfmpegMissingError) {
      console.error(`bullpen: ${err.message}`)
      code = EXIT.ffmpeg
    } else if (err instanceof UserFacingError) {
      console.error(`bullpen: ${err.message}`)
      code = EXIT.failed
    } else {
      console.error(
        `bullpen: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      )
      code = EXIT.failed
    }
  }
  logger.flush()
  process.exit(code)
}

void main(process.argv)
