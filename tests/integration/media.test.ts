/**
 * The FFmpeg layer end to end on the real sample media (../shared/media): real ffprobe, real ffmpeg, real files.
 * Every output is checked with a separate ffprobe call (codec, size, duration), not just "a file exists".
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { openSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  FfmpegMissingError,
  InputRefusedError,
  JobCancelledError,
  TranscodeError,
} from '../../src/main/core/errors'
import {
  abortAll,
  abortJob,
  checkFfmpeg,
  findFfmpeg,
  probeInput,
  runFfmpeg,
  runningJobs,
  transcodeFile,
  useFfmpeg,
  verifyOutput,
  type ProgressSnapshot,
  type TranscodeResult,
} from '../../src/main/core/ffmpeg'
import { TranscodeSpecSchema, type TranscodeSpecInput } from '../../src/shared/spec'

const repoRoot = path.resolve(__dirname, '..', '..')
const MEDIA = path.resolve(repoRoot, '..', 'shared', 'media')
const media = (name: string): string => path.join(MEDIA, name)
const FLV = "te[s]t_ video ' _ .flv"

const { ffmpeg: FFMPEG, ffprobe: FFPROBE } = findFfmpeg()

let root: string
let inDir: string
let n = 0

beforeAll(async () => {
  await checkFfmpeg()
  root = await mkdtemp(path.join(tmpdir(), 'bullpen-media-'))
  inDir = path.join(root, 'in')
  await mkdir(inDir)
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

/** A fresh, empty output folder. */
async function outDir(): Promise<string> {
  const d = path.join(root, `out${++n}`)
  await mkdir(d)
  return d
}

interface Probed {
  format: { duration?: string; format_name: string }
  streams: {
    codec_type: string
    codec_name: string
    width?: number
    height?: number
    pix_fmt?: string
    color_transfer?: string
    start_time?: string
    side_data_list?: { side_data_type?: string; rotation?: number }[]
  }[]
}

/** An independent ffprobe of an output. */
function ffprobe(file: string): Probed {
  const out = execFileSync(
    FFPROBE,
    ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', `file:${file}`],
    {
      encoding: 'utf8',
    },
  )
  return JSON.parse(out) as Probed
}
const streamsOf = (p: Probed, type: string) => p.streams.filter((s) => s.codec_type === type)

async function convert(
  input: string,
  spec: TranscodeSpecInput,
  extra: { outputDir?: string; progress?: ProgressSnapshot[]; signal?: AbortSignal; jobId?: string } = {},
): Promise<TranscodeResult & { probe: Probed }> {
  const r = await transcodeFile({
    jobId: extra.jobId ?? `media-${++n}`,
    inputPath: input,
    outputDir: extra.outputDir ?? (await outDir()),
    spec: TranscodeSpecSchema.parse(spec),
    onProgress: extra.progress ? (p) => extra.progress?.push(p) : undefined,
    signal: extra.signal,
  })
  // Nothing but the output is left in its folder (no temp files).
  const left = await readdir(path.dirname(r.outputPath))
  expect(left.filter((f) => f.includes('.bullpen-'))).toEqual([])
  return { ...r, probe: ffprobe(r.outputPath) }
}

function expectVideo(p: Probed, codec: string, w: number, h: number): void {
  const [v] = streamsOf(p, 'video')
  expect(v?.codec_name).toBe(codec)
  expect([v?.width, v?.height]).toEqual([w, h])
  // Upright in the pixels, not by a rotation flag.
  const dm = v?.side_data_list?.find((d) => d.side_data_type === 'Display Matrix')
  expect(dm?.rotation ?? 0).toBe(0)
}
function expectDuration(p: Probed, seconds: number, tolerance = 0.3): void {
  expect(Number(p.format.duration)).toBeGreaterThan(seconds - tolerance)
  expect(Number(p.format.duration)).toBeLessThan(seconds + tolerance)
}

async function sha(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex')
}

describe('real-360p-17s.mp4 (H.264 640x360 + AAC, 17.06 s)', () => {
  it('→ webm x240: VP9 426x240 + Opus, ~17.06 s, live progress up to 100 %', async () => {
    const progress: ProgressSnapshot[] = []
    const r = await convert(
      media('real-360p-17s.mp4'),
      { format: 'webm', resize: { height: 240 } },
      { progress },
    )
    expect(path.basename(r.outputPath)).toBe('real-360p-17s.webm')
    expectVideo(r.probe, 'vp9', 426, 240)
    expect(streamsOf(r.probe, 'audio')[0]?.codec_name).toBe('opus')
    expectDuration(r.probe, 17.06)
    expect(r).toMatchObject({ width: 426, height: 240, subtitles: 'none' })
    expect(r.durationSec).toBeCloseTo(17.06, 0)
    expect(progress.length).toBeGreaterThanOrEqual(2)
    expect(progress.some((p) => p.percent !== null && p.percent > 0 && p.percent < 100)).toBe(true)
    expect(progress.at(-1)).toMatchObject({ percent: 100, done: true })
    const percents = progress.map((p) => p.percent ?? 0)
    expect(percents).toEqual([...percents].sort((a, b) => a - b))
  })

  it('→ mp4 720p: H.264 yuv420p 1280x720 + AAC', async () => {
    const r = await convert(media('real-360p-17s.mp4'), { format: 'mp4', resize: { height: 720 } })
    expectVideo(r.probe, 'h264', 1280, 720)
    expect(streamsOf(r.probe, 'video')[0]?.pix_fmt).toBe('yuv420p')
    expect(streamsOf(r.probe, 'audio')[0]?.codec_name).toBe('aac')
    expectDuration(r.probe, 17.06)
  })

  it('→ gif (small): palette GIF, no audio', async () => {
    const r = await convert(media('real-360p-17s.mp4'), { format: 'gif', resize: { width: 160 } })
    expectVideo(r.probe, 'gif', 160, 90)
    expect(streamsOf(r.probe, 'audio')).toHaveLength(0)
    expectDuration(r.probe, 17.06, 0.6)
  })

  it('→ mp3: audio only', async () => {
    const r = await convert(media('real-360p-17s.mp4'), { format: 'mp3' })
    expect(r.probe.streams.map((s) => s.codec_name)).toEqual(['mp3'])
    expectDuration(r.probe, 17.02, 0.3)
  })
})

describe('awkward video', () => {
  it('phone-rotated (1280x720 stored, -90°) → mp4 x640 comes out upright, portrait 360x640', async () => {
    const r = await convert(media('phone-rotated-vfr-noaudio.mp4'), {
      format: 'mp4',
      resize: { height: 640 },
    })
    expectVideo(r.probe, 'h264', 360, 640)
    expect(streamsOf(r.probe, 'audio')).toHaveLength(0)
    expect(r).toMatchObject({ width: 360, height: 640 })
  })

  it('odd-161x121.webm → mp4: H.264 at even 160x120', async () => {
    const r = await convert(media('odd-161x121.webm'), { format: 'mp4' })
    expectVideo(r.probe, 'h264', 160, 120)
    expect(streamsOf(r.probe, 'video')[0]?.pix_fmt).toBe('yuv420p')
    expectDuration(r.probe, 1.0)
  })

  it('iphone-hdr-hevc.mov (10-bit HLG) → mp4: 8-bit yuv420p, BT.709', async () => {
    const r = await convert(media('iphone-hdr-hevc.mov'), { format: 'mp4' })
    expectVideo(r.probe, 'h264', 640, 360)
    const v = streamsOf(r.probe, 'video')[0]
    expect(v?.pix_fmt).toBe('yuv420p')
    expect(v?.color_transfer).toBe('bt709')
    expectDuration(r.probe, 1.0)
  })

  it(`"${FLV}" (brackets, quote, spaces) → mp4`, async () => {
    const r = await convert(media(FLV), { format: 'mp4' })
    expect(path.basename(r.outputPath)).toBe("te[s]t_ video ' _ .mp4")
    expectVideo(r.probe, 'h264', 320, 240)
    expectDuration(r.probe, 1.9, 0.5)
  })

  it('a file named "-leading-dash.mp4" and a unicode name work; the inputs are untouched', async () => {
    const dash = path.join(inDir, '-leading-dash.mp4')
    const uni = path.join(inDir, 'vidéo 日本語 ñ.webm')
    await copyFile(media('video-only.mp4'), dash)
    await copyFile(media('odd-161x121.webm'), uni)
    const before = [await sha(dash), await sha(uni)]
    const a = await convert(dash, { format: 'mp4', resize: { height: 240 } })
    expect(path.basename(a.outputPath)).toBe('-leading-dash.mp4')
    expectVideo(a.probe, 'h264', 426, 240)
    expectDuration(a.probe, 3.0)
    const b = await convert(uni, { format: 'mp4' })
    expect(path.basename(b.outputPath)).toBe('vidéo 日本語 ñ.mp4')
    expectVideo(b.probe, 'h264', 160, 120)
    expect([await sha(dash), await sha(uni)]).toEqual(before)
  })

  /** The 17 s sample copied without re-encoding into inDir/name, with input and output options around `-i`. */
  function remux(name: string, inputOpts: string[], outputOpts: string[]): string {
    const out = path.join(inDir, name)
    const args = [
      '-v',
      'error',
      '-y',
      ...inputOpts,
      '-i',
      media('real-360p-17s.mp4'),
      ...outputOpts,
      '-c',
      'copy',
    ]
    execFileSync(FFMPEG, [...args, out])
    return out
  }

  it('an mp4 whose streams start late (-itsoffset 5) converts, its 17 s verified as 17 s, not 22', async () => {
    // ffmpeg 5.1's ffprobe gives such a file the duration of its streams plus the empty edit before them.
    const late = remux('late.mp4', ['-itsoffset', '5'], [])
    const r = await convert(late, { format: 'mp4', resize: { height: 240 } })
    expectVideo(r.probe, 'h264', 426, 240)
    expectDuration(r.probe, 17.06)
  })

  it('an mp4 cut without re-encoding (-ss … -c copy) → mkv keeps its 6.1 s, sound and picture starting together', async () => {
    // The cut keeps ~1 s of packets before its start, hidden by an edit list; Matroska has none.
    const cut = remux('cut.mp4', ['-ss', '3.3'], ['-t', '6.1'])
    const r = await convert(cut, { format: 'mkv' })
    expectDuration(r.probe, 6.1)
    const [v] = streamsOf(r.probe, 'video')
    const [a] = streamsOf(r.probe, 'audio')
    expect(a?.codec_name).toBe('aac') // copied, not re-encoded
    expect(Math.abs(Number(a?.start_time) - Number(v?.start_time))).toBeLessThan(0.1)
  })

  it('a webm without duration converts with indeterminate progress', async () => {
    const nodur = path.join(inDir, 'nodur.webm')
    // A webm written to a pipe has no duration in its header, like many browser recordings.
    const fd = openSync(nodur, 'w')
    try {
      execFileSync(
        FFMPEG,
        [
          '-v',
          'error',
          '-f',
          'lavfi',
          '-i',
          'testsrc2=s=320x240:r=25:d=3',
          '-f',
          'lavfi',
          '-i',
          'sine=d=3',
        ].concat([
          '-c:v',
          'libvpx',
          '-deadline',
          'realtime',
          '-cpu-used',
          '8',
          '-c:a',
          'libopus',
          '-f',
          'webm',
          'pipe:1',
        ]),
        { stdio: ['ignore', fd, 'pipe'] },
      )
    } finally {
      closeSync(fd)
    }
    const info = await probeInput(nodur)
    expect(info.durationSec).toBeNull()
    const progress: ProgressSnapshot[] = []
    const r = await convert(nodur, { format: 'mp4' }, { progress })
    expectVideo(r.probe, 'h264', 320, 240)
    expectDuration(r.probe, 3.0)
    expect(progress.length).toBeGreaterThanOrEqual(1)
    for (const p of progress.filter((s) => !s.done)) expect(p.percent).toBeNull()
    expect(progress.at(-1)?.done).toBe(true)
  })
})

describe('audio-only and video-only inputs', () => {
  it('audio-only.mp4 → mp3 and → m4a work', async () => {
    const mp3 = await convert(media('audio-only.mp4'), { format: 'mp3' })
    expect(mp3.probe.streams.map((s) => s.codec_name)).toEqual(['mp3'])
    expectDuration(mp3.probe, 10.0)
    const m4a = await convert(media('audio-only.mp4'), { format: 'm4a' })
    expect(m4a.probe.streams.map((s) => s.codec_name)).toEqual(['aac'])
    expect(path.extname(m4a.outputPath)).toBe('.m4a')
    expectDuration(m4a.probe, 10.0)
  })

  it('audio-only.mp4 → mp4 / gif / resize is refused clearly', async () => {
    const dir = await outDir()
    for (const spec of [
      { format: 'mp4' },
      { format: 'gif' },
      { format: 'mkv', resize: { height: 240 } },
    ] as const) {
      const err = await transcodeFile({
        jobId: `refuse-${++n}`,
        inputPath: media('audio-only.mp4'),
        outputDir: dir,
        spec: TranscodeSpecSchema.parse(spec),
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(InputRefusedError)
      expect((err as Error).message).toMatch(
        /^audio-only\.mp4 has no video stream, so it cannot be .*Choose mp3 or m4a\.$/,
      )
    }
    expect(await readdir(dir)).toEqual([])
  })

  it('video-only.mp4 → mp4 works, → mp3 is refused', async () => {
    const r = await convert(media('video-only.mp4'), { format: 'mp4', resize: { height: 360 } })
    expectVideo(r.probe, 'h264', 640, 360)
    expect(streamsOf(r.probe, 'audio')).toHaveLength(0)
    expectDuration(r.probe, 3.0)
    await expect(convert(media('video-only.mp4'), { format: 'mp3' })).rejects.toThrow(
      /^video-only\.mp4 has no audio stream, so it cannot be made into MP3/,
    )
  })

  it('audio.mp3 → m4a', async () => {
    const r = await convert(media('audio.mp3'), { format: 'm4a' })
    expect(r.probe.streams.map((s) => s.codec_name)).toEqual(['aac'])
    expectDuration(r.probe, 13.5)
  })
})

describe('subtitles-srt.mkv (H.264 + AC-3 + SubRip)', () => {
  const cases = [
    ['mp4', 'mov_text', 'converted'],
    ['webm', 'webvtt', 'converted'],
    ['mkv', 'subrip', 'copied'],
    ['gif', null, 'dropped'],
  ] as const
  for (const [format, subCodec, outcome] of cases) {
    it(`→ ${format}: subtitles ${outcome}${subCodec ? ` (${subCodec})` : ''}`, async () => {
      const r = await convert(media('subtitles-srt.mkv'), {
        format,
        resize: format === 'gif' ? { width: 240 } : undefined,
      })
      expect(r.subtitles).toBe(outcome)
      const subs = streamsOf(r.probe, 'subtitle')
      expect(subs.map((s) => s.codec_name)).toEqual(subCodec ? [subCodec] : [])
      expect(streamsOf(r.probe, 'video')).toHaveLength(1)
    })
  }
  it('→ mp4 with subtitles "drop": none in the output', async () => {
    const r = await convert(media('subtitles-srt.mkv'), { format: 'mp4', subtitles: 'drop' })
    expect(r.subtitles).toBe('dropped')
    expect(streamsOf(r.probe, 'subtitle')).toHaveLength(0)
    expect(streamsOf(r.probe, 'audio')[0]?.codec_name).toBe('aac')
  })
})

describe('refused inputs', () => {
  it('a missing ffprobe is an FfmpegMissingError, not a problem with the file', async () => {
    useFfmpeg({ ffprobePath: path.join(root, 'no-ffprobe') })
    try {
      const err = await probeInput(media('audio.mp3')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(FfmpegMissingError)
      expect((err as Error).message).toMatch(
        /^ffprobe cannot be run from .*no-ffprobe \(ENOENT\)\. .*FFPROBE_PATH/,
      )
    } finally {
      useFfmpeg()
    }
  })

  it('broken-no-moov.mp4 is "damaged or incomplete"', async () => {
    const err = await probeInput(media('broken-no-moov.mp4')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InputRefusedError)
    expect((err as Error).message).toBe('broken-no-moov.mp4 is damaged or incomplete (moov atom not found)')
  })

  it('a missing path, a zero-byte file, a folder and a text file are refused naming the file', async () => {
    const missing = path.join(inDir, 'nope.mp4')
    await expect(probeInput(missing)).rejects.toThrow(`${missing} does not exist`)
    const empty = path.join(inDir, 'empty.mp4')
    await writeFile(empty, '')
    await expect(probeInput(empty)).rejects.toThrow('empty.mp4 is empty (0 bytes)')
    await expect(probeInput(inDir)).rejects.toThrow('in is not a regular file (it is a folder)')
    const text = path.join(inDir, 'notes.mp4')
    await writeFile(text, 'this is not a video\n'.repeat(50))
    await expect(probeInput(text)).rejects.toThrow('notes.mp4 is not a video or audio file ffmpeg can read')
    const txt = path.join(inDir, 'notes.txt')
    await writeFile(txt, 'these are my notes, not a video\n'.repeat(200))
    await expect(probeInput(txt)).rejects.toThrow(
      'notes.txt is not a video or audio file ffmpeg can read (it is text)',
    )
    const png = path.join(inDir, 'still.png')
    execFileSync(FFMPEG, [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'color=red:s=32x32',
      '-frames:v',
      '1',
      `file:${png}`,
    ])
    await expect(probeInput(png)).rejects.toThrow('still.png is a still image, not a video or audio file')
  })
})

describe('never overwriting, cancelling, failing', () => {
  it('an existing name.mp4 leads to "name (1).mp4" and the original stays byte-identical', async () => {
    const dir = await outDir()
    const existing = path.join(dir, 'video-only.mp4')
    await copyFile(media(FLV), existing)
    const before = await sha(existing)
    const r = await convert(
      media('video-only.mp4'),
      { format: 'mp4', resize: { height: 240 } },
      { outputDir: dir },
    )
    expect(r.outputPath).toBe(path.join(dir, 'video-only (1).mp4'))
    expect(await sha(existing)).toBe(before)
    expectVideo(r.probe, 'h264', 426, 240)
  })

  it('mp4 → mp4 in the input folder never writes over the input', async () => {
    const input = path.join(inDir, 'same.mp4')
    await copyFile(media('odd-161x121.webm'), input)
    const before = await sha(input)
    const r = await convert(input, { format: 'mp4' }, { outputDir: inDir })
    expect(r.outputPath).toBe(path.join(inDir, 'same (1).mp4'))
    expect(await sha(input)).toBe(before)
  })

  it('abort mid-run rejects with JobCancelledError, stops ffmpeg and leaves no temp file', async () => {
    const dir = await outDir()
    const controller = new AbortController()
    const progress: ProgressSnapshot[] = []
    const jobId = 'abort-me'
    const run = transcodeFile({
      jobId,
      inputPath: media('real-360p-17s.mp4'),
      outputDir: dir,
      spec: TranscodeSpecSchema.parse({ format: 'mp4', resize: { height: 720 } }),
      signal: controller.signal,
      onProgress: (p) => {
        progress.push(p)
        if (p.percent !== null && p.percent > 0) controller.abort()
      },
    })
    await expect(run).rejects.toBeInstanceOf(JobCancelledError)
    // ffmpeg ends gracefully on SIGTERM and reports progress=end; a cancelled run must not pass that on.
    expect(progress.some((p) => p.done)).toBe(false)
    expect(await readdir(dir)).toEqual([])
    expect(runningJobs()).not.toContain(jobId)
  })

  it('abortJob(jobId) cancels a running job by id', async () => {
    const dir = await outDir()
    const jobId = 'abort-by-id'
    const run = transcodeFile({
      jobId,
      inputPath: media('real-360p-17s.mp4'),
      outputDir: dir,
      spec: TranscodeSpecSchema.parse({ format: 'webm' }),
      onProgress: () => {
        expect(runningJobs()).toContain(jobId)
        abortJob(jobId)
      },
    })
    await expect(run).rejects.toBeInstanceOf(JobCancelledError)
    expect(await readdir(dir)).toEqual([])
    expect(runningJobs()).toEqual([])
    expect(abortJob(jobId)).toBe(false)
  })

  it('abortAll() (on quit) cancels every running ffmpeg', async () => {
    const dir = await outDir()
    const started = new Set<string>()
    const runs = ['quit-a', 'quit-b'].map((jobId) =>
      transcodeFile({
        jobId,
        inputPath: media('real-360p-17s.mp4'),
        outputDir: dir,
        spec: TranscodeSpecSchema.parse({ format: 'mp4', resize: { height: 720 } }),
        onProgress: () => started.add(jobId),
      }).catch((e: unknown) => e),
    )
    const t0 = Date.now()
    while (started.size < 2 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50))
    expect(runningJobs().sort()).toEqual(['quit-a', 'quit-b'])
    expect(abortAll()).toBe(2)
    for (const err of await Promise.all(runs)) {
      expect(err).toBeInstanceOf(JobCancelledError)
      expect((err as Error).message).toBe('cancelled: Bullpen is shutting down')
    }
    expect(runningJobs()).toEqual([])
    expect(await readdir(dir)).toEqual([])
  })

  it('a stalled ffmpeg is killed by the watchdog with a retryable TranscodeError', async () => {
    // ffmpeg blocks opening a FIFO nobody writes to: a real process that makes no progress.
    const fifo = path.join(root, 'stall.fifo')
    execFileSync('mkfifo', [fifo])
    const t0 = Date.now()
    const err = await runFfmpeg({
      jobId: 'stall',
      input: fifo,
      output: path.join(root, 'stall-out.mp4'),
      args: ['-f', 'mp4', '-progress', 'pipe:1', '-nostats'],
      durationSec: null,
      stallTimeoutMs: 2000,
      onProgress: () => undefined,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TranscodeError)
    expect((err as Error).message).toBe('stall.fifo: ffmpeg made no progress for 2 s and was stopped')
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(runningJobs()).toEqual([])
  })

  it('an ffmpeg failure is one line naming the file, with the stderr tail kept', async () => {
    const out = path.join(root, 'fail-out.mp4')
    const err = await runFfmpeg({
      jobId: 'fail',
      input: media(FLV),
      output: out,
      args: ['-c:v', 'no_such_encoder', '-f', 'mp4', '-progress', 'pipe:1', '-nostats'],
      durationSec: 1.9,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TranscodeError)
    expect((err as Error).message).toBe(`${FLV}: ffmpeg failed: Unknown encoder 'no_such_encoder'`)
    expect((err as TranscodeError).logTail.length).toBeGreaterThan(0)
    expect((err as Error).message).not.toContain('\n')
  })

  it('an ffmpeg failure or a failed verification in transcodeFile leaves no temp file and no output', async () => {
    // Stale probe data (another file's) is the real-world way to get there: the file changed after probing.
    const dir = await outDir()
    const audioInfo = await probeInput(media('audio-only.mp4'))
    const failed = await transcodeFile({
      jobId: 'stale-1',
      inputPath: media('video-only.mp4'),
      outputDir: dir,
      spec: TranscodeSpecSchema.parse({ format: 'mp3' }),
      info: audioInfo,
    }).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(TranscodeError)
    expect((failed as Error).message).toMatch(/^video-only\.mp4: ffmpeg failed: /)
    expect(await readdir(dir)).toEqual([])

    const shortInfo = await probeInput(media('odd-161x121.webm'))
    const unverified = await transcodeFile({
      jobId: 'stale-2',
      inputPath: media('video-only.mp4'),
      outputDir: dir,
      spec: TranscodeSpecSchema.parse({ format: 'mp4' }),
      info: shortInfo,
    }).catch((e: unknown) => e)
    expect(unverified).toBeInstanceOf(TranscodeError)
    expect((unverified as Error).message).toMatch(
      /^video-only\.mp4: the output failed verification: it lasts 3\.\d\d s, expected about 1\.00 s$/,
    )
    expect(await readdir(dir)).toEqual([])
  })

  it('verifyOutput rejects an output that is not what was asked, naming it', async () => {
    await expect(
      verifyOutput(media('video-only.mp4'), { hasVideo: true, hasAudio: true, durationSec: 3 }),
    ).rejects.toThrow('video-only.mp4: the output failed verification: it has no audio stream')
    await expect(
      verifyOutput(media('video-only.mp4'), {
        hasVideo: true,
        hasAudio: false,
        width: 640,
        height: 360,
        durationSec: 3,
      }),
    ).rejects.toThrow('frame size is 1280x720, expected 640x360')
    await expect(
      verifyOutput(media('video-only.mp4'), { hasVideo: true, hasAudio: false, durationSec: 10 }),
    ).rejects.toThrow('it lasts 3.00 s, expected about 10.00 s')
    await expect(
      verifyOutput(media('video-only.mp4'), {
        hasVideo: true,
        hasAudio: false,
        videoCodec: 'h264',
        durationSec: 3,
      }),
    ).resolves.toMatchObject({ durationSec: 3 })
  })

  it('verifyOutput counts the frames of a GIF in the same ffprobe, and refuses a GIF expected where there is none', async () => {
    const dir = await outDir()
    const gif = path.join(dir, 'three.gif')
    execFileSync(FFMPEG, ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=s=64x48:r=3:d=1', gif])
    const exp = { hasVideo: true, hasAudio: false, videoCodec: 'gif', isGif: true, durationSec: null }
    await expect(verifyOutput(gif, exp)).resolves.toMatchObject({ video: { codec: 'gif', width: 64 } })
    await expect(verifyOutput(media('video-only.mp4'), exp)).rejects.toThrow(
      'video-only.mp4: the output failed verification: video codec is h264, expected gif',
    )
  })
})
