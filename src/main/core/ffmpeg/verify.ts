/**
 * Checks an output with ffprobe before it is committed: the streams, codecs and frame size that were asked for,
 * and a duration close to the input's.
 */
import path from 'node:path'
import { FfmpegMissingError, TranscodeError } from '../errors'
import type { FfmpegPlan } from './args'
import { ffprobeJson, parseProbe, type MediaInfo } from './probe'

export interface OutputExpectation {
  hasVideo: boolean
  hasAudio: boolean
  videoCodec?: string | undefined
  audioCodec?: string | undefined
  /** Pixel format the video must have (e.g. yuv420p: 8-bit for players). */
  pixFmt?: string | undefined
  width?: number | undefined
  height?: number | undefined
  /** Number of subtitle streams expected. */
  subtitleStreams?: number | undefined
  /** Input duration; the check is skipped when null. */
  durationSec: number | null
  /** GIF: only check that it has frames. */
  isGif?: boolean | undefined
}

/** The expectation matching a plan from buildFfmpegArgs for an input of `durationSec`. */
export function expectationFor(plan: FfmpegPlan, durationSec: number | null): OutputExpectation {
  return {
    hasVideo: plan.outputHasVideo,
    hasAudio: plan.outputHasAudio,
    videoCodec: plan.videoCodec,
    audioCodec: plan.audioCodec,
    pixFmt: plan.pixFmt,
    width: plan.expectedWidth,
    height: plan.expectedHeight,
    subtitleStreams: plan.subtitleStreams,
    durationSec,
    isGif: plan.muxer === 'gif',
  }
}

/** Allowed duration difference: the larger of 0.5 s and 3 %. */
export function durationTolerance(durationSec: number): number {
  return Math.max(0.5, durationSec * 0.03)
}

/** The packet count `-count_packets` adds to each stream of ffprobe's answer. */
interface RawCount {
  streams?: { codec_type?: string; nb_read_packets?: string }[]
}

/**
 * ffprobes `file` and throws a {@link TranscodeError} naming it (or `label`, e.g. the input's name when `file` is a
 * temp file) when it does not match `exp`. Returns the probe.
 */
export async function verifyOutput(file: string, exp: OutputExpectation, label?: string): Promise<MediaInfo> {
  const name = label ?? path.basename(file)
  const fail = (why: string): never => {
    throw new TranscodeError(`${name}: the output failed verification: ${why}`)
  }
  let info: MediaInfo
  /** GIF frames counted by the same ffprobe (`-count_packets`): one ffprobe start per output, not two. */
  let gifFrames = 0
  try {
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(file))
    if (size === 0) fail('it is empty')
    const raw = (await ffprobeJson(file, [
      ...(exp.isGif ? ['-count_packets'] : []),
      '-show_format',
      '-show_streams',
    ])) as Parameters<typeof parseProbe>[0]
    info = parseProbe(raw, file, size)
    const video = (raw as RawCount).streams?.find((s) => s.codec_type === 'video')
    gifFrames = Number(video?.nb_read_packets ?? 0)
  } catch (err) {
    if (err instanceof TranscodeError || err instanceof FfmpegMissingError) throw err
    const e = err as Error & { stderr?: string }
    return fail(`ffprobe cannot read it (${(e.stderr ?? e.message).trim().split('\n').at(-1) ?? ''})`)
  }

  const v = info.video
  if (exp.hasVideo) {
    if (!v) return fail('it has no video stream')
    if (exp.videoCodec !== undefined && v.codec !== exp.videoCodec) {
      fail(`video codec is ${v.codec}, expected ${exp.videoCodec}`)
    }
    if (exp.pixFmt !== undefined && v.pixFmt !== exp.pixFmt)
      fail(`pixel format is ${v.pixFmt}, expected ${exp.pixFmt}`)
    if (v.rotation !== 0) fail(`it is still marked as rotated by ${v.rotation}°`)
    if (!exp.isGif && (v.width % 2 !== 0 || v.height % 2 !== 0))
      fail(`frame size ${v.width}x${v.height} is odd`)
    if (
      exp.width !== undefined &&
      exp.height !== undefined &&
      (v.width !== exp.width || v.height !== exp.height)
    ) {
      fail(`frame size is ${v.width}x${v.height}, expected ${exp.width}x${exp.height}`)
    }
  } else if (v) {
    fail(`it has a video stream (${v.codec}) but should not`)
  }
  if (exp.hasAudio) {
    if (!info.audio) return fail('it has no audio stream')
    if (exp.audioCodec !== undefined && info.audio.codec !== exp.audioCodec) {
      fail(`audio codec is ${info.audio.codec}, expected ${exp.audioCodec}`)
    }
  } else if (info.audio) {
    fail(`it has an audio stream (${info.audio.codec}) but should not`)
  }
  if (exp.subtitleStreams !== undefined && info.subtitles.length !== exp.subtitleStreams) {
    fail(`it has ${info.subtitles.length} subtitle streams, expected ${exp.subtitleStreams}`)
  }

  if (exp.isGif) {
    if (!(gifFrames > 0)) fail('the GIF has no frames')
  } else if (exp.durationSec !== null && exp.durationSec > 0) {
    if (info.durationSec === null)
      fail(`its duration is unknown, expected about ${exp.durationSec.toFixed(2)} s`)
    else if (Math.abs(info.durationSec - exp.durationSec) > durationTolerance(exp.durationSec)) {
      fail(`it lasts ${info.durationSec.toFixed(2)} s, expected about ${exp.durationSec.toFixed(2)} s`)
    }
  }
  return info
}
