/**
 * Output naming and the final commit: never over the input, never over an existing file.
 */
import { constants } from 'node:fs'
import { copyFile, link, lstat, unlink } from 'node:fs/promises'
import path from 'node:path'

const MAX_ATTEMPTS = 10_000

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

export function samePath(a: string, b: string): boolean {
  const ra = path.resolve(a)
  const rb = path.resolve(b)
  // Windows and macOS file systems are usually case-insensitive: compare case-folded there.
  return process.platform === 'win32' || process.platform === 'darwin'
    ? ra.toLowerCase() === rb.toLowerCase()
    : ra === rb
}

/** Splits "clip (2).mp4" into { stem: "clip", n: 2, ext: "mp4" }. */
function splitName(file: string): { stem: string; n: number; ext: string } {
  const ext = path.extname(file)
  const base = path.basename(file, ext)
  const m = /^(.*) \((\d+)\)$/.exec(base)
  if (m?.[1] !== undefined && m[2] !== undefined && m[1] !== '') {
    return { stem: m[1], n: Number(m[2]), ext: ext.replace(/^\./, '') }
  }
  return { stem: base, n: 0, ext: ext.replace(/^\./, '') }
}

function numbered(dir: string, stem: string, n: number, ext: string): string {
  const suffix = ext !== '' ? `.${ext}` : ''
  return path.join(dir, n === 0 ? `${stem}${suffix}` : `${stem} (${n})${suffix}`)
}

/**
 * The output path for `inputPath` converted to `extension` in `outputDir`: `<input name>.<ext>`, or
 * `<name> (1).<ext>`, `<name> (2).<ext>`… when that exists or is the input itself.
 */
export async function planOutput(inputPath: string, outputDir: string, extension: string): Promise<string> {
  const inExt = path.extname(inputPath)
  const stem = path.basename(inputPath, inExt) || 'output'
  const ext = extension.replace(/^\./, '')
  const dir = path.resolve(outputDir)
  for (let n = 0; n < MAX_ATTEMPTS; n++) {
    const candidate = numbered(dir, stem, n, ext)
    if (samePath(candidate, inputPath)) continue
    if (!(await exists(candidate))) return candidate
  }
  throw new Error(`no free output name for ${stem}.${ext} in ${dir}`)
}

/**
 * The temp file a job writes before its output is committed: hidden, beside the destination (same file system,
 * so the commit is a link, not a copy), keeping the extension: `.clip.bullpen-<jobId>.part.mp4`.
 */
export function tempPathFor(dest: string, jobId: string): string {
  const ext = path.extname(dest)
  const suffix = `.bullpen-${safeJobId(jobId)}.part${ext}`
  // A long output name still leaves room for the temp file's own: its base is shortened to fit NAME_MAX.
  const base = fitBytes(path.basename(dest, ext), NAME_MAX - 1 - Buffer.byteLength(suffix) - PARTIAL_ROOM)
  return path.join(path.dirname(dest), `.${base}${suffix}`)
}

/** Longest file name (bytes) on the file systems Bullpen writes to (Linux, macOS, Windows: 255). */
export const NAME_MAX = 255
/** What an upload partial adds to a temp name: `-<16 hex>-<size>`. */
const PARTIAL_ROOM = 1 + 16 + 1 + 16

/** `text` cut to at most `max` UTF-8 bytes, on a character boundary. */
function fitBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let out = ''
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > max) break
    out += ch
  }
  return out
}

/** A job id as temp file names carry it (the file service's upload partials too). */
export function safeJobId(jobId: string): string {
  return jobId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)
}

/**
 * Whether `name`, in an output folder, is a temp file that {@link tempPathFor} gave this job for this input: the
 * input's own name (with any ` (n)`), this job id, and an upload partial's `-<sha16>-<size>` if any. Nothing else
 * is: job ids repeat across queues and Redis databases, so a clean-up that went by the id alone deleted other jobs'
 * temp files, and any file someone named like one (the job's own input, too).
 */
export function isTempOf(name: string, inputPath: string, jobId: string): boolean {
  // The id holds only [A-Za-z0-9_-]: nothing a pattern reads as special.
  const m = new RegExp(
    `^\\.(.+)\\.bullpen-${safeJobId(jobId)}\\.part(-[0-9a-f]{16}-\\d{1,16})?(\\.[^./]*)?$`,
  ).exec(name)
  const base = m?.[1]
  if (base === undefined) return false
  const stem = path.basename(inputPath, path.extname(inputPath)) || 'output'
  if (base === stem || /^ \(\d+\)$/.test(base.startsWith(stem) ? base.slice(stem.length) : '')) return true
  // A base shortened to fit (see tempPathFor) is the start of the output's name.
  const shortened = Buffer.byteLength(name) > NAME_MAX - PARTIAL_ROOM - 8
  return shortened && `${stem} (`.startsWith(base)
}

/** Error codes meaning "this file system cannot hard-link". */
const NO_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK', 'EACCES'])

/** Errors of a copy that may have created and partly written the destination. */
const PARTIAL_COPY = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EFBIG'])

/**
 * Moves the finished temp file to `dest` without ever overwriting anything: `link()` fails when the name is
 * taken (then the next " (n)" name is tried), and where hard links are not supported `copyFile` with
 * COPYFILE_EXCL does the same. Removes the temp file. Returns the path the output ended up at.
 */
export async function commitOutput(temp: string, dest: string): Promise<string> {
  const dir = path.dirname(path.resolve(dest))
  const { stem, n: first, ext } = splitName(dest)
  let useCopy = false
  for (let n = first; n < first + MAX_ATTEMPTS; n++) {
    const candidate = numbered(dir, stem, n, ext)
    if (samePath(candidate, temp)) continue
    if (!useCopy) {
      try {
        await link(temp, candidate)
        await unlink(temp)
        return candidate
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? ''
        if (code === 'EEXIST') continue
        if (!NO_LINK.has(code)) throw err
        useCopy = true
      }
    }
    try {
      await copyFile(temp, candidate, constants.COPYFILE_EXCL)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') continue
      // A copy that failed half-way (disk full, I/O error) left a partial file under the name it had just
      // created exclusively: remove it. Other errors happen before creation, so nothing of anyone else is touched.
      if (code !== undefined && PARTIAL_COPY.has(code)) await unlink(candidate).catch(() => undefined)
      throw err
    }
    await unlink(temp)
    return candidate
  }
  throw new Error(`no free output name for ${path.basename(dest)} in ${dir}`)
}
