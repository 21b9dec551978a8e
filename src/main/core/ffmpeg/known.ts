/**
 * What running a pair of ffmpeg/ffprobe binaries taught us (their versions, encoders, formats and filters), kept in
 * the data folder so that the next start of a node need not run them again. Every start of Debian's ffmpeg costs
 * ~50 ms of CPU (it loads ~100 shared libraries) and the four runs of a first start kept a worker's first encode
 * waiting ~0.25 s on two cores.
 *
 * The record is only taken for binaries that are, byte for byte as far as the file system can tell, the ones it
 * was made from: same real path, size, modification and change times, inode. Anything else (an upgrade, a new
 * setting, another FFMPEG_PATH, a damaged or foreign file) and the binaries are run and checked again.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import { realpathSync, statSync } from 'node:fs'
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
    raw = JSON.parse(await readFile(file, 'utf8'))
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
    logger.debug({ file, err: String(err) }, 'cannot save the ffmpeg record')
  }
}
