/**
 * The one place where the ffmpeg and ffprobe binaries are found (CONVENTIONS 8), checked, and handed to
 * fluent-ffmpeg. Nothing else in Bullpen looks for them.
 */
import { execFile } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import ffmpegStaticPath from 'ffmpeg-static'
import fluentFfmpeg from 'fluent-ffmpeg'
import { FfmpegMissingError } from '../errors'
import { logger } from '../logger'

/** Where a binary was found. */
export type BinarySource =
  | 'setting'
  | 'env'
  | 'ffmpeg-static'
  | 'beside-ffmpeg'
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
 * ffprobe: the setting, then `FFPROBE_PATH` / `FFPROBE_BIN`, then an `ffprobe` beside the chosen ffmpeg, then PATH.
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
    const beside =
      ffmpeg !== null && path.isAbsolute(ffmpeg) ? path.join(path.dirname(ffmpeg), exeName('ffprobe')) : null
    if (beside !== null && isExecutableFile(beside)) {
      ffprobe = beside
      source.ffprobe = 'beside-ffmpeg'
    } else {
      ffprobe = findOnPath('ffprobe')
      if (ffprobe !== null) source.ffprobe = 'path'
    }
  }

  return { ffmpeg: ffmpeg ?? exeName('ffmpeg'), ffprobe: ffprobe ?? exeName('ffprobe'), source }
}

let current: FfmpegPaths | null = null
let encodersCache: { ffmpeg: string; encoders: Promise<Set<string>> } | null = null
let filtersCache: { ffmpeg: string; run: Promise<FiltersRun> } | null = null

/**
 * Chooses the binaries every later run uses (call it at start-up with the settings, and again when they change)
 * and wires fluent-ffmpeg to them. Returns what was found.
 */
export function useFfmpeg(opts: FfmpegLocateOptions = {}): FfmpegPaths {
  current = findFfmpeg(opts)
  encodersCache = null
  filtersCache = null
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

function runVersion(bin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-version'], { timeout: 15_000, windowsHide: true }, (err, stdout) => {
      // ExecFileException is an Error, but its Omit<>-built type is not recognised as one by the lint rule.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      if (err) reject(err)
      else resolve(stdout.split(/\r?\n/)[0]?.trim() ?? '')
    })
  })
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
    case 'path':
      return `${where} (found on PATH)`
    case 'not-found':
      return bin === 'ffmpeg'
        ? 'nowhere (no setting, no FFMPEG_PATH/FFMPEG_BIN, no ffmpeg-static binary, nothing on PATH)'
        : 'nowhere (no setting, no FFPROBE_PATH/FFPROBE_BIN, none beside ffmpeg, nothing on PATH)'
  }
}

/**
 * Runs ffmpeg and ffprobe with `-version`. Throws {@link FfmpegMissingError} saying which one is missing or
 * broken, where it was looked for, and how to fix it.
 */
export async function checkFfmpeg(opts?: FfmpegLocateOptions): Promise<FfmpegCheck> {
  const paths = opts ? findFfmpeg(opts) : ffmpegPaths()
  // ffmpeg's version comes from the banner of the filter list a worker needs anyway (one start instead of two).
  const [ff, fp] = await Promise.allSettled([
    filtersRun(paths.ffmpeg).then((r) => r.version || runVersion(paths.ffmpeg)),
    runVersion(paths.ffprobe),
  ])
  const problems: string[] = []
  const why = (r: PromiseRejectedResult): string => {
    const e = r.reason as NodeJS.ErrnoException
    if (e.code === 'ENOENT') return 'does not exist'
    if (e.code === 'EACCES') return 'is not executable'
    return `does not run (${e.message.split('\n')[0] ?? ''})`
  }
  if (ff.status === 'rejected') problems.push(`ffmpeg from ${describeSource('ffmpeg', paths)} ${why(ff)}`)
  if (fp.status === 'rejected') problems.push(`ffprobe from ${describeSource('ffprobe', paths)} ${why(fp)}`)
  if (ff.status === 'rejected' || fp.status === 'rejected') {
    const missing = [ff.status === 'rejected' ? 'ffmpeg' : '', fp.status === 'rejected' ? 'ffprobe' : '']
      .filter(Boolean)
      .join(' and ')
    const vars = [
      ff.status === 'rejected' ? 'FFMPEG_PATH' : '',
      fp.status === 'rejected' ? 'FFPROBE_PATH' : '',
    ]
      .filter(Boolean)
      .join(' / ')
    throw new FfmpegMissingError(
      `${missing} not usable: ${problems.join('; ')}. Install ffmpeg (it includes ffprobe: "sudo apt install ffmpeg", ` +
        `"brew install ffmpeg", or https://ffmpeg.org/download.html), or set ${vars} to the executable.`,
    )
  }
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
 * Rejects with execFile's own error (its code tells "missing" from "not executable").
 */
function runFilters(ffmpeg: string): Promise<FiltersRun> {
  return new Promise((resolve, reject) => {
    execFile(
      ffmpeg,
      ['-filters'],
      { timeout: 15_000, maxBuffer: 8 * 1024 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(err)
          return
        }
        const version = stderr.split(/\r?\n/).find((l) => /^ffmpeg version /.test(l)) ?? ''
        const filters = new Set<string>()
        for (const line of stdout.split(/\r?\n/)) {
          // Lines look like " .SC zscale            V->V       Apply resizing, …".
          const m = /^\s[A-Z.]{3}\s+(\S+)\s+\S+->\S+/.exec(line)
          if (m?.[1] !== undefined) filters.add(m[1])
        }
        resolve({ version: version.trim(), filters })
      },
    )
  })
}

/** The cached `ffmpeg -filters` run of this binary (started on first use). */
function filtersRun(ffmpeg: string): Promise<FiltersRun> {
  if (filtersCache?.ffmpeg !== ffmpeg) {
    const run = runFilters(ffmpeg)
    filtersCache = { ffmpeg, run }
    run.catch(() => {
      if (filtersCache?.run === run) filtersCache = null
    })
  }
  return filtersCache.run
}

/**
 * Names of the encoders this ffmpeg has, cached per binary. Read through fluent-ffmpeg (`ffmpeg -encoders`), which
 * keeps the list too: it checks it before every command it runs, so one read serves both.
 */
export function listEncoders(): Promise<Set<string>> {
  const { ffmpeg } = ffmpegPaths()
  if (encodersCache?.ffmpeg !== ffmpeg) {
    const encoders = new Promise<Set<string>>((resolve, reject) => {
      fluentFfmpeg()
        .setFfmpegPath(ffmpeg)
        .availableEncoders((err, found) => {
          if (err) {
            reject(new FfmpegMissingError(`cannot list ffmpeg encoders with ${ffmpeg}: ${errorText(err)}`))
            return
          }
          // The legend above the list parses as a line too ("V..... = Video"); its name is "=".
          resolve(new Set(Object.keys(found).filter((name) => /^[\w-]+$/.test(name))))
        })
    })
    encodersCache = { ffmpeg, encoders }
    encoders.catch(() => {
      if (encodersCache?.encoders === encoders) encodersCache = null
    })
  }
  return encodersCache.encoders
}

function errorText(err: unknown): string {
  return err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)
}

/**
 * Reads, once and all at the same time, everything about this ffmpeg that running a first job would otherwise wait
 * for: its encoders and filters (ours), and its formats (fluent-ffmpeg checks them before it spawns ffmpeg). A worker
 * calls it while it connects to Redis, so its first job starts as fast as its tenth.
 */
export async function warmFfmpeg(): Promise<void> {
  const { ffmpeg } = ffmpegPaths()
  const formats = new Promise<void>((resolve, reject) => {
    fluentFfmpeg()
      .setFfmpegPath(ffmpeg)
      .availableFormats((err) =>
        err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
      )
  })
  await Promise.all([listEncoders(), detectCapabilities(), formats])
}

/** Names of the filters this ffmpeg has (`ffmpeg -filters`), cached per binary. */
export async function listFilters(): Promise<Set<string>> {
  const { ffmpeg } = ffmpegPaths()
  try {
    return (await filtersRun(ffmpeg)).filters
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
