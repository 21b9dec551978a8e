/**
 * The one place where the ffmpeg and ffprobe binaries are found (CONVENTIONS 8), checked, and handed to
 * fluent-ffmpeg. Nothing else in Bullpen looks for them.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import ffmpegStaticPath from 'ffmpeg-static'
import fluentFfmpeg, {
  type Encoders,
  type FfmpegCommand,
  type FfmpegCommandOptions,
  type Formats,
} from 'fluent-ffmpeg'
import { FfmpegMissingError } from '../errors'
import { runCaptured } from './children'
import { logger } from '../logger'
import { readKnown, sameStamp, stampOf, writeKnown, type BinaryStamp, type KnownBinaries } from './known'

/** Where a binary was found. */
export type BinarySource =
  | 'setting'
  | 'env'
  | 'ffmpeg-static'
  | 'beside-ffmpeg'
  /** The static ffprobe of the `@ffprobe-installer/ffprobe` package (ffmpeg-static ships no ffprobe). */
  | 'ffprobe-installer'
  | 'path'
  /** Found nowhere: the bare name is returned and {@link checkFfmpeg} explains what to do. */
  | 'not-found'

export interface FfmpegLocateOptions {
  /** An explicit ffmpeg path from the settings; wins over everything else. */
  ffmpegPath?: string | undefined
  /** An explicit ffprobe path from the settings. */
  ffprobePath?: string | undefined
}

export interface FfmpegPaths {
  ffmpeg: string
  ffprobe: string
  source: {
    ffmpeg: BinarySource
    ffprobe: BinarySource
    /** The environment variable used, when source is `env`. */
    ffmpegEnv?: string
    ffprobeEnv?: string
  }
}

const isWindows = process.platform === 'win32'
const exeName = (name: string): string => (isWindows ? `${name}.exe` : name)

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false
    accessSync(p, isWindows ? constants.F_OK : constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Finds `name` on PATH the way a shell would, without running a shell. */
export function findOnPath(name: string, envPath = process.env['PATH'] ?? ''): string | null {
  for (const dir of envPath.split(path.delimiter)) {
    if (dir === '') continue
    const candidate = path.join(dir, exeName(name))
    if (isExecutableFile(candidate)) return candidate
  }
  return null
}

/**
 * Inside a packaged Electron app, files of node_modules live in `app.asar`, which cannot be executed; binaries are
 * shipped in `app.asar.unpacked` instead (electron-builder `asarUnpack`). Rewrites the path accordingly.
 */
export function unpackedAsarPath(p: string): string {
  return p.replace(/([\\/])app\.asar([\\/])/, '$1app.asar.unpacked$2')
}

/**
 * The static ffprobe that `@ffprobe-installer/ffprobe` installs for this platform (an optional dependency per
 * platform), or null when there is none. Resolved here rather than through the package's entry, which throws on
 * other platforms and follows `npm_config_platform` / `npm_config_arch` (set inside any `npm run`). Inside a
 * packaged app, its `app.asar.unpacked` copy.
 */
export function installerFfprobe(): string | null {
  try {
    const file = createRequire(import.meta.url).resolve(
      `@ffprobe-installer/${process.platform}-${process.arch}/${exeName('ffprobe')}`,
    )
    return unpackedAsarPath(file)
  } catch {
    return null
  }
}

function fromEnv(names: readonly string[]): { value: string; name: string } | null {
  for (const name of names) {
    const value = process.env[name]
    if (value !== undefined && value.trim() !== '') return { value: value.trim(), name }
  }
  return null
}

/**
 * Finds ffmpeg and ffprobe. ffmpeg: the explicit setting, then `FFMPEG_PATH` / `FFMPEG_BIN`, then the
 * `ffmpeg-static` binary (its `app.asar.unpacked` copy inside a packaged app), then `ffmpeg` on PATH.
 * ffprobe: the setting, then `FFPROBE_PATH` / `FFPROBE_BIN`, then an `ffprobe` beside the chosen ffmpeg (the pair
 * of a build someone chose), then the static one of `@ffprobe-installer/ffprobe` (ffmpeg-static ships none), then PATH.
 * An explicit setting or variable is taken as given (a wrong one is reported by {@link checkFfmpeg}, not skipped).
 */
export function findFfmpeg(opts: FfmpegLocateOptions = {}): FfmpegPaths {
  const source: FfmpegPaths['source'] = { ffmpeg: 'not-found', ffprobe: 'not-found' }

  let ffmpeg: string | null = null
  const ffmpegEnv = fromEnv(['FFMPEG_PATH', 'FFMPEG_BIN'])
  if (opts.ffmpegPath !== undefined && opts.ffmpegPath.trim() !== '') {
    ffmpeg = opts.ffmpegPath.trim()
    source.ffmpeg = 'setting'
  } else if (ffmpegEnv) {
    ffmpeg = ffmpegEnv.value
    source.ffmpeg = 'env'
    source.ffmpegEnv = ffmpegEnv.name
  } else {
    const bundled = typeof ffmpegStaticPath === 'string' ? unpackedAsarPath(ffmpegStaticPath) : null
    // ffmpeg-static may be installed without its binary (download skipped or failed): only use it if it exists.
    if (bundled !== null && isExecutableFile(bundled)) {
      ffmpeg = bundled
      source.ffmpeg = 'ffmpeg-static'
    } else {
      ffmpeg = findOnPath('ffmpeg')
      if (ffmpeg !== null) source.ffmpeg = 'path'
    }
  }

  let ffprobe: string | null = null
  const ffprobeEnv = fromEnv(['FFPROBE_PATH', 'FFPROBE_BIN'])
  if (opts.ffprobePath !== undefined && opts.ffprobePath.trim() !== '') {
    ffprobe = opts.ffprobePath.trim()
    source.ffprobe = 'setting'
  } else if (ffprobeEnv) {
    ffprobe = ffprobeEnv.value
    source.ffprobe = 'env'
    source.ffprobeEnv = ffprobeEnv.name
  } else {
    // The ffmpeg's own file: a bare name is the one PATH gives, a relative path is taken from the working folder.
    const ffmpegFile =
      ffmpeg === null || path.isAbsolute(ffmpeg)
        ? ffmpeg
        : /[\\/]/.test(ffmpeg)
          ? path.resolve(ffmpeg)
          : findOnPath(ffmpeg)
    const beside = ffmpegFile !== null ? path.join(path.dirname(ffmpegFile), exeName('ffprobe')) : null
    const bundled = installerFfprobe()
    if (beside !== null && isExecutableFile(beside)) {
      ffprobe = beside
      source.ffprobe = 'beside-ffmpeg'
    } else if (bundled !== null && isExecutableFile(bundled)) {
      ffprobe = bundled
      source.ffprobe = 'ffprobe-installer'
    } else if ((ffprobe = findOnPath('ffprobe')) !== null) {
      source.ffprobe = 'path'
    } else if (bundled !== null && existsSync(bundled)) {
      // There but not executable by this user (npm's install of it runs `chmod u+x`): the check says so, instead of
      // reporting an ffprobe found nowhere.
      ffprobe = bundled
      source.ffprobe = 'ffprobe-installer'
    }
  }

  return { ffmpeg: ffmpeg ?? exeName('ffmpeg'), ffprobe: ffprobe ?? exeName('ffprobe'), source }
}

let current: FfmpegPaths | null = null
/**
 * One promise per binary: what running it once told us. A run that fails is forgotten (the next call runs it again);
 * another binary replaces the entry.
 */
class PerBinary<T> {
  private entry: { bin: string; value: Promise<T> } | null = null
  constructor(private readonly load: (bin: string) => Promise<T>) {}

  get(bin: string): Promise<T> {
    if (this.entry?.bin !== bin) {
      const entry = { bin, value: this.load(bin) }
      this.entry = entry
      entry.value.catch(() => {
        if (this.entry === entry) this.entry = null
      })
    }
    return this.entry.value
  }

  /** Takes `value` as this binary's answer, unless one was already read. */
  seed(bin: string, value: T): void {
    if (this.entry?.bin !== bin) this.entry = { bin, value: Promise.resolve(value) }
  }

  reset(): void {
    this.entry = null
  }
}

interface Recalled {
  /** The record, when this process's lists came from it (nothing to save then). */
  record: KnownBinaries | null
  /** The binaries' stamps before they were run: what the runs find is saved with these. */
  stamps: { ffmpeg: BinaryStamp | null; ffprobe: BinaryStamp | null }
}
let recalling: { key: string; result: Promise<Recalled> } | null = null

/**
 * Chooses the binaries every later run uses (call it at start-up with the settings, and again when they change)
 * and wires fluent-ffmpeg to them. Returns what was found.
 */
export function useFfmpeg(opts: FfmpegLocateOptions = {}): FfmpegPaths {
  current = findFfmpeg(opts)
  for (const cache of [filtersOf, probeVersionOf, encodersOf, formatsOf, encoderNamesOf]) cache.reset()
  recalling = null
  fluentFfmpeg.setFfmpegPath(current.ffmpeg)
  fluentFfmpeg.setFfprobePath(current.ffprobe)
  return current
}

/** The binaries in use: those chosen by {@link useFfmpeg}, or found with defaults on first use. */
export function ffmpegPaths(): FfmpegPaths {
  return current ?? useFfmpeg()
}

export interface FfmpegCheck extends FfmpegPaths {
  /** First line of `ffmpeg -version`, e.g. "ffmpeg version 5.1.6-0+deb12u1 …". */
  ffmpegVersion: string
  ffprobeVersion: string
}

/** Start-up runs of ffmpeg/ffprobe: short, with lists of a few hundred lines at most. */
const RUN_LIMITS = { timeoutMs: 15_000, maxBuffer: 8 * 1024 * 1024 }

function runVersion(bin: string): Promise<string> {
  return runCaptured(bin, ['-version'], RUN_LIMITS).then(
    ({ stdout }) => stdout.split(/\r?\n/)[0]?.trim() ?? '',
  )
}

function describeSource(bin: 'ffmpeg' | 'ffprobe', p: FfmpegPaths): string {
  const src = p.source[bin]
  const where = bin === 'ffmpeg' ? p.ffmpeg : p.ffprobe
  switch (src) {
    case 'setting':
      return `the ${bin} path in the settings (${where})`
    case 'env':
      return `${bin === 'ffmpeg' ? p.source.ffmpegEnv : p.source.ffprobeEnv}=${where}`
    case 'ffmpeg-static':
      return `the bundled ffmpeg-static binary (${where})`
    case 'beside-ffmpeg':
      return `${where} (beside ffmpeg)`
    case 'ffprobe-installer':
      return `the bundled @ffprobe-installer binary (${where})`
    case 'path':
      return `${where} (found on PATH)`
    case 'not-found':
      return bin === 'ffmpeg'
        ? 'nowhere (no setting, no FFMPEG_PATH/FFMPEG_BIN, no ffmpeg-static binary, nothing on PATH)'
        : 'nowhere (no setting, no FFPROBE_PATH/FFPROBE_BIN, none beside ffmpeg, no @ffprobe-installer binary, nothing on PATH)'
  }
}

/**
 * Runs ffmpeg and ffprobe with `-version`. Throws {@link FfmpegMissingError} saying which one is missing or
 * broken, where it was looked for, and how to fix it.
 */
export async function checkFfmpeg(opts?: FfmpegLocateOptions, known?: string): Promise<FfmpegCheck> {
  const paths = opts ? findFfmpeg(opts) : ffmpegPaths()
  if (known !== undefined && !opts) {
    const rec = (await recall(paths, known)).record
    if (rec) return { ...paths, ffmpegVersion: rec.ffmpegVersion, ffprobeVersion: rec.ffprobeVersion }
  }
  // ffmpeg's version comes from the banner of the filter list a worker needs anyway (one start instead of two).
  const [ff, fp] = await Promise.allSettled([
    filtersOf.get(paths.ffmpeg).then((r) => r.version || runVersion(paths.ffmpeg)),
    probeVersionOf.get(paths.ffprobe),
  ])
  const problems: string[] = []
  const why = (r: PromiseRejectedResult): string => {
    const e = r.reason as NodeJS.ErrnoException
    if (e.code === 'ENOENT') return 'does not exist'
    if (e.code === 'EACCES') return 'is not executable'
    return `does not run (${e.message.split('\n')[0] ?? ''})`
  }
  /** What is wrong with one binary, or null: it runs and says it is that program ("ffprobe version …"). */
  const problem = (bin: 'ffmpeg' | 'ffprobe', r: PromiseSettledResult<string>): string | null => {
    const from = `${bin} from ${describeSource(bin, paths)}`
    if (r.status === 'rejected') {
      const hint =
        paths.source[bin] === 'ffprobe-installer' && (r.reason as NodeJS.ErrnoException).code === 'EACCES'
          ? ` by this user (npm installs it with "chmod u+x": run "chmod a+rx ${paths[bin]}")`
          : ''
      return `${from} ${why(r)}${hint}`
    }
    if (!r.value.toLowerCase().startsWith(`${bin} version`)) {
      return `${from} is not ${bin} (its -version says ${r.value ? `"${r.value.slice(0, 80)}"` : 'nothing'})`
    }
    return null
  }
  const ffProblem = problem('ffmpeg', ff)
  const fpProblem = problem('ffprobe', fp)
  for (const p of [ffProblem, fpProblem]) if (p !== null) problems.push(p)
  if (ff.status === 'rejected' || fp.status === 'rejected' || problems.length > 0) {
    const missing = [ffProblem ? 'ffmpeg' : '', fpProblem ? 'ffprobe' : ''].filter(Boolean).join(' and ')
    const vars = [ffProblem ? 'FFMPEG_PATH' : '', fpProblem ? 'FFPROBE_PATH' : ''].filter(Boolean).join(' / ')
    throw new FfmpegMissingError(
      `${missing} not usable: ${problems.join('; ')}. Install ffmpeg (it includes ffprobe: "sudo apt install ffmpeg", ` +
        `"brew install ffmpeg", or https://ffmpeg.org/download.html), or set ${vars} to the executable.`,
    )
  }
  logger.debug(
    {
      ffmpeg: paths.ffmpeg,
      ffprobe: paths.ffprobe,
      source: paths.source,
      ffmpegVersion: ff.value,
      ffprobeVersion: fp.value,
    },
    'ffmpeg and ffprobe checked',
  )
  return { ...paths, ffmpegVersion: ff.value, ffprobeVersion: fp.value }
}

interface FiltersRun {
  /** The first line `ffmpeg -version` would print, from the banner of this same run. */
  version: string
  filters: Set<string>
}

/**
 * One `ffmpeg -filters` run, banner kept: its stderr starts with the version line, so the start-up check needs no
 * separate `ffmpeg -version` (each ffmpeg start costs ~0.1 s of CPU with a distribution's shared-library build).
 * Rejects with the run's own error (its code tells "missing" from "not executable").
 */
async function runFilters(ffmpeg: string): Promise<FiltersRun> {
  const { stdout, stderr } = await runCaptured(ffmpeg, ['-filters'], RUN_LIMITS)
  const version = stderr.split(/\r?\n/).find((l) => /^ffmpeg version /.test(l)) ?? ''
  const filters = new Set<string>()
  for (const line of stdout.split(/\r?\n/)) {
    // Lines look like " .SC zscale            V->V       Apply resizing, …".
    const m = /^\s[A-Z.]{3}\s+(\S+)\s+\S+->\S+/.exec(line)
    if (m?.[1] !== undefined) filters.add(m[1])
  }
  return { version: version.trim(), filters }
}

/** `ffprobe -version` of each binary, `ffmpeg -filters` (banner kept) of each ffmpeg: run once. */
const probeVersionOf = new PerBinary(runVersion)
const filtersOf = new PerBinary(runFilters)

/** `ffmpeg <flag>`'s standard output. */
function runList(ffmpeg: string, flag: '-encoders' | '-formats'): Promise<string> {
  return runCaptured(ffmpeg, ['-hide_banner', flag], RUN_LIMITS).then(({ stdout }) => stdout)
}

/**
 * `ffmpeg -encoders`, in the shape fluent-ffmpeg's own parser gives (its capability check reads it). Read here, per
 * binary: fluent-ffmpeg keeps one list for the whole process, whichever ffmpeg it came from.
 */
export function parseEncoders(stdout: string): Encoders {
  const found: Encoders = {}
  for (const line of stdout.split(/\r\n|\r|\n/)) {
    // " V....D libx264              libx264 H.264 / AVC / …"; the legend's "V..... = Video" is not one.
    const m = /^\s*([VAS.])([F.])([S.])([X.])([B.])([D.]) (\S+) +(.*)$/.exec(line)
    if (!m || m[7] === '=' || m[7] === undefined) continue
    found[m[7]] = {
      type: ({ V: 'video', A: 'audio', S: 'subtitle' } as Record<string, string>)[m[1] ?? ''] ?? 'other',
      description: m[8] ?? '',
      frameMT: m[2] === 'F',
      sliceMT: m[3] === 'S',
      experimental: m[4] === 'X',
      drawHorizBand: m[5] === 'B',
      directRendering: m[6] === 'D',
    }
  }
  return found
}

/** `ffmpeg -formats`, in fluent-ffmpeg's shape (see {@link parseEncoders}). */
export function parseFormats(stdout: string): Formats {
  const found: Formats = {}
  for (const line of stdout.split(/\r\n|\r|\n/)) {
    // " DE matroska,webm   Matroska / WebM"
    const m = /^\s*([D ])([E ])\s+(\S+)\s+(.*)$/.exec(line)
    if (!m) continue
    for (const name of (m[3] ?? '').split(',')) {
      const f = (found[name] ??= { description: m[4] ?? '', canDemux: false, canMux: false })
      if (m[1] === 'D') f.canDemux = true
      if (m[2] === 'E') f.canMux = true
    }
  }
  return found
}

/** The capability lists of each ffmpeg, read once (fluent-ffmpeg's shape), and the encoder names we check. */
const encodersOf = new PerBinary((ffmpeg) => runList(ffmpeg, '-encoders').then(parseEncoders))
const formatsOf = new PerBinary((ffmpeg) => runList(ffmpeg, '-formats').then(parseFormats))
const encoderNamesOf = new PerBinary((ffmpeg) =>
  encodersOf.get(ffmpeg).then(
    // Only names an encoder option can take (parseEncoders already leaves out the legend's "=").
    (found) => new Set(Object.keys(found).filter((name) => /^[\w-]+$/.test(name))),
    (err: unknown) => {
      throw new FfmpegMissingError(`cannot list ffmpeg encoders with ${ffmpeg}: ${errorText(err)}`)
    },
  ),
)

/** Names of the encoders this ffmpeg has (`ffmpeg -encoders`), cached per binary. */
export function listEncoders(): Promise<Set<string>> {
  return encoderNamesOf.get(ffmpegPaths().ffmpeg)
}

/**
 * A fluent-ffmpeg command on the ffmpeg in use. fluent-ffmpeg checks the output format and codecs against ffmpeg's
 * formats and encoders before every run; this command answers that check from this process's lists (read once per
 * binary, or recalled from the data folder) rather than running `ffmpeg -formats` and `-encoders` again in every new
 * process.
 */
export function fluentCommand(options?: FfmpegCommandOptions): FfmpegCommand {
  const { ffmpeg } = ffmpegPaths()
  const command = fluentFfmpeg(options).setFfmpegPath(ffmpeg)
  // fluent-ffmpeg calls back with a null error on success; its typings say Error.
  type Answer<T> = (err: Error | null, value: T) => void
  const answer =
    <T>(list: PerBinary<T>) =>
    (callback: (err: Error, value: T) => void): void => {
      const cb = callback as Answer<T>
      list.get(ffmpeg).then(
        (value) => cb(null, value),
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err)), {} as T),
      )
    }
  command.availableEncoders = command.getAvailableEncoders = answer(encodersOf)
  command.availableFormats = command.getAvailableFormats = answer(formatsOf)
  return command
}

function errorText(err: unknown): string {
  return err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)
}

/**
 * Seeds every per-binary cache of this process (versions, filters, encoders, formats) from the record in `file` when
 * it was made from these very binaries as they are now and they still run and give the versions it holds (see
 * known.ts); otherwise notes their stamps, so that what the runs find can be saved for the next start. Once per
 * binaries and file.
 */
function recall(paths: FfmpegPaths, file: string): Promise<Recalled> {
  const key = JSON.stringify([paths.ffmpeg, paths.ffprobe, file])
  if (recalling?.key === key) return recalling.result
  const result = (async () => {
    const stamps = { ffmpeg: stampOf(paths.ffmpeg), ffprobe: stampOf(paths.ffprobe) }
    const rec = await readKnown(file, stamps)
    if (!rec) return { record: null, stamps }
    const { ffmpeg, ffprobe } = paths
    // The stamps cannot see a wrapper script's target or a shared library: both binaries must still start, as
    // the versions recorded. A failure here is reported by the check, exactly as without a record.
    const [ffv, fpv] = await Promise.allSettled([runVersion(ffmpeg), probeVersionOf.get(ffprobe)])
    if (
      ffv.status !== 'fulfilled' ||
      fpv.status !== 'fulfilled' ||
      ffv.value !== rec.ffmpegVersion ||
      fpv.value !== rec.ffprobeVersion
    ) {
      logger.debug({ file }, 'ffmpeg or ffprobe no longer as recorded: checking them again')
      return { record: null, stamps }
    }
    // Only where nothing was read yet: a list this process already has is at least as fresh.
    filtersOf.seed(ffmpeg, { version: rec.ffmpegVersion, filters: new Set(rec.filters) })
    probeVersionOf.seed(ffprobe, rec.ffprobeVersion)
    encodersOf.seed(ffmpeg, rec.encoders)
    formatsOf.seed(ffmpeg, rec.formats)
    logger.debug(
      { file, ffmpeg, ffprobe },
      'ffmpeg and ffprobe are as recorded: their lists are not read again',
    )
    return { record: rec, stamps }
  })()
  recalling = { key, result }
  return result
}

/** Saves what running the binaries found, when they are still the files they were before they ran. */
async function remember(paths: FfmpegPaths, file: string, before: Recalled['stamps']): Promise<void> {
  const now = { ffmpeg: stampOf(paths.ffmpeg), ffprobe: stampOf(paths.ffprobe) }
  if (!now.ffmpeg || !now.ffprobe) return
  if (!sameStamp(before.ffmpeg, now.ffmpeg) || !sameStamp(before.ffprobe, now.ffprobe)) return
  const [filters, ffprobeVersion, encoders, formats] = await Promise.all([
    filtersOf.get(paths.ffmpeg),
    probeVersionOf.get(paths.ffprobe),
    encodersOf.get(paths.ffmpeg),
    formatsOf.get(paths.ffmpeg),
  ])
  // No banner, no version to recall: run it again next time.
  if (!filters.version || !ffprobeVersion) return
  await writeKnown(file, {
    v: 1,
    ffmpeg: now.ffmpeg,
    ffprobe: now.ffprobe,
    ffmpegVersion: filters.version,
    ffprobeVersion,
    filters: [...filters.filters].sort(),
    encoders,
    formats,
  })
}

/**
 * Reads, once and all at the same time, everything about this ffmpeg that running a first job would otherwise wait
 * for: its encoders and filters (ours), and its formats (fluent-ffmpeg checks them before it spawns ffmpeg). A worker
 * calls it while it connects to Redis, so its first job starts as fast as its tenth.
 *
 * With `known` (a file in the data folder), the lists are recalled from it when it was made from these very
 * binaries and they still give the recorded versions (only `-version` is run); otherwise they are read and saved
 * there for the next start.
 */
export async function warmFfmpeg(known?: string): Promise<void> {
  const paths = ffmpegPaths()
  const recalled = known !== undefined ? await recall(paths, known) : null
  await Promise.all([listEncoders(), detectCapabilities(), formatsOf.get(paths.ffmpeg)])
  if (known !== undefined && recalled && !recalled.record) await remember(paths, known, recalled.stamps)
}

/** Names of the filters this ffmpeg has (`ffmpeg -filters`), cached per binary. */
export async function listFilters(): Promise<Set<string>> {
  const { ffmpeg } = ffmpegPaths()
  try {
    return (await filtersOf.get(ffmpeg)).filters
  } catch (err) {
    throw new FfmpegMissingError(`cannot list ffmpeg filters with ${ffmpeg}: ${errorText(err)}`)
  }
}

/** What the argument builder may use beyond the basics; decided at run time, passed in so the builder stays pure. */
export interface FfmpegCapabilities {
  /** zscale + tonemap are there: HDR (PQ/HLG) input can be tone-mapped to SDR BT.709. */
  tonemap: boolean
}

/** Detects {@link FfmpegCapabilities} of the ffmpeg in use. */
export async function detectCapabilities(): Promise<FfmpegCapabilities> {
  const filters = await listFilters()
  const caps = { tonemap: filters.has('zscale') && filters.has('tonemap') }
  logger.debug({ caps }, 'ffmpeg capabilities')
  return caps
}
