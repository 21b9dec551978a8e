/**
 * The job spec: what a user asks Bullpen to make of a file, and the job payload that travels through Redis.
 *
 * Everything here is validated with zod twice: when a job is enqueued, and again when a worker reads it back from
 * Redis (anyone who can reach Redis can write a job). Schemas are `.strict()` so an unknown field — say, extra
 * ffmpeg options — fails validation instead of being ignored.
 *
 * Pure: imports neither Node built-ins nor electron, so the renderer uses the same schemas.
 */
import { z } from 'zod'

/** Output formats Bullpen can make. */
export const FORMATS = ['mp4', 'webm', 'mkv', 'mov', 'gif', 'mp3', 'm4a'] as const
export type Format = (typeof FORMATS)[number]

/** Formats whose output has no video stream. */
export const AUDIO_FORMATS: readonly Format[] = ['mp3', 'm4a']
/** Formats whose output has no audio stream. */
export const SILENT_FORMATS: readonly Format[] = ['gif']

export const PRIORITIES = ['high', 'normal', 'low'] as const
export type Priority = (typeof PRIORITIES)[number]
/** Bull priority numbers: lower runs first. */
export const PRIORITY_VALUES: Readonly<Record<Priority, number>> = { high: 1, normal: 5, low: 10 }

/** Turns a Bull priority number back into its name (unknown numbers count as normal). */
export function priorityName(value: number | undefined): Priority {
  if (value === PRIORITY_VALUES.high) return 'high'
  if (value === PRIORITY_VALUES.low) return 'low'
  return 'normal'
}

/** Largest side we accept: 8K. Anything bigger is an absurd request, not a transcode. */
export const MAX_DIMENSION = 7680
export const MIN_DIMENSION = 2

const dimension = z
  .number()
  .int('must be a whole number of pixels')
  .min(MIN_DIMENSION, `must be at least ${MIN_DIMENSION} pixels`)
  .max(MAX_DIMENSION, `must be at most ${MAX_DIMENSION} pixels`)

/** Resize: one side given keeps the aspect ratio; the encoder always gets even dimensions. */
export const ResizeSchema = z
  .object({ width: dimension.optional(), height: dimension.optional() })
  .strict()
  .refine((r) => r.width !== undefined || r.height !== undefined, {
    message: 'resize needs a width, a height or both',
  })
export type Resize = z.infer<typeof ResizeSchema>

/**
 * What to do with subtitle streams: `keep` copies them where the container takes them as they are, converts them
 * where it takes another subtitle codec (SubRip → mov_text in mp4/mov, → WebVTT in webm) and drops them where the
 * target has no subtitles at all (gif, mp3, m4a); `drop` always drops them. The job result says which happened.
 */
export const SUBTITLE_MODES = ['keep', 'drop'] as const
export type SubtitleMode = (typeof SUBTITLE_MODES)[number]

export const TranscodeSpecSchema = z
  .object({
    format: z.enum(FORMATS),
    resize: ResizeSchema.optional(),
    subtitles: z.enum(SUBTITLE_MODES).default('keep'),
    /** The preset this spec came from, for display only. */
    preset: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'preset names are lower-case letters, digits and dashes')
      .optional(),
  })
  .strict()
  .refine((s) => !(s.resize && AUDIO_FORMATS.includes(s.format)), {
    message: 'mp3 and m4a have no picture to resize: leave out the resize',
    path: ['resize'],
  })
export type TranscodeSpec = z.infer<typeof TranscodeSpecSchema>
export type TranscodeSpecInput = z.input<typeof TranscodeSpecSchema>

/** Named presets, built from the two job types. */
export const PRESETS = {
  '1080p': { format: 'mp4', resize: { height: 1080 }, description: 'H.264/AAC MP4, 1080 pixels high' },
  '720p': { format: 'mp4', resize: { height: 720 }, description: 'H.264/AAC MP4, 720 pixels high' },
  '480p': { format: 'mp4', resize: { height: 480 }, description: 'H.264/AAC MP4, 480 pixels high' },
  mp4: { format: 'mp4', description: 'H.264/AAC MP4 at the same size' },
  webm: { format: 'webm', description: 'VP9/Opus WebM at the same size' },
  mkv: { format: 'mkv', description: 'H.264/AAC Matroska at the same size' },
  mov: { format: 'mov', description: 'H.264/AAC QuickTime at the same size' },
  gif: { format: 'gif', resize: { width: 480 }, description: 'Animated GIF, 480 pixels wide, palette-based' },
  mp3: { format: 'mp3', description: 'MP3 audio only' },
  m4a: { format: 'm4a', description: 'AAC audio only in M4A' },
} as const satisfies Record<string, { format: Format; resize?: Resize; description: string }>
export type PresetName = keyof typeof PRESETS
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[]

export function isPresetName(name: string): name is PresetName {
  return Object.prototype.hasOwnProperty.call(PRESETS, name)
}

/** The spec a preset stands for. */
export function presetSpec(name: PresetName): TranscodeSpec {
  const p: { format: Format; resize?: Resize } = PRESETS[name]
  return TranscodeSpecSchema.parse({
    format: p.format,
    ...(p.resize ? { resize: { ...p.resize } } : {}),
    preset: name,
  })
}

/**
 * Parses a resize argument as people type it: `1280x720`, `1280x` / `1280` (width only), `x720` (height only).
 * Returns undefined for anything else.
 */
export function parseResize(text: string): Resize | undefined {
  const m = /^\s*(\d{1,5})?\s*(?:[x×X:]\s*(\d{1,5})?)?\s*$/.exec(text)
  if (!m || (m[1] === undefined && m[2] === undefined)) return undefined
  const r: { width?: number; height?: number } = {}
  if (m[1] !== undefined) r.width = Number(m[1])
  if (m[2] !== undefined) r.height = Number(m[2])
  const parsed = ResizeSchema.safeParse(r)
  return parsed.success ? parsed.data : undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Paths in a payload from Redis

const MAX_PATH = 4096

/**
 * True when `p` is an absolute, normalised path with no `.`/`..` segments, no NUL or control characters: POSIX
 * (`/a/b`) or Windows (`C:\a\b`, `\\server\share\a`). A pure string check: the shared layer has no `node:path`.
 */
export function isSafeAbsolutePath(p: string): boolean {
  if (p.length === 0 || p.length > MAX_PATH) return false
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(p)) return false
  let rest: string
  let sep: RegExp
  if (p.startsWith('/')) {
    rest = p.slice(1)
    sep = /\//
  } else if (/^[A-Za-z]:[\\/]/.test(p)) {
    rest = p.slice(3)
    sep = /[\\/]/
  } else if (/^\\\\[^\\/]+[\\/][^\\/]+/.test(p)) {
    rest = p.slice(2)
    sep = /[\\/]/
  } else {
    return false
  }
  if (rest === '') return true
  const parts = rest.split(sep)
  // A trailing separator is tolerated only for a root; empty segments ("a//b") are not normalised.
  return parts.every((s) => s !== '' && s !== '.' && s !== '..')
}

const safePath = z
  .string()
  .refine(
    isSafeAbsolutePath,
    'must be an absolute, normalised path without ".." segments or control characters',
  )

/** Node ids: short, printable, safe in a Redis key and a URL path. */
export const NodeIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'invalid node id')

export const InputFileSchema = z
  .object({
    path: safePath,
    size: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    mtimeMs: z.number().min(0).max(Number.MAX_SAFE_INTEGER),
  })
  .strict()
export type InputFile = z.infer<typeof InputFileSchema>

/** Summary of the probed input, kept on the job for display. */
export const InputSummarySchema = z
  .object({
    durationSec: z.number().min(0).max(1e7).nullable(),
    hasVideo: z.boolean(),
    hasAudio: z.boolean(),
    width: z.number().int().min(0).max(1e5).nullable(),
    height: z.number().int().min(0).max(1e5).nullable(),
  })
  .strict()
export type InputSummary = z.infer<typeof InputSummarySchema>

const codecName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)
const probeText = z.string().max(256)
const streamIndex = z.number().int().min(0).max(10_000)
const pixels = z.number().int().min(0).max(1e5)

/** A video stream as probed (src/main/core/ffmpeg/probe.ts fills it from ffprobe). */
export const VideoInfoSchema = z
  .object({
    /** Absolute stream index in the file (for `-map 0:<index>`). */
    index: streamIndex,
    codec: codecName,
    /** Stored (coded) size. */
    width: pixels,
    height: pixels,
    /** Size as shown: after the rotation and the sample aspect ratio. */
    displayWidth: pixels,
    displayHeight: pixels,
    /** Clockwise rotation a player applies. */
    rotation: z.union([z.literal(0), z.literal(90), z.literal(180), z.literal(270)]),
    /** Sample (pixel) aspect ratio; 1 for square pixels. */
    sampleAspectRatio: z.number().positive().max(1000),
    pixFmt: probeText.nullable(),
    bitDepth: z.number().int().min(1).max(64),
    fps: z.number().positive().max(1e6).nullable(),
    colorTransfer: probeText.nullable(),
    colorPrimaries: probeText.nullable(),
    colorSpace: probeText.nullable(),
    /** PQ (smpte2084) or HLG (arib-std-b67) transfer: high dynamic range. */
    hdr: z.enum(['pq', 'hlg']).nullable(),
    /** A still image attached as cover art (mp3/m4a covers); never counted as video. */
    isAttachedPic: z.boolean(),
  })
  .strict()

export const AudioInfoSchema = z
  .object({
    index: streamIndex,
    codec: codecName,
    channels: z.number().int().min(0).max(1024),
    sampleRate: z.number().int().min(0).max(10_000_000),
  })
  .strict()

export const SubtitleInfoSchema = z.object({ index: streamIndex, codec: codecName }).strict()

/**
 * What the probe at queue time found in the input, kept on the job so that a worker reading the very same file
 * (same size and mtime, or a download checked against the origin's checksum) need not run ffprobe again.
 */
export const ProbedMediaSchema = z
  .object({
    /** Seconds; null when the file does not say (e.g. a webm written to a pipe). */
    durationSec: z.number().min(0).max(1e7).nullable(),
    formatName: probeText,
    /** The first real video stream (not cover art). */
    video: VideoInfoSchema.optional(),
    /** Cover art, when the file has some. */
    attachedPic: VideoInfoSchema.optional(),
    audio: AudioInfoSchema.optional(),
    subtitles: z.array(SubtitleInfoSchema).max(256),
  })
  .strict()
export type ProbedMedia = z.infer<typeof ProbedMediaSchema>

/** Version of the job payload layout; bumped when it changes incompatibly. */
export const JOB_DATA_VERSION = 1

/** The payload of a transcode job as stored in Redis. */
export const JobDataSchema = z
  .object({
    v: z.literal(JOB_DATA_VERSION),
    input: InputFileSchema,
    /** Folder the output goes to (the input's folder unless the user chose another). */
    outputDir: safePath,
    spec: TranscodeSpecSchema,
    priority: z.enum(PRIORITIES),
    /** The node that queued the job and owns its input and output files. */
    origin: NodeIdSchema,
    summary: InputSummarySchema,
    /** The queue-time probe (absent on jobs queued by older versions: the worker then probes). */
    media: ProbedMediaSchema.optional(),
    /** Identifies "the same input with the same spec" for de-duplication. */
    dedupeKey: z.string().regex(/^[a-f0-9]{16,128}$/),
    createdAt: z.number().int().min(0),
    /** Groups the files of one drop / one command, for a summary notification. */
    batch: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .optional(),
  })
  .strict()
export type JobData = z.infer<typeof JobDataSchema>

/** Readable one-line summary of zod issues, naming the fields. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'payload'}: ${i.message}`)
    .slice(0, 5)
    .join('; ')
}

/** Short human label of a spec, e.g. "webm 426×240" or "720p". */
export function describeSpec(spec: TranscodeSpec): string {
  if (spec.preset) return spec.preset
  const size = spec.resize ? ` ${spec.resize.width ?? ''}×${spec.resize.height ?? ''}` : ''
  return `${spec.format}${size}`
}
