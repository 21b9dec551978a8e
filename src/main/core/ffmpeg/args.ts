/**
 * Pure: a validated spec + the probed input → ffmpeg output options. No I/O; what the local ffmpeg can do comes in
 * as {@link FfmpegCapabilities}. Input and output paths are added by run.ts.
 */
import type { Format, TranscodeSpec } from '../../../shared/spec'
import type { FfmpegCapabilities } from './locate'
import type { MediaInfo, VideoInfo } from './probe'

export type SubtitleOutcome = 'copied' | 'converted' | 'dropped' | 'none'

export interface FfmpegPlan {
  /** Output options (maps, codecs, filters, muxer, progress); no input or output path. */
  args: string[]
  /** File extension of the output, without the dot. */
  extension: string
  /** ffmpeg muxer name given with `-f`. */
  muxer: string
  outputHasVideo: boolean
  outputHasAudio: boolean
  /** Codec names ffprobe will report for the output streams. */
  videoCodec?: string
  audioCodec?: string
  /** Pixel format of the output video, when it is fixed. */
  pixFmt?: string
  subtitles: SubtitleOutcome
  /** Number of subtitle streams in the output. */
  subtitleStreams: number
  /** Output frame size (even), when the output has video. */
  expectedWidth?: number
  expectedHeight?: number
  /** Encoders this plan needs; the caller checks them against `listEncoders()`. */
  encoders: string[]
  /** Tone-mapping was applied (HDR input and zscale/tonemap available). */
  tonemapped: boolean
}

const NO_CAPS: FfmpegCapabilities = { tonemap: false }

/** Frame rate cap of GIF output: more frames make a GIF huge and do not look smoother in most viewers. */
export const GIF_MAX_FPS = 15

const MUXERS: Record<Format, { muxer: string; extension: string }> = {
  mp4: { muxer: 'mp4', extension: 'mp4' },
  mov: { muxer: 'mov', extension: 'mov' },
  mkv: { muxer: 'matroska', extension: 'mkv' },
  webm: { muxer: 'webm', extension: 'webm' },
  gif: { muxer: 'gif', extension: 'gif' },
  mp3: { muxer: 'mp3', extension: 'mp3' },
  m4a: { muxer: 'ipod', extension: 'm4a' },
}

/** Text subtitle codecs: can be converted to mov_text / WebVTT / SubRip. */
const TEXT_SUBS = new Set([
  'subrip',
  'srt',
  'ass',
  'ssa',
  'webvtt',
  'mov_text',
  'text',
  'microdvd',
  'subviewer',
  'jacosub',
  'sami',
  'realtext',
  'stl',
  'mpl2',
  'vplayer',
  'pjs',
])
/** Subtitle codecs Matroska stores as they are. */
const MKV_SUBS = new Set([
  'subrip',
  'ass',
  'ssa',
  'webvtt',
  'hdmv_pgs_subtitle',
  'dvd_subtitle',
  'dvb_subtitle',
])
/** Audio codecs copied into Matroska / M4A instead of re-encoded. */
const MKV_COPY_AUDIO = new Set(['aac', 'mp3', 'opus', 'vorbis', 'flac', 'ac3', 'eac3'])

/** Rounds to the nearest even number, at least 2. */
export function even(x: number): number {
  return Math.max(2, Math.round(x / 2) * 2)
}

/** Rounds down to an even number, at least 2. */
function evenDown(x: number): number {
  return Math.max(2, Math.floor(x / 2) * 2)
}

/**
 * Output frame size. Sizes are computed from the DISPLAY size (ffmpeg rotates frames upright before the filters
 * see them, and non-square pixels become square), always even. One side given: the other follows the aspect.
 * Both given: the largest size that fits in the box keeping the aspect. None: the display size, rounded down to
 * even (odd sizes are cropped by a pixel rather than resampled).
 */
export function targetSize(
  v: VideoInfo,
  resize?: { width?: number | undefined; height?: number | undefined },
): {
  width: number
  height: number
  scale: boolean
} {
  const dw = Math.max(1, v.displayWidth)
  const dh = Math.max(1, v.displayHeight)
  if (!resize || (resize.width === undefined && resize.height === undefined)) {
    const w = evenDown(dw)
    const h = evenDown(dh)
    return { width: w, height: h, scale: v.sampleAspectRatio !== 1 }
  }
  const { width, height } = resize
  if (width !== undefined && height !== undefined) {
    const f = Math.min(width / dw, height / dh)
    return {
      width: Math.min(even(dw * f), evenDown(width)),
      height: Math.min(even(dh * f), evenDown(height)),
      scale: true,
    }
  }
  if (width !== undefined) return { width: even(width), height: even((dh * width) / dw), scale: true }
  const h = height ?? dh
  return { width: even((dw * h) / dh), height: even(h), scale: true }
}

function videoFilters(
  v: VideoInfo,
  spec: TranscodeSpec,
  caps: FfmpegCapabilities,
): { chain: string[]; width: number; height: number; tonemapped: boolean; hdrTo8bit: boolean } {
  const size = targetSize(v, spec.resize)
  const chain: string[] = []
  const hdrTo8bit = v.hdr !== null || v.bitDepth > 8 || v.colorPrimaries === 'bt2020'
  let tonemapped = false
  if (v.hdr !== null && caps.tonemap) {
    // HDR → SDR: linearise, convert primaries to BT.709, tone-map (hable), back to BT.709 transfer, limited range.
    const tin = v.hdr === 'pq' ? 'smpte2084' : 'arib-std-b67'
    chain.push(
      `zscale=tin=${tin}:pin=bt2020:min=bt2020nc:t=linear:npl=100`,
      'format=gbrpf32le',
      'zscale=p=bt709',
      'tonemap=tonemap=hable:desat=0',
      'zscale=t=bt709:m=bt709:r=tv',
      // 8-bit YUV straight out of zscale, so the later scale never converts RGB→YUV with the wrong matrix.
      'format=yuv420p',
    )
    tonemapped = true
  }
  const needsResize = size.scale || size.width !== v.displayWidth || size.height !== v.displayHeight
  if (size.scale) {
    chain.push(`scale=${size.width}:${size.height}:flags=bicubic`)
  } else if (needsResize) {
    // Odd display size and no resize asked: crop the odd row/column instead of resampling the whole frame.
    chain.push(`crop=${size.width}:${size.height}:0:0`)
  }
  if (needsResize || v.sampleAspectRatio !== 1) chain.push('setsar=1')
  return { chain, width: size.width, height: size.height, tonemapped, hdrTo8bit }
}

const BT709_TAGS = ['-color_primaries', 'bt709', '-color_trc', 'bt709', '-colorspace', 'bt709']

/**
 * Builds the ffmpeg output options for `spec` applied to the input described by `info`.
 * Pure: the same inputs give the same arguments.
 */
export function buildFfmpegArgs(
  spec: TranscodeSpec,
  info: MediaInfo,
  caps: FfmpegCapabilities = NO_CAPS,
): FfmpegPlan {
  const { muxer, extension } = MUXERS[spec.format]
  const isAudioFormat = spec.format === 'mp3' || spec.format === 'm4a'
  const v = isAudioFormat ? undefined : info.video
  const a = spec.format === 'gif' ? undefined : info.audio
  if (!v && !a) throw new Error(`nothing to encode for ${spec.format} from ${info.path}`)

  const args: string[] = []
  const encoders: string[] = []
  const plan: Omit<FfmpegPlan, 'args'> = {
    extension,
    muxer,
    outputHasVideo: v !== undefined,
    outputHasAudio: a !== undefined,
    subtitles: 'none',
    subtitleStreams: 0,
    encoders,
    tonemapped: false,
  }

  // Maps: by absolute stream index from the probe, so cover art, data streams and extra tracks are left out.
  if (v) args.push('-map', `0:${v.index}`)
  if (a) args.push('-map', `0:${a.index}`)

  // Video
  if (v) {
    const f = videoFilters(v, spec, caps)
    plan.expectedWidth = f.width
    plan.expectedHeight = f.height
    plan.tonemapped = f.tonemapped
    if (spec.format === 'gif') {
      const fps = v.fps !== null && v.fps > 0 && v.fps <= GIF_MAX_FPS ? null : GIF_MAX_FPS
      const pre = [...(fps !== null ? [`fps=${fps}`] : []), ...f.chain].join(',')
      // One palette for the whole clip (palettegen), then dithered into it (paletteuse): far better than the
      // default 256-colour web palette.
      args.push(
        '-vf',
        `${pre !== '' ? `${pre},` : ''}split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5`,
      )
      args.push('-c:v', 'gif', '-loop', '0')
      plan.videoCodec = 'gif'
      encoders.push('gif')
    } else {
      if (f.chain.at(-1) !== 'format=yuv420p') f.chain.push('format=yuv420p')
      args.push('-vf', f.chain.join(','))
      plan.pixFmt = 'yuv420p'
      if (spec.format === 'webm') {
        // Measured on 2 cores (360p → 240p, 17 s): "-deadline good -cpu-used 5" runs at ~1.6× real time,
        // "-deadline realtime -cpu-used 6" at ~7× for ~40 % larger files; a desktop queue wants the latter.
        args.push(
          '-c:v',
          'libvpx-vp9',
          '-b:v',
          '0',
          '-crf',
          '32',
          '-deadline',
          'realtime',
          '-cpu-used',
          '6',
          '-row-mt',
          '1',
        )
        plan.videoCodec = 'vp9'
        encoders.push('libvpx-vp9')
      } else {
        args.push('-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-profile:v', 'high')
        plan.videoCodec = 'h264'
        encoders.push('libx264')
      }
      if (f.hdrTo8bit) args.push(...BT709_TAGS)
    }
  }

  // Audio
  if (a) {
    const tooManyChannels = a.channels > 2
    if (spec.format === 'webm') {
      args.push('-c:a', 'libopus', '-b:a', '128k')
      // libopus refuses some surround layouts without a mapping family; stereo always works.
      if (tooManyChannels) args.push('-ac', '2')
      plan.audioCodec = 'opus'
      encoders.push('libopus')
    } else if (spec.format === 'mp3') {
      args.push('-c:a', 'libmp3lame', '-q:a', '2')
      // MP3 holds at most two channels.
      if (tooManyChannels) args.push('-ac', '2')
      plan.audioCodec = 'mp3'
      encoders.push('libmp3lame')
    } else if (
      (spec.format === 'mkv' && MKV_COPY_AUDIO.has(a.codec)) ||
      (spec.format === 'm4a' && a.codec === 'aac')
    ) {
      args.push('-c:a', 'copy')
      // An MP4/MOV cut without re-encoding (-ss … -c copy, phone trims) keeps packets before its start, which its edit
      // list hides. Matroska has no edit list: copied as they are, they became a second of audio before the picture
      // and the output outlasted its input. Packets before the start are dropped (re-encoded video drops its own).
      if (spec.format === 'mkv') args.push('-copypriorss:a', '0')
      plan.audioCodec = a.codec
    } else {
      args.push('-c:a', 'aac', '-b:a', a.channels > 2 ? '384k' : '160k')
      plan.audioCodec = 'aac'
      encoders.push('aac')
    }
  }

  // Subtitles
  const subs = info.subtitles
  if (subs.length > 0) {
    if (spec.subtitles === 'drop' || spec.format === 'gif' || isAudioFormat || !v) {
      plan.subtitles = 'dropped'
    } else {
      let copied = 0
      let converted = 0
      let out = 0
      for (const s of subs) {
        const isText = TEXT_SUBS.has(s.codec)
        let codec: string | null = null
        if (spec.format === 'mkv') codec = MKV_SUBS.has(s.codec) ? 'copy' : isText ? 'srt' : null
        else if (spec.format === 'webm') codec = s.codec === 'webvtt' ? 'copy' : isText ? 'webvtt' : null
        else codec = s.codec === 'mov_text' ? 'copy' : isText ? 'mov_text' : null // mp4, mov
        if (codec === null) continue
        args.push('-map', `0:${s.index}`, `-c:s:${out}`, codec)
        out++
        if (codec === 'copy') copied++
        else {
          converted++
          encoders.push(codec)
        }
      }
      plan.subtitleStreams = out
      plan.subtitles = out === 0 ? 'dropped' : converted > 0 ? 'converted' : copied > 0 ? 'copied' : 'dropped'
    }
  }
  if (plan.subtitleStreams === 0) args.push('-sn')
  args.push('-dn')
  if (spec.format === 'gif' || isAudioFormat) args.push('-map_chapters', '-1')

  if (muxer === 'mp4' || muxer === 'mov' || muxer === 'ipod') args.push('-movflags', '+faststart')
  // Sparse subtitle streams can make the muxer give up with "Too many packets buffered"; a larger queue avoids it.
  if (plan.subtitleStreams > 0) args.push('-max_muxing_queue_size', '4096')
  args.push('-f', muxer, '-progress', 'pipe:1', '-nostats')

  return { args, ...plan }
}
