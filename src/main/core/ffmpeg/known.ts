/**
 * What running a pair of ffmpeg/ffprobe binaries taught us (their versions, encoders, formats and filters), kept in
 * the data folder so that the next start of a node need not read the lists again. Every start of Debian's ffmpeg
 * costs ~50 ms of CPU (it loads ~100 shared libraries) and the four runs of a first start kept a worker's first
 * encode waiting ~0.25 s on two cores.
 *
 * The record is only taken for binaries that are, as far as the file system can tell, the ones it was made from
 * (same real path, size, modification and change times, inode) and that still run and report the same versions:
 * every start still runs `ffmpeg -version` and `ffprobe -version`, which catches what the files' stamps cannot see
 * (a wrapper script whose target changed, a shared library upgraded or broken), and a missing or broken binary
 * gets the same clear error as without a record. What the record saves are the long lists (encoders, formats,
 * filters): two runs of four. Anything else (an upgrade, a new setting, another FFMPEG_PATH, a damaged or foreign
 * file) and the binaries are checked and their lists read again.
 */
import { constants, realpathSync, statSync } from 'node:fs'
import { open, rename, rm, writeFile } from 'node:fs/promises'
import type { Encoders, Formats } from 'fluent-ffmpeg'
import { z } from 'zod'
import { logger } from '../logger'

const StampSchema = z.object({
  path: z.string(),
  size: z.number(),
  mtimeMs: z.number(),
  ctimeMs: z.number(),
  ino: z.number(),
})

/** A binary as it is on disk now. */
export type BinaryStamp = z.infer<typeof StampSchema>

const KnownSchema = z.object({
  /** Bumped whenever the shape or the meaning of a field changes: an older record is then a miss. */
  v: z.literal(1),
  ffmpeg: StampSchema,
  ffprobe: StampSchema,
  ffmpegVersion: z.string().min(1),
  ffprobeVersion: z.string().min(1),
  filters: z.array(z.string()),
  /** fluent-ffmpeg's own parse of `ffmpeg -encoders` and `-formats`, as its capability check wants them. */
  encoders: z.record(
    z.string(),
    z.object({
      type: z.string(),
      description: z.string(),
      frameMT: z.boolean(),
      sliceMT: z.boolean(),
      experimental: z.boolean(),
      drawHorizBand: z.boolean(),
      directRendering: z.boolean(),
    }),
  ),
  formats: z.record(
    z.string(),
    z.object({ description: z.string(), canDemux: z.boolean(), canMux: z.boolean() }),
  ),
})

export type KnownBinaries = z.infer<typeof KnownSchema> & { encoders: Encoders; formats: Formats }

/** The stamp of the file `bin` resolves to, or null when it is not a regular file we can stat. */
export function stampOf(bin: string): BinaryStamp | null {
  try {
    const real = realpathSync(bin)
    const s = statSync(real)
    if (!s.isFile()) return null
    return { path: real, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino }
  } catch {
    return null
  }
}

export function sameStamp(a: BinaryStamp | null, b: BinaryStamp | null): boolean {
  return (
    a !== null &&
    b !== null &&
    a.path === b.path &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.ino === b.ino
  )
}

/** A real record is ~75 KB; anything much larger is not one (and is not read into memory). */
const MAX_RECORD_BYTES = 4 * 1024 * 1024

/** The text of `file` when it is a regular file of a sane size; a FIFO, a device or a folder is never read. */
async function readRegularFile(file: string): Promise<string> {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new Error('not a regular file')
    if (st.size > MAX_RECORD_BYTES) throw new Error(`${st.size} bytes: too large`)
    return await fh.readFile('utf8')
  } finally {
    await fh.close()
  }
}

/**
 * The record in `file` when it was made from exactly these binaries as they are now; null otherwise (no file, an
 * unreadable or invalid one, other binaries, changed ones).
 */
export async function readKnown(
  file: string,
  now: { ffmpeg: BinaryStamp | null; ffprobe: BinaryStamp | null },
): Promise<KnownBinaries | null> {
  let raw: unknown
  try {
    raw = JSON.parse(await readRegularFile(file))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger.debug({ file, err: String(err) }, 'ffmpeg record unreadable; running ffmpeg to check it')
    }
    return null
  }
  const parsed = KnownSchema.safeParse(raw)
  if (!parsed.success) {
    logger.debug({ file }, 'ffmpeg record invalid; running ffmpeg to check it')
    return null
  }
  const k: KnownBinaries = parsed.data
  return sameStamp(k.ffmpeg, now.ffmpeg) && sameStamp(k.ffprobe, now.ffprobe) ? k : null
}

/** Writes the record (whole or not at all: temp file, then rename). Failing to write only costs the next start. */
export async function writeKnown(file: string, known: KnownBinaries): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  try {
    await writeFile(tmp, JSON.stringify(known))
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined)
    logger.debug({ file, err: String(err) }, 'cannot save the ffmpeg record')
  }
}
