import { readFileSync, readdirSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  ProbedMediaSchema,
  TranscodeSpecSchema,
  type ProbedMedia,
  type TranscodeSpecInput,
} from '../../../shared/spec'
import { InputRefusedError } from '../errors'
import { findOnPath, useFfmpeg } from './locate'
import {
  checkInput,
  keepProbe,
  parseProbe,
  prefetchProbes,
  probeFromJob,
  probeInput,
  summarize,
  type MediaInfo,
} from './probe'

function fixture(name: string, as = name): MediaInfo {
  const raw = JSON.parse(
    readFileSync(path.join(__dirname, 'fixtures', 'probe', `${name}.json`), 'utf8'),
  ) as Parameters<typeof parseProbe>[0]
  return parseProbe(raw, `/music/${as}`, 1000)
}
const spec = (s: TranscodeSpecInput) => TranscodeSpecSchema.parse(s)

describe('checkInput', () => {
  it('refuses video formats of a song, naming it and saying what to choose', () => {
    const song = fixture('audio', 'song.mp3')
    expect(() => checkInput(song, spec({ format: 'gif' }))).toThrow(
      'song.mp3 has no video stream, so it cannot be made into a GIF. Choose mp3 or m4a.',
    )
    expect(() => checkInput(song, spec({ format: 'webm' }))).toThrow(
      'song.mp3 has no video stream, so it cannot be made into WEBM video. Choose mp3 or m4a.',
    )
    expect(() => checkInput(song, spec({ format: 'm4a' }))).not.toThrow()
  })
  it('cover art is not video: an mp3 with a cover cannot become mp4', () => {
    const err = (() => {
      try {
        checkInput(fixture('cover', 'album.mp3'), spec({ format: 'mp4' }))
      } catch (e) {
        return e
      }
      return null
    })()
    expect(err).toBeInstanceOf(InputRefusedError)
    expect((err as InputRefusedError).file).toBe('/music/album.mp3')
  })
  it('refuses audio formats of a silent video, and a resize of a song', () => {
    expect(() => checkInput(fixture('video-only', 'clip.mp4'), spec({ format: 'mp3' }))).toThrow(
      'clip.mp4 has no audio stream, so it cannot be made into MP3. Choose a video format (mp4, webm, mkv, mov or gif).',
    )
    expect(() =>
      checkInput(fixture('audio', 'song.mp3'), spec({ format: 'mkv', resize: { height: 240 } })),
    ).toThrow('song.mp3 has no video stream, so it cannot be made into MKV video. Choose mp3 or m4a.')
    expect(() => checkInput(fixture('real-360p-17s'), spec({ format: 'mp3' }))).not.toThrow()
  })
})

describe('summarize', () => {
  it('gives the display size and what the file has', () => {
    // The file says 1.311 s (ffmpeg 5.1 counts the 0.144 s empty edit before its video); what plays, and what an
    // output lasts, is the video's 1.166 s.
    expect(summarize(fixture('phone-rotated-vfr-noaudio'))).toEqual({
      durationSec: 1.1664,
      hasVideo: true,
      hasAudio: false,
      width: 720,
      height: 1280,
    })
    expect(summarize(fixture('cover'))).toMatchObject({
      hasVideo: false,
      hasAudio: true,
      width: null,
      height: null,
    })
    expect(summarize(fixture('nodur')).durationSec).toBeNull()
  })
})

describe('parseProbe durations', () => {
  const raw = (format: { duration: string; start_time: string }, ...streams: [string, string][]) => ({
    format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', ...format },
    streams: streams.map(([start_time, duration], index) => ({
      index,
      codec_type: index === 0 ? 'video' : 'audio',
      codec_name: index === 0 ? 'h264' : 'aac',
      width: 640,
      height: 360,
      start_time,
      duration,
    })),
  })
  it("takes the streams' span when the file's duration counts a leading empty edit (ffmpeg 5.1, -itsoffset)", () => {
    const info = parseProbe(
      raw(
        { duration: '25.000000', start_time: '4.976009' },
        ['5.000000', '20.000000'],
        ['4.976009', '20.023220'],
      ),
      '/m/offset.mp4',
      1000,
    )
    expect(info.durationSec).toBeCloseTo(20.024, 3)
  })
  it("keeps the file's duration otherwise (a transport stream that starts at 1.4 s, streams without durations)", () => {
    const ts = parseProbe(
      raw(
        { duration: '10.000000', start_time: '1.400000' },
        ['1.400000', '10.000000'],
        ['1.420000', '9.980000'],
      ),
      '/m/a.ts',
      1000,
    )
    expect(ts.durationSec).toBe(10)
    const mkv = parseProbe(
      {
        format: { format_name: 'matroska,webm', duration: '7.5', start_time: '0.000000' },
        streams: [{ index: 0, codec_type: 'audio', codec_name: 'opus' }],
      },
      '/m/a.mkv',
      1000,
    )
    expect(mkv.durationSec).toBe(7.5)
  })
})

describe('parseProbe refusals', () => {
  it('refuses a file with no audio or video stream', () => {
    expect(() =>
      parseProbe(
        { streams: [{ index: 0, codec_type: 'data' }], format: { format_name: 'mov' } },
        '/x/d.mov',
        9,
      ),
    ).toThrow('d.mov has no video or audio stream, so there is nothing to convert')
  })
  it('refuses still images', () => {
    expect(() =>
      parseProbe(
        {
          streams: [{ index: 0, codec_type: 'video', codec_name: 'png' }],
          format: { format_name: 'png_pipe' },
        },
        '/x/a.png',
        9,
      ),
    ).toThrow('a.png is a still image, not a video or audio file')
  })
})

describe('keepProbe / probeFromJob', () => {
  it('keeps every probe of the fixtures for the job, and gives it back for the file a worker reads', () => {
    for (const name of readdirSync(path.join(__dirname, 'fixtures', 'probe'))) {
      const info = fixture(name.replace(/\.json$/, ''))
      const kept = keepProbe(info)
      expect(kept, name).toBeDefined()
      expect(ProbedMediaSchema.safeParse(JSON.parse(JSON.stringify(kept))).success).toBe(true)
      expect(probeFromJob(kept as ProbedMedia, info.path, info.size)).toEqual(info)
    }
  })
  it('keeps nothing the payload schema refuses (the worker then probes itself)', () => {
    const info = fixture('audio')
    expect(keepProbe({ ...info, formatName: 'x'.repeat(300) })).toBeUndefined()
    const video = fixture('phone-rotated-vfr-noaudio')
    if (!video.video) throw new Error('fixture has no video')
    expect(keepProbe({ ...video, video: { ...video.video, codec: 'h264; rm -rf /' } })).toBeUndefined()
  })
})

describe('probeInput sharing', () => {
  const videoOnly = path.join(__dirname, '..', '..', '..', '..', '..', 'shared', 'media', 'video-only.mp4')

  /**
   * Runs `fn` with Bullpen's ffprobe replaced by a shim that appends `record` (a shell command's output) to the
   * returned file, then runs the real ffprobe. Skipped where ffmpeg/ffprobe are missing.
   */
  async function withProbeShim(
    record: string,
    fn: (dir: string, recorded: string) => Promise<void>,
  ): Promise<void> {
    const realProbe = findOnPath('ffprobe')
    const realFfmpeg = findOnPath('ffmpeg')
    if (!realProbe || !realFfmpeg) return
    const dir = await mkdtemp(path.join(tmpdir(), 'bullpen-probe-'))
    try {
      const recorded = path.join(dir, 'recorded.txt')
      const shim = path.join(dir, 'ffprobe')
      await writeFile(shim, `#!/bin/sh\n${record} >> '${recorded}'\nexec '${realProbe}' "$@"\n`, {
        mode: 0o755,
      })
      useFfmpeg({ ffmpegPath: realFfmpeg, ffprobePath: shim })
      await fn(dir, recorded)
    } finally {
      useFfmpeg()
      await rm(dir, { recursive: true, force: true })
    }
  }

  it.runIf(process.platform === 'linux')(
    "runs ffprobe in a process group of its own (a terminal's Ctrl-C is Bullpen's to handle)",
    () =>
      // /proc/<pid>/stat: "pid (name) state ppid pgrp …"; the name may hold spaces (vitest's workers' do).
      withProbeShim(`sed 's/.*) //' /proc/$$/stat | cut -d' ' -f3`, async (_dir, groups) => {
        expect((await probeInput(videoOnly)).video?.width).toBe(1280)
        const ours = (await readFile(`/proc/${process.pid}/stat`, 'utf8'))
          .replace(/^.*\) /s, '')
          .split(' ')[2]
        const theirs = (await readFile(groups, 'utf8')).trim()
        expect(theirs).toMatch(/^\d+$/)
        expect(theirs).not.toBe(ours)
      }),
  )

  it('runs one ffprobe for callers that ask at the same time, prefetched or not', () =>
    withProbeShim('echo "$*"', async (dir, calls) => {
      const input = path.join(dir, 'clip.mp4')
      await copyFile(videoOnly, input)
      prefetchProbes([input], 4)
      const [a, b] = await Promise.all([probeInput(input), probeInput(input)])
      expect(a).toEqual(b)
      expect(a.video?.width).toBe(1280)
      expect(await probeInput(input)).toEqual(a)
      expect((await readFile(calls, 'utf8')).trim().split('\n')).toHaveLength(1)
    }))
})
