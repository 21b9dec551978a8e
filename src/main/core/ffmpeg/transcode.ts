/**
 * One input file + a validated spec → one verified output file: probe → check → build args → plan the name →
 * ffmpeg into a hidden temp file → verify with ffprobe → commit without overwriting. The temp file is removed on
 * every path; the input is only ever read.
 */
import { rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { TranscodeSpec } from '../../../shared/spec'
import { FfmpegMissingError, UserFacingError } from '../errors'
import { logger } from '../logger'
import { buildFfmpegArgs, type SubtitleOutcome } from './args'
import { detectCapabilities, listEncoders } from './locate'
import { commitOutput, planOutput, tempPathFor } from './output'
import { checkInput, probeInput, type MediaInfo } from './probe'
import { createThrottle, type ProgressSnapshot } from './progress'
import { abortReason, isRelayUrl, runFfmpeg } from './run'
import { expectationFor, verifyOutput } from './verify'

export interface TranscodeOptions {
  jobId: string
  /** The input file; with `inputUrl`, only its name counts (it names the output). */
  inputPath: string
  /**
   * A pooled job's input relay (pool/relay.ts), which ffmpeg reads instead of `inputPath` while the input is still
   * arriving. Needs `info` (the job's queue-time probe): there is no file here to probe.
   */
  inputUrl?: string | undefined
  /** Folder the output goes to; must exist. */
  outputDir: string
  spec: TranscodeSpec
  signal?: AbortSignal | undefined
  /** Throttled progress: at most ~4 updates a second, plus the final one. */
  onProgress?: ((p: ProgressSnapshot) => void) | undefined
  /** ffmpeg's stderr lines. */
  onLog?: ((line: string) => void) | undefined
  stallTimeoutMs?: number | undefined
  /** An input already probed by the caller (saves one ffprobe); probed here when absent. */
  info?: MediaInfo | undefined
}

export interface TranscodeResult {
  outputPath: string
  size: number
  /** Duration of the output as ffprobe reports it (null when it cannot tell, e.g. some GIFs). */
  durationSec: number | null
  width?: number
  height?: number
  subtitles: SubtitleOutcome
  elapsedMs: number
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal)
}

/** Transcodes one file as `spec` says. See the module comment for the steps. */
export async function transcodeFile(opts: TranscodeOptions): Promise<TranscodeResult> {
  const started = Date.now()
  const { jobId, spec, signal } = opts
  const inputPath = path.resolve(opts.inputPath)
  throwIfAborted(signal)

  if (opts.inputUrl !== undefined && !isRelayUrl(opts.inputUrl)) {
    throw new Error(`not an input relay URL: ${opts.inputUrl}`)
  }
  if (opts.inputUrl !== undefined && !opts.info) {
    throw new Error(`${path.basename(inputPath)}: a streamed input needs the probe its job was queued with`)
  }
  const info = opts.info ?? (await probeInput(inputPath))
  checkInput(info, spec, inputPath)

  const [caps, encoders] = await Promise.all([detectCapabilities(), listEncoders()])
  const plan = buildFfmpegArgs(spec, info, caps)
  const missing = plan.encoders.filter((e) => !encoders.has(e))
  if (missing.length > 0) {
    throw new FfmpegMissingError(
      `this ffmpeg has no ${missing.join(', ')} encoder, needed for ${spec.format}. ` +
        'Install a full ffmpeg build, or set FFMPEG_PATH to one.',
    )
  }

  const outputDir = path.resolve(opts.outputDir)
  try {
    if (!(await stat(outputDir)).isDirectory()) throw new Error('not a folder')
  } catch {
    throw new UserFacingError(`the output folder ${outputDir} does not exist or is not a folder`)
  }

  throwIfAborted(signal)
  const dest = await planOutput(inputPath, outputDir, plan.extension)
  const temp = tempPathFor(dest, jobId)
  if (temp === inputPath) throw new Error(`refusing to write over the input ${inputPath}`)

  const throttle = opts.onProgress ? createThrottle(opts.onProgress) : null
  try {
    const run = await runFfmpeg({
      jobId,
      input: opts.inputUrl ?? inputPath,
      output: temp,
      args: plan.args,
      durationSec: info.durationSec,
      signal,
      onProgress: throttle ? (p) => throttle.push(p, p.done) : undefined,
      onLog: opts.onLog,
      stallTimeoutMs: opts.stallTimeoutMs,
    })
    throttle?.flush()
    const out = await verifyOutput(temp, expectationFor(plan, info.durationSec), path.basename(inputPath))
    throwIfAborted(signal)
    const outputPath = await commitOutput(temp, dest)
    const result: TranscodeResult = {
      outputPath,
      size: out.size,
      durationSec: out.durationSec,
      subtitles: plan.subtitles,
      elapsedMs: Date.now() - started,
    }
    if (out.video) {
      result.width = out.video.displayWidth
      result.height = out.video.displayHeight
    }
    logger.info({ jobId, outputPath, ffmpegMs: run.elapsedMs, elapsedMs: result.elapsedMs }, 'transcode done')
    return result
  } finally {
    // Every failure, abort and success path: the temp file must not stay behind (after a commit it is gone).
    await rm(temp, { force: true }).catch((err: unknown) =>
      logger.warn({ jobId, temp, err }, 'cannot remove temp'),
    )
  }
}
