/**
 * `POST /api/upload`: a browser's dropped file streamed into this node's inbox. The body is the raw file (no
 * multipart), the name comes from the `X-File-Name` header (URI-encoded) and is sanitised; nothing is ever
 * overwritten: the body lands in a hidden part file that is then hard-linked (atomic, fails if taken) under the
 * first free name.
 */
import { randomBytes } from 'node:crypto'
import { constants, createWriteStream } from 'node:fs'
import { copyFile, link, mkdir, stat, unlink } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { IncomingMessage } from 'node:http'

/** Default upload size limit: 8 GiB. */
export const DEFAULT_MAX_UPLOAD_BYTES = 8 * 1024 ** 3

/** Longest file name we write, in UTF-8 bytes (most file systems allow 255). */
const MAX_NAME_BYTES = 180
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i

/** An upload refused with an HTTP status and a message for the person who dropped the file. */
export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
    this.name = 'UploadError'
  }
}

function truncateUtf8(s: string, maxBytes: number): string {
  let out = ''
  let bytes = 0
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8')
    if (bytes + n > maxBytes) break
    out += ch
    bytes += n
  }
  return out
}

/**
 * A file name safe to create in the inbox from whatever a client sent: URI-decoded, folders stripped (`/` and `\`),
 * control and reserved characters replaced, no leading dots (no hidden files, no `..`), no Windows device names,
 * at most {@link MAX_NAME_BYTES} bytes keeping the extension. Never empty.
 */
export function safeFileName(raw: string): string {
  let name = raw
  try {
    name = decodeURIComponent(raw)
  } catch {
    // Not URI-encoded: take it as it is.
  }
  name = name.split(/[\\/]/).pop() ?? ''
  // eslint-disable-next-line no-control-regex
  name = name.normalize('NFC').replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_')
  name = name.replace(/^[\s.]+/, '').replace(/[\s.]+$/, '')
  if (WINDOWS_RESERVED.test(name)) name = `_${name}`
  if (name === '') name = 'upload'
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    const ext = extname(name)
    const keepExt = Buffer.byteLength(ext, 'utf8') <= 16 ? ext : ''
    const stem = name.slice(0, name.length - keepExt.length)
    name = truncateUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(keepExt, 'utf8')).trimEnd() + keepExt
  }
  return name
}

/** `name`, `name (1).ext`, `name (2).ext`, … */
function candidateName(name: string, n: number): string {
  if (n === 0) return name
  const ext = extname(name)
  return `${name.slice(0, name.length - ext.length)} (${n})${ext}`
}

/** Makes `tmp` appear under the first free name derived from `name` in `dir`, never replacing a file. */
async function placeWithoutOverwrite(tmp: string, dir: string, name: string): Promise<string> {
  for (let n = 0; n < 10_000; n++) {
    const target = join(dir, candidateName(name, n))
    try {
      await link(tmp, target)
      return target
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') continue
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'ENOSYS') {
        // File systems without hard links (FAT, some network mounts): an exclusive copy still never overwrites.
        try {
          await copyFile(tmp, target, constants.COPYFILE_EXCL)
          return target
        } catch (copyErr) {
          if ((copyErr as NodeJS.ErrnoException).code === 'EEXIST') continue
          throw copyErr
        }
      }
      throw err
    }
  }
  throw new UploadError(409, `too many files named like ${name} in the inbox`)
}

/** What an upload produced. */
export interface UploadResult {
  /** Absolute path of the stored file in the inbox. */
  path: string
  name: string
  size: number
}

/**
 * Streams the request body into `inboxDir` under a sanitised, free name. Refuses (413) bodies over `maxBytes`,
 * empty bodies (400) and requests without a name (400); a partial file is never left behind.
 */
export async function receiveUpload(
  req: IncomingMessage,
  inboxDir: string,
  maxBytes: number,
): Promise<UploadResult> {
  const rawName = req.headers['x-file-name']
  if (typeof rawName !== 'string' || rawName.trim() === '') {
    throw new UploadError(400, 'missing X-File-Name header')
  }
  const name = safeFileName(rawName)
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new UploadError(413, `${name} is larger than the upload limit of ${maxBytes} bytes`)
  }
  await mkdir(inboxDir, { recursive: true })
  const tmp = join(inboxDir, `.upload-${randomBytes(8).toString('hex')}.part`)
  let size = 0
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length
      if (size > maxBytes)
        done(new UploadError(413, `${name} is larger than the upload limit of ${maxBytes} bytes`))
      else done(null, chunk)
    },
  })
  try {
    await pipeline(req, limiter, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }))
    if (size === 0) throw new UploadError(400, `${name} is empty`)
    const path = await placeWithoutOverwrite(tmp, inboxDir, name)
    return { path, name, size: (await stat(path)).size }
  } finally {
    await unlink(tmp).catch(() => undefined)
  }
}
