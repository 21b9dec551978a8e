/**
 * From "these files, made into this" to validated job payloads: resolve the spec, check every path, probe every
 * input and refuse with a reason a person understands what cannot work — before anything reaches the queue.
 */
import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { access, realpath, stat } from 'node:fs/promises'
import { basename, dirname, extname, resolve } from 'node:path'
import type { AddFilesRequest } from '../../shared/api'
import {
  type JobData,
  JobDataSchema,
  JOB_DATA_VERSION,
  type TranscodeSpec,
  TranscodeSpecSchema,
  describeIssues,
  isPresetName,
  isSafeAbsolutePath,
  presetSpec,
  PRESET_NAMES,
} from '../../shared/spec'
import { InputRefusedError, UserFacingError, errorMessage } from './errors'
import { checkInput, keepProbe, probeInput, summarize } from './ffmpeg'
import { NAME_MAX } from './ffmpeg/output'

/** Probes run at once while queueing many files (ffprobe is mostly I/O and start-up). */
export const PROBE_CONCURRENCY = 4

/** Turns a preset name or an explicit spec into a validated spec; throws a UserFacingError otherwise. */
export function resolveSpec(req: Pick<AddFilesRequest, 'preset' | 'spec'>): TranscodeSpec {
  if (req.spec !== undefined) {
    const parsed = TranscodeSpecSchema.safeParse(req.spec)
    if (!parsed.success) throw new UserFacingError(`Invalid job spec: ${describeIssues(parsed.error)}`)
    return parsed.data
  }
  if (req.preset !== undefined) {
    if (!isPresetName(req.preset)) {
      throw new UserFacingError(`Unknown preset "${req.preset}". Presets: ${PRESET_NAMES.join(', ')}.`)
    }
    return presetSpec(req.preset)
  }
  throw new UserFacingError('Say what to make: a preset, a format or a size.')
}

/** The identity of "this input made into this": same file (path, size, mtime), same spec, same output folder. */
export function dedupeKey(
  input: { path: string; size: number; mtimeMs: number },
  spec: TranscodeSpec,
  outputDir: string,
): string {
  const { preset: _label, ...what } = spec
  return createHash('sha256')
    .update(JSON.stringify([input.path, input.size, Math.trunc(input.mtimeMs), what, outputDir]))
    .digest('hex')
    .slice(0, 32)
}

/** Checks that an output folder exists, is a folder and can be written to; returns its real absolute path. */
export async function checkOutputDir(dir: string): Promise<string> {
  const abs = resolve(dir)
  let st
  try {
    st = await stat(abs)
  } catch {
    throw new UserFacingError(`The output folder ${abs} does not exist. Create it or choose another.`)
  }
  if (!st.isDirectory()) throw new UserFacingError(`The output folder ${abs} is not a folder.`)
  // Refused now rather than after three full encodes (or, for a pooled job, an upload the origin cannot keep).
  await access(abs, constants.W_OK | constants.X_OK).catch((err: NodeJS.ErrnoException) => {
    throw new UserFacingError(
      `The output folder ${abs} cannot be written to (${err.code === 'EROFS' ? 'read-only file system' : 'permission denied'}). Choose another.`,
    )
  })
  return realpath(abs)
}

export interface PreparedFile {
  path: string
  data?: JobData
  error?: string
}

export interface PrepareContext {
  origin: string
  /** Output folder from the request or the settings; empty: next to each input. */
  outputDir?: string
  batch?: string
  now?: () => number
}

/** Checks and probes one file; never throws: a refusal is returned as `error`. */
export async function prepareFile(
  path: string,
  spec: TranscodeSpec,
  priority: JobData['priority'],
  ctx: PrepareContext,
): Promise<PreparedFile> {
  const abs = resolve(path)
  try {
    let st
    try {
      st = await stat(abs)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ELOOP')
        throw new InputRefusedError(`${abs}: its links lead round in a loop to no file.`, abs)
      if (code === 'EACCES') throw new InputRefusedError(`${abs}: a folder on its path cannot be read.`, abs)
      throw new InputRefusedError(`${abs}: no such file. Check the path.`, abs)
    }
    if (!st.isFile()) throw new InputRefusedError(`${abs} is not a file.`, abs)
    if (st.size === 0)
      throw new InputRefusedError(`${basename(abs)} is empty (0 bytes): there is nothing to transcode.`, abs)
    const real = await realpath(abs)
    const info = await probeInput(real)
    checkInput(info, spec, real)
    const outputDir = await checkOutputDir(ctx.outputDir || dirname(real))
    const outName = `${basename(real, extname(real)) || 'output'}.${spec.format}`
    if (Buffer.byteLength(outName) > NAME_MAX) {
      throw new InputRefusedError(
        `${basename(abs)}: its name is too long to name the output after it (${Buffer.byteLength(outName)} bytes as ` +
          `.${spec.format}; a file name can have ${NAME_MAX}). Rename it shorter.`,
        abs,
      )
    }
    if (!isSafeAbsolutePath(real) || !isSafeAbsolutePath(outputDir)) {
      throw new InputRefusedError(
        `${basename(abs)}: its path contains characters Bullpen cannot pass on safely.`,
        abs,
      )
    }
    const input = { path: real, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) }
    // The worker that takes the job reuses this probe when it reads the very same file.
    const media = keepProbe(info)
    const candidate: JobData = {
      v: JOB_DATA_VERSION,
      input,
      outputDir,
      spec,
      priority,
      origin: ctx.origin,
      summary: summarize(info),
      ...(media ? { media } : {}),
      dedupeKey: dedupeKey(input, spec, outputDir),
      createdAt: (ctx.now ?? Date.now)(),
      ...(ctx.batch ? { batch: ctx.batch } : {}),
    }
    const parsed = JobDataSchema.safeParse(candidate)
    if (!parsed.success) throw new InputRefusedError(`${basename(abs)}: ${describeIssues(parsed.error)}`, abs)
    return { path, data: parsed.data }
  } catch (err) {
    return {
      path,
      error: err instanceof UserFacingError ? err.message : `${basename(abs)}: ${errorMessage(err)}`,
    }
  }
}

/**
 * Starts preparing many files with at most {@link PROBE_CONCURRENCY} probes at once; one promise per path, in the
 * order of `paths`, so a caller can queue file i as soon as it is ready while later files are still being probed.
 */
export function prepareEach(
  paths: readonly string[],
  spec: TranscodeSpec,
  priority: JobData['priority'],
  ctx: PrepareContext,
): Array<Promise<PreparedFile>> {
  let active = 0
  const waiting: Array<() => void> = []
  const acquire = async (): Promise<void> => {
    if (active >= PROBE_CONCURRENCY) await new Promise<void>((r) => waiting.push(r))
    active++
  }
  const release = (): void => {
    active--
    waiting.shift()?.()
  }
  return paths.map(async (path) => {
    await acquire()
    try {
      return await prepareFile(path, spec, priority, ctx)
    } finally {
      release()
    }
  })
}
