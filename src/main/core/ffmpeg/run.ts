/**
 * Runs one ffmpeg process through fluent-ffmpeg (spawned with an argument array, never a shell) and tracks it
 * (CONVENTIONS 7): one AbortController per job id in a module-level map, removed in `finally`; cancel, a stall
 * watchdog, progress, and one-line errors naming the file.
 */
import type { ChildProcess } from 'node:child_process'
import { setPriority } from 'node:os'
import path from 'node:path'
import { FfmpegMissingError, JobCancelledError, TranscodeError } from '../errors'
import { logger } from '../logger'
import { deathGuard, killOnExit, OWN_GROUP } from './children'
import { ffmpegPaths, fluentCommand } from './locate'
import { createProgressTracker, type ProgressSnapshot } from './progress'

export interface RunOptions {
  jobId: string
  /**
   * Input file (read only), or the loopback URL of a pooled job's input relay (pool/relay.ts): only
   * `http://127.0.0.1:<port>/<32 hex>/<name>` is taken as a URL; anything else is a path.
   */
  input: string
  /** Output file; overwritten if it exists (it is always our own temp file). */
  output: string
  /** Output options from buildFfmpegArgs (must include `-progress pipe:1`). */
  args: readonly string[]
  /** Input duration, for percent and ETA; null when unknown. */
  durationSec: number | null
  /** Aborting it stops ffmpeg; the promise rejects with the signal's reason (an Error) or JobCancelledError. */
  signal?: AbortSignal | undefined
  /** Every progress update (unthrottled; see createThrottle). */
  onProgress?: ((p: ProgressSnapshot) => void) | undefined
  /** Every stderr line. */
  onLog?: ((line: string) => void) | undefined
  /** Kill ffmpeg when its position has not moved for this long (default 120 s). */
  stallTimeoutMs?: number | undefined
  /** Wait this long after SIGTERM before SIGKILL (default 3 s). */
  killGraceMs?: number | undefined
}

export interface RunResult {
  elapsedMs: number
  /** Last stderr lines. */
  logTail: string[]
  /** The last progress snapshot. */
  progress: ProgressSnapshot
}

/** Number of stderr lines kept for errors and the job log. */
export const LOG_TAIL_LINES = 20
export const DEFAULT_STALL_TIMEOUT_MS = 120_000

/** Progress on stdout, which the tracker and the stall watchdog read; added when the caller's args lack it. */
const PROGRESS_ARGS = ['-progress', 'pipe:1', '-nostats']

const running = new Map<string, AbortController>()

/**
 * Starts ffmpeg in a process group of its own, and on Linux with a parent-death signal (see children.ts):
 * fluent-ffmpeg has no option for either, so its spawn of this one command gets `detached` and, with the guard, runs
 * `setpriv … -- <ffmpeg> <args>` (fluent looks the binary up just before it spawns, synchronously once known).
 */
function guardedSpawn(command: ReturnType<typeof fluentCommand>): void {
  const guard = deathGuard()
  if (!OWN_GROUP && !guard) return
  type PathLookup = (cb: (err: unknown, bin?: string) => void) => void
  type Spawn = (args: string[], options: object, ...rest: unknown[]) => unknown
  const c = command as unknown as { _spawnFfmpeg: Spawn; _getFfmpegPath: PathLookup }
  const spawnFfmpeg = c._spawnFfmpeg
  const lookUp = c._getFfmpegPath
  c._spawnFfmpeg = function (this: typeof c, args, options, ...rest) {
    const opts = { ...options, detached: OWN_GROUP }
    if (!guard) return spawnFfmpeg.call(this, args, opts, ...rest)
    lookUp.call(this, (err, bin) => {
      if (err || !bin) {
        // No binary: fluent's own spawn says so.
        spawnFfmpeg.call(this, args, opts, ...rest)
        return
      }
      this._getFfmpegPath = (cb) => cb(null, guard[0])
      try {
        spawnFfmpeg.call(this, [...guard.slice(1), bin, ...args], opts, ...rest)
      } finally {
        this._getFfmpegPath = lookUp
      }
    })
    return undefined
  }
}

/** Niceness of encodes unless BULLPEN_FFMPEG_NICE says otherwise (0 = normal … 19 = lowest). */
export const DEFAULT_ENCODE_NICE = 10

/**
 * The CPU priority encodes run at: below normal by default, so that the desktop, the app's own UI and Bullpen's
 * short steps around each encode (probe, verification, Redis) never wait behind ffmpeg for a core. Encodes still
 * get every cycle nothing else wants, so an otherwise idle machine encodes exactly as fast.
 */
export function encodeNice(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['BULLPEN_FFMPEG_NICE']
  if (raw === undefined || raw === '') return DEFAULT_ENCODE_NICE
  const n = Number(raw)
  return Number.isInteger(n) && n >= 0 && n <= 19 ? n : DEFAULT_ENCODE_NICE
}

function lowerPriority(proc: ChildProcess | undefined, jobId: string): void {
  const nice = encodeNice()
  if (nice === 0 || proc?.pid === undefined) return
  try {
    // Right after spawn, before ffmpeg has loaded its libraries and started its encoder threads, which inherit it.
    setPriority(proc.pid, nice)
  } catch (err) {
    logger.debug({ jobId, err: String(err) }, 'cannot lower the priority of ffmpeg')
  }
}

/** Cancels the ffmpeg run of one job. Returns false when that job runs no ffmpeg here. */
export function abortJob(jobId: string, reason?: Error): boolean {
  const c = running.get(jobId)
  if (!c) return false
  c.abort(reason ?? new JobCancelledError())
  return true
}

/** Cancels every running ffmpeg (on quit). Returns how many were running. */
export function abortAll(reason?: Error): number {
  const all = [...running.values()]
  for (const c of all) c.abort(reason ?? new JobCancelledError('cancelled: Bullpen is shutting down'))
  return all.length
}

/** Ids of the jobs with an ffmpeg running in this process. */
export function runningJobs(): string[] {
  return [...running.keys()]
}

/** Quotes an argument for a log line that can be pasted into a POSIX shell. */
function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`
}

/** ffmpeg's follow-up lines that repeat, vaguely, what an earlier line said precisely. */
const GENERIC =
  /^(Conversion failed!|Error initializing output stream|Could not write header for output file|Failed to inject frame into filter network|Error while (processing|filtering|decoding|opening encoder)|Error reinitializing filters|To ignore this, add a trailing|Exiting normally|Press \[q\]|frame=|size=|video:)/
const ERRORISH =
  /error|invalid|fail|\bnot\b|\bno\b|unsupported|cannot|could not|unable|denied|incorrect|too many|unknown|nothing|divisible|matches no/i

/**
 * The most telling line of ffmpeg's stderr for a one-line error: the first error-like line after the stream
 * mapping that is not one of ffmpeg's generic follow-ups ("Conversion failed!", "Error initializing output
 * stream …"), without its "[component @ 0x…]" prefix.
 */
export function mostTellingLine(lines: readonly string[]): string | null {
  const mapping = lines.findLastIndex((l) => l.startsWith('Stream mapping:'))
  const clean = lines
    .slice(mapping + 1)
    .map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i, '').trim())
    .filter((l) => l !== '' && !GENERIC.test(l) && !/^Stream #\d+:\d+ ->/.test(l))
  return clean.find((l) => ERRORISH.test(l)) ?? clean.at(-1) ?? null
}

/**
 * The URLs of pool/relay.ts: plain HTTP on the IPv4 loopback, a 32-hex secret path segment, then the file's name
 * (percent-encoded). Built by the relay, never taken from a payload; nothing else is ever given to ffmpeg as a URL.
 */
const RELAY_URL = /^http:\/\/127\.0\.0\.1:\d{1,5}\/[a-f0-9]{32}\/([A-Za-z0-9%._~!$&'()*+,;=@-]{1,1024})$/

/** True when `input` is an input relay's URL (see {@link RELAY_URL}). */
export function isRelayUrl(input: string): boolean {
  return RELAY_URL.test(input)
}

/** ffmpeg's input argument and the name messages use: `file:<absolute path>`, or a relay URL as it is. */
function inputOf(input: string): { arg: string; name: string; options: string[] } {
  const m = RELAY_URL.exec(input)
  if (m?.[1] !== undefined) {
    let name = m[1]
    try {
      name = decodeURIComponent(name)
    } catch {
      // an undecodable name is still a name
    }
    // Seekable: the relay answers Range requests (an mp4 whose moov is at the end needs one).
    return { arg: input, name, options: ['-seekable', '1'] }
  }
  const abs = path.resolve(input)
  // `file:` + absolute paths: a name starting with "-" or holding ":" is never read as an option or protocol.
  return { arg: `file:${abs}`, name: path.basename(abs), options: [] }
}

/** Runs ffmpeg: `-i file:<input> <args> -y file:<output>` (or `-i <relay URL>`). Resolves when ffmpeg exits 0. */
export function runFfmpeg(opts: RunOptions): Promise<RunResult> {
  const { jobId } = opts
  if (running.has(jobId)) return Promise.reject(new Error(`job ${jobId} already has an ffmpeg running`))
  const controller = new AbortController()
  running.set(jobId, controller)
  const started = Date.now()
  const input = inputOf(opts.input)
  const name = input.name
  const tail: string[] = []
  const tracker = createProgressTracker(opts.durationSec)
  const stallMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS
  const graceMs = opts.killGraceMs ?? 3000

  const onOuterAbort = (): void => {
    controller.abort(opts.signal ? abortReason(opts.signal) : new JobCancelledError())
  }
  if (opts.signal?.aborted) onOuterAbort()
  else opts.signal?.addEventListener('abort', onOuterAbort, { once: true })

  let stallTimer: NodeJS.Timeout | undefined
  let killTimer: NodeJS.Timeout | undefined
  let failure: Error | null = null

  const promise = new Promise<RunResult>((resolve, reject) => {
    if (controller.signal.aborted) {
      reject(controllerReason(controller))
      return
    }
    const { ffmpeg } = ffmpegPaths()
    const command = fluentCommand({ stdoutLines: LOG_TAIL_LINES })
    guardedSpawn(command)
    command
      .input(input.arg)
      .inputOptions(['-hide_banner', '-nostdin', ...input.options])
      .output(`file:${path.resolve(opts.output)}`)
      // fluent-ffmpeg only adds -y for outputs it recognises as plain files; ours is a temp file we own.
      .outputOptions([...opts.args, ...(opts.args.includes('-progress') ? [] : PROGRESS_ARGS), '-y'])

    let proc: ChildProcess | undefined
    let lastKey = ''
    const kill = (why: Error): void => {
      if (failure) return
      failure = why
      if (!proc) return
      // SIGTERM lets ffmpeg close its files; SIGKILL if it has not gone after the grace period.
      proc.kill('SIGTERM')
      killTimer = setTimeout(() => proc?.kill('SIGKILL'), why instanceof TranscodeError ? 0 : graceMs)
    }
    const armStall = (): void => {
      clearTimeout(stallTimer)
      stallTimer = setTimeout(() => {
        kill(
          new TranscodeError(
            `${name}: ffmpeg made no progress for ${Math.round(stallMs / 1000)} s and was stopped`,
            [...tail],
          ),
        )
      }, stallMs)
    }
    const onAbort = (): void => kill(controllerReason(controller))
    controller.signal.addEventListener('abort', onAbort, { once: true })

    command.on('start', () => {
      proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc
      if (proc) killOnExit(proc)
      lowerPriority(proc, jobId)
      // ffmpeg's own command line, without the setpriv in front of it.
      const guard = deathGuard()
      const spawned = proc?.spawnargs ?? [ffmpeg]
      const argv = guard && spawned[0] === guard[0] ? spawned.slice(guard.length) : spawned
      logger.info({ jobId, cmd: argv.map(shellQuote).join(' ') }, 'ffmpeg started')
      armStall()
      if (controller.signal.aborted) onAbort()
      proc?.stdout?.setEncoding('utf8')
      proc?.stdout?.on('data', (chunk: string) => {
        for (const snap of tracker.write(chunk)) {
          // Stopped on purpose: ffmpeg still ends gracefully and says progress=end; that is not news to pass on.
          if (failure) return
          const key = `${snap.outTimeSec}|${snap.frame ?? ''}|${snap.done}`
          // Before the first output frame a live ffmpeg still sends progress blocks while the position stays at 0
          // (GIF palettegen reads the whole input first; encoder lookahead): those blocks count as life. After
          // that only a moving position does. A blocked ffmpeg sends no blocks at all and is caught either way.
          const warmingUp = snap.outTimeSec === 0 && !snap.frame
          if (key !== lastKey || warmingUp) {
            lastKey = key
            armStall()
          }
          try {
            opts.onProgress?.(snap)
          } catch (err) {
            logger.warn({ jobId, err }, 'progress listener threw')
          }
        }
      })
    })
    command.on('stderr', (line: string) => {
      tail.push(line)
      if (tail.length > LOG_TAIL_LINES) tail.shift()
      opts.onLog?.(line)
    })
    command.on('error', (err: Error) => {
      if (failure) {
        reject(failure)
        return
      }
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || /spawn .* ENOENT|Cannot find ffmpeg/.test(err.message)) {
        reject(
          new FfmpegMissingError(
            `ffmpeg not found at ${ffmpeg}. Install ffmpeg, or set FFMPEG_PATH to the ffmpeg executable.`,
          ),
        )
        return
      }
      const telling = mostTellingLine(tail) ?? err.message.split('\n')[0] ?? 'unknown error'
      reject(new TranscodeError(`${name}: ffmpeg failed: ${telling}`, [...tail]))
    })
    command.on('end', () => {
      if (failure) {
        // Aborted while ffmpeg was finishing: the abort wins, the caller asked for it.
        reject(failure)
        return
      }
      resolve({ elapsedMs: Date.now() - started, logTail: [...tail], progress: tracker.current() })
    })
    command.run()
  })

  return promise.finally(() => {
    clearTimeout(stallTimer)
    clearTimeout(killTimer)
    opts.signal?.removeEventListener('abort', onOuterAbort)
    running.delete(jobId)
  })
}

function controllerReason(c: AbortController): Error {
  return abortReason(c.signal)
}

/**
 * The error an aborted signal stands for: its reason when that is one of ours (any Error but the DOMException
 * `abort()` without an argument sets), else {@link JobCancelledError}.
 */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason
  if (r instanceof Error && !(r.name === 'AbortError' && r.constructor.name === 'DOMException')) return r
  return new JobCancelledError()
}
