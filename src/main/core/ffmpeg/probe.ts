/**
 * ffprobe an input file into a typed {@link MediaInfo}, and refuse inputs that cannot be transcoded as asked with
 * messages a person understands ({@link InputRefusedError}, naming the file).
 */
import { runCaptured, type CapturedError } from './children'
import { open, realpath, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { z } from 'zod'
import {
  AUDIO_FORMATS,
  type AudioInfoSchema,
  type InputSummary,
  type ProbedMedia,
  ProbedMediaSchema,
  type SubtitleInfoSchema,
  type TranscodeSpec,
  type VideoInfoSchema,
} from '../../../shared/spec'
import { FfmpegMissingError, InputRefusedError } from '../errors'
import { ffmpegPaths } from './locate'

export type VideoInfo = z.infer<typeof VideoInfoSchema>
export type AudioInfo = z.infer<typeof AudioInfoSchema>
export type SubtitleInfo = z.infer<typeof SubtitleInfoSchema>

/** A probed file: what the job keeps ({@link ProbedMedia}) plus where and how big the file is. */
export interface MediaInfo extends ProbedMedia {
  /** Absolute path of the probed file. */
  path: string
  size: number
}

interface RawStream {
  index: number
  codec_type?: string
  codec_name?: string
  width?: number
  height?: number
  pix_fmt?: string
  bits_per_raw_sample?: string
  sample_aspect_ratio?: string
  avg_frame_rate?: string
  r_frame_rate?: string
  color_transfer?: string
  color_primaries?: string
  color_space?: string
  channels?: number
  sample_rate?: string
  duration?: string
  start_time?: string
  disposition?: { attached_pic?: number }
  tags?: Record<string, string>
  side_data_list?: { side_data_type?: string; rotation?: number }[]
}

interface RawProbe {
  streams?: RawStream[]
  format?: { format_name?: string; duration?: string; start_time?: string; size?: string }
}

function num(v: string | number | undefined): number | null {
  if (v === undefined) return null
  const n = typeof v === 'number' ? v : Number.parseFloat(v)
  return Number.isFinite(n) ? n : null
}

function ratio(v: string | undefined, sep: string): number | null {
  if (v === undefined) return null
  const [a, b] = v.split(sep).map(Number)
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || a <= 0 || b <= 0)
    return null
  return a / b
}

function rotationOf(s: RawStream): VideoInfo['rotation'] {
  // The display matrix angle is counter-clockwise (ffprobe prints -90 for a phone held upright); the old
  // `rotate` tag is clockwise. Both become clockwise degrees 0/90/180/270.
  const dm = s.side_data_list?.find(
    (d) => d.side_data_type === 'Display Matrix' && typeof d.rotation === 'number',
  )
  let cw = 0
  if (dm?.rotation !== undefined) cw = -dm.rotation
  else if (s.tags?.['rotate'] !== undefined) cw = num(s.tags['rotate']) ?? 0
  const r = (((Math.round(cw / 90) * 90) % 360) + 360) % 360
  return r as VideoInfo['rotation']
}

function bitDepthOf(s: RawStream): number {
  const raw = num(s.bits_per_raw_sample)
  if (raw !== null && raw > 0) return raw
  const m = /p(9|10|12|14|16)(le|be)?$/.exec(s.pix_fmt ?? '')
  return m?.[1] !== undefined ? Number(m[1]) : 8
}

function videoInfo(s: RawStream): VideoInfo {
  const width = s.width ?? 0
  const height = s.height ?? 0
  const rotation = rotationOf(s)
  const sar = ratio(s.sample_aspect_ratio, ':') ?? 1
  let dw = Math.round(width * sar)
  let dh = height
  if (rotation === 90 || rotation === 270) [dw, dh] = [dh, dw]
  const transfer = s.color_transfer ?? null
  return {
    index: s.index,
    codec: s.codec_name ?? 'unknown',
    width,
    height,
    displayWidth: dw,
    displayHeight: dh,
    rotation,
    sampleAspectRatio: sar,
    pixFmt: s.pix_fmt ?? null,
    bitDepth: bitDepthOf(s),
    fps: ratio(s.avg_frame_rate, '/') ?? ratio(s.r_frame_rate, '/'),
    colorTransfer: transfer,
    colorPrimaries: s.color_primaries ?? null,
    colorSpace: s.color_space ?? null,
    hdr: transfer === 'smpte2084' ? 'pq' : transfer === 'arib-std-b67' ? 'hlg' : null,
    isAttachedPic: s.disposition?.attached_pic === 1,
  }
}

/**
 * Turns ffprobe's JSON into {@link MediaInfo}. Pure; exported for tests and fixtures.
 * Image "formats" (a single picture) and ffmpeg's text-as-video `tty` demuxer are not media we transcode.
 */
export function parseProbe(raw: RawProbe, file: string, size: number): MediaInfo {
  const name = path.basename(file)
  const streams = raw.streams ?? []
  const formatName = raw.format?.format_name ?? 'unknown'
  if (formatName.endsWith('_pipe') || formatName === 'image2') {
    throw new InputRefusedError(`${name} is a still image, not a video or audio file`, file)
  }
  if (formatName === 'tty') {
    // ffmpeg's tty demuxer renders any text file as "video": that is not media.
    throw new InputRefusedError(`${name} is not a video or audio file ffmpeg can read (it is text)`, file)
  }
  const videos = streams.filter((s) => s.codec_type === 'video')
  const real = videos.find((s) => s.disposition?.attached_pic !== 1)
  const pic = videos.find((s) => s.disposition?.attached_pic === 1)
  const audio = streams.find((s) => s.codec_type === 'audio')
  if (!real && !audio) {
    throw new InputRefusedError(`${name} has no video or audio stream, so there is nothing to convert`, file)
  }
  let durationSec = num(raw.format?.duration)
  if (durationSec === null || durationSec <= 0) {
    const d = streams.map((s) => num(s.duration)).filter((x): x is number => x !== null && x > 0)
    durationSec = d.length > 0 ? Math.max(...d) : null
  } else {
    // ffmpeg 5.1's MP4/MOV reader counts a leading empty edit (streams that start late, e.g. made with -itsoffset) in
    // the file's duration but not in its start time: 25 s for 20 s of streams starting at 5 s, where ffmpeg 6 says
    // 20 s. The file cannot outlast the end of its longest stream, counted from its start; an output (which starts at
    // 0) was refused for lasting 20 s instead of 25.
    const start = num(raw.format?.start_time) ?? 0
    const ends = streams
      .map((s) => (num(s.start_time) ?? Number.NaN) + (num(s.duration) ?? Number.NaN))
      .filter((x) => Number.isFinite(x))
    const span = ends.length > 0 ? Math.max(...ends) - start : Number.NaN
    if (span > 0 && span < durationSec) durationSec = span
  }
  const info: MediaInfo = {
    path: file,
    durationSec,
    formatName,
    size,
    subtitles: streams
      .filter((s) => s.codec_type === 'subtitle')
      .map((s) => ({ index: s.index, codec: s.codec_name ?? 'unknown' })),
  }
  if (real) info.video = videoInfo(real)
  if (pic) info.attachedPic = videoInfo(pic)
  if (audio) {
    info.audio = {
      index: audio.index,
      codec: audio.codec_name ?? 'unknown',
      channels: audio.channels ?? 0,
      sampleRate: Math.round(num(audio.sample_rate) ?? 0),
    }
  }
  return info
}

/**
 * What a job keeps of a probe (no path or size: the job has its own), or undefined when something in it falls
 * outside what a job payload may hold — the worker then probes the file itself.
 */
export function keepProbe(info: MediaInfo): ProbedMedia | undefined {
  const { path: _path, size: _size, ...media } = info
  const r = ProbedMediaSchema.safeParse(media)
  return r.success ? r.data : undefined
}

/**
 * The probe a job carries, as the {@link MediaInfo} of the file a worker reads (`file`, `size` bytes): a path
 * (made absolute), or the URL of a pooled job's input relay (kept as it is).
 */
export function probeFromJob(media: ProbedMedia, file: string, size: number): MediaInfo {
  return { ...media, path: /^https?:\/\//.test(file) ? file : path.resolve(file), size }
}

const PROBE_TIMEOUT_MS = 60_000

/** Runs ffprobe and returns its parsed JSON; rejects with ffprobe's stderr in the error message. */
export function ffprobeJson(file: string, extra: readonly string[] = []): Promise<unknown> {
  const { ffprobe } = ffmpegPaths()
  // `file:` so that names starting with "-" or containing ":" are never read as options or protocols.
  const args = ['-v', 'error', '-hide_banner', ...extra, '-of', 'json', `file:${path.resolve(file)}`]
  // In a process group of its own (children.ts): a Ctrl-C in the terminal must not fail a stopping worker's job.
  return runCaptured(ffprobe, args, { timeoutMs: PROBE_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout }) => JSON.parse(stdout) as unknown,
    (err: unknown) => {
      const e = err as CapturedError
      if (e.code === 'ENOENT' || e.code === 'EACCES') {
        throw new FfmpegMissingError(
          `ffprobe cannot be run from ${ffprobe} (${e.code}). Install ffmpeg (it includes ffprobe), or set ` +
            'FFPROBE_PATH to the ffprobe executable.',
        )
      }
      // Killed by the timeout: say so instead of showing an empty stderr.
      if (e.killed === true) e.stderr = `ffprobe took more than ${PROBE_TIMEOUT_MS / 1000} s`
      throw e
    },
  )
}

/** The most telling line of ffprobe/ffmpeg stderr, without the "[mov,mp4 @ 0x…]" prefix and the file name. */
export function tellingLine(stderr: string, file?: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i, '').trim())
    .filter((l) => l !== '')
  const prefix = file !== undefined ? `file:${path.resolve(file)}: ` : null
  const clean = lines.map((l) => (prefix !== null && l.startsWith(prefix) ? l.slice(prefix.length) : l))
  return clean[0] ?? 'no message'
}

/** ISO-BMFF (MP4/MOV) box types a real file starts with. */
const MP4_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid'])

/**
 * True when the file starts like an MP4/MOV (a known box at offset 4) or another container ffmpeg recognises by
 * its magic bytes: then a demuxer error means "damaged", not "this was never a video" (e.g. a text file named .mp4).
 */
async function looksLikeMedia(file: string): Promise<boolean> {
  let fh: FileHandle | undefined
  try {
    fh = await open(file, 'r')
    const buf = Buffer.alloc(12)
    const { bytesRead } = await fh.read(buf, 0, 12, 0)
    if (bytesRead < 8) return false
    if (MP4_BOXES.has(buf.toString('latin1', 4, 8))) return true
    const magic = buf.toString('latin1', 0, 4)
    return (
      magic === '\x1aE\xdf\xa3' ||
      magic === 'RIFF' ||
      magic === 'OggS' ||
      magic === 'FLV\x01' ||
      magic === 'ID3\x03'
    )
  } catch {
    return false
  } finally {
    await fh?.close()
  }
}

/**
 * Probes of this process, by path + size + mtime: `bullpen transcode` probes a file when it queues it and again when
 * its worker takes the job; a file that changed in between has another key.
 */
const probeCache = new Map<string, MediaInfo>()
const PROBE_CACHE_SIZE = 256
/** Probes under way, by the same key: a second caller waits for the first one's ffprobe instead of running its own. */
const probing = new Map<string, Promise<MediaInfo>>()

function remember(key: string, info: MediaInfo): void {
  probeCache.delete(key)
  probeCache.set(key, info)
  if (probeCache.size > PROBE_CACHE_SIZE) probeCache.delete(probeCache.keys().next().value as string)
}

/**
 * Probes an input file. Refuses (InputRefusedError, naming the file) a missing path, something that is not a
 * regular file, an empty file, a file ffprobe cannot read (a damaged MP4 without its moov atom is called
 * "damaged or incomplete"), and a file without audio or video streams.
 */
export async function probeInput(file: string): Promise<MediaInfo> {
  const abs = path.resolve(file)
  const name = path.basename(abs)
  let size: number
  let cacheKey: string
  try {
    const st = await stat(abs)
    if (!st.isFile()) {
      throw new InputRefusedError(
        `${name} is not a regular file (${st.isDirectory() ? 'it is a folder' : 'it is a device, socket or pipe'})`,
        abs,
      )
    }
    size = st.size
    // The ffprobe in use is part of the key: switching binaries (settings, tests) probes afresh.
    cacheKey = `${ffmpegPaths().ffprobe}\0${abs}\0${st.size}\0${st.mtimeMs}`
  } catch (err) {
    if (err instanceof InputRefusedError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputRefusedError(`${abs} does not exist`, abs)
    if (code === 'EACCES' || code === 'EPERM') {
      throw new InputRefusedError(`${name} cannot be read: permission denied`, abs)
    }
    throw new InputRefusedError(`${name} cannot be read: ${(err as Error).message}`, abs)
  }
  if (size === 0) throw new InputRefusedError(`${name} is empty (0 bytes)`, abs)
  const cached = probeCache.get(cacheKey)
  if (cached) return structuredClone(cached)
  let running = probing.get(cacheKey)
  if (!running) {
    running = runProbe(abs, size)
    probing.set(cacheKey, running)
    const key = cacheKey
    running.then(
      (info) => remember(key, info),
      () => undefined,
    )
    void running.finally(() => probing.delete(key)).catch(() => undefined)
  }
  return structuredClone(await running)
}

/**
 * Starts probing the first few of `files` (a CLI does this before it has connected to Redis, so that its start-up
 * and the first probes overlap); {@link probeInput} then finds them done or under way. Errors are left for
 * probeInput to report.
 */
export function prefetchProbes(files: readonly string[], count: number): void {
  for (const f of files.slice(0, count)) {
    realpath(path.resolve(f))
      .then((real) => probeInput(real))
      .catch(() => undefined)
  }
}

async function runProbe(abs: string, size: number): Promise<MediaInfo> {
  const name = path.basename(abs)
  let raw: RawProbe
  try {
    raw = (await ffprobeJson(abs, ['-show_format', '-show_streams'])) as RawProbe
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (err instanceof FfmpegMissingError) throw err // ffprobe itself is missing: not this file's fault
    const stderr = e.stderr ?? ''
    const line = tellingLine(stderr, abs)
    if (
      /moov atom not found|Truncating packet|partial file|End of file|invalid atom size/i.test(stderr) &&
      (await looksLikeMedia(abs))
    ) {
      throw new InputRefusedError(`${name} is damaged or incomplete (${line})`, abs)
    }
    if (/moov atom not found/i.test(stderr)) {
      // Named like an MP4 but does not start like one: it never was a video.
      throw new InputRefusedError(`${name} is not a video or audio file ffmpeg can read`, abs)
    }
    if (/Invalid data found when processing input/i.test(stderr)) {
      throw new InputRefusedError(`${name} is not a video or audio file ffmpeg can read (${line})`, abs)
    }
    if (/Permission denied/i.test(stderr))
      throw new InputRefusedError(`${name} cannot be read: permission denied`, abs)
    throw new InputRefusedError(`${name} cannot be read by ffprobe (${line})`, abs)
  }
  return parseProbe(raw, abs, size)
}

/**
 * Refuses a spec that the input cannot satisfy: mp3/m4a of a file without audio, a video format or a resize of a
 * file without video.
 */
export function checkInput(info: MediaInfo, spec: TranscodeSpec, file: string = info.path): void {
  const name = path.basename(file)
  const audioOnly = AUDIO_FORMATS.includes(spec.format)
  if (audioOnly && !info.audio) {
    throw new InputRefusedError(
      `${name} has no audio stream, so it cannot be made into ${spec.format.toUpperCase()}. ` +
        'Choose a video format (mp4, webm, mkv, mov or gif).',
      file,
    )
  }
  if (!audioOnly && !info.video) {
    const what = spec.format === 'gif' ? 'a GIF' : `${spec.format.toUpperCase()} video`
    throw new InputRefusedError(
      `${name} has no video stream, so it cannot be made into ${what}. Choose mp3 or m4a.`,
      file,
    )
  }
  if (spec.resize && !info.video) {
    throw new InputRefusedError(
      `${name} has no video stream, so it cannot be resized. Choose mp3 or m4a.`,
      file,
    )
  }
}

/** The short summary kept on a job for display. */
export function summarize(info: MediaInfo): InputSummary {
  return {
    durationSec: info.durationSec,
    hasVideo: info.video !== undefined,
    hasAudio: info.audio !== undefined,
    width: info.video?.displayWidth ?? null,
    height: info.video?.displayHeight ?? null,
  }
}
