import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { TranscodeSpecSchema, type TranscodeSpecInput } from '../../../shared/spec'
import { buildFfmpegArgs, GIF_MAX_FPS, targetSize } from './args'
import { parseProbe, type MediaInfo } from './probe'

// ffprobe -show_format -show_streams -of json of the real sample media (../shared/media), stored as fixtures.
function fixture(name: string): MediaInfo {
  const raw = JSON.parse(
    readFileSync(path.join(__dirname, 'fixtures', 'probe', `${name}.json`), 'utf8'),
  ) as Parameters<typeof parseProbe>[0]
  return parseProbe(raw, `/media/${name}`, 1000)
}

const spec = (s: TranscodeSpecInput) => TranscodeSpecSchema.parse(s)
const TONEMAP = { tonemap: true }

/** The value after `flag` in args (the first occurrence). */
function opt(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag)
  return i >= 0 ? args[i + 1] : undefined
}
function all(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag && args[i + 1] !== undefined ? [args[i + 1] as string] : []))
}

describe('parseProbe on real media', () => {
  it('reads the everyday file', () => {
    const info = fixture('real-360p-17s')
    expect(info.durationSec).toBeCloseTo(17.064, 2)
    expect(info.video).toMatchObject({
      codec: 'h264',
      width: 640,
      height: 360,
      displayWidth: 640,
      rotation: 0,
    })
    expect(info.video?.fps).toBeCloseTo(30, 0)
    expect(info.audio).toMatchObject({ codec: 'aac', channels: 2, sampleRate: 48000 })
  })
  it('turns the phone display matrix (-90) into a portrait display size', () => {
    const v = fixture('phone-rotated-vfr-noaudio').video
    expect(v).toMatchObject({
      width: 1280,
      height: 720,
      displayWidth: 720,
      displayHeight: 1280,
      rotation: 90,
    })
  })
  it('sees 10-bit HLG', () => {
    expect(fixture('iphone-hdr-hevc').video).toMatchObject({
      bitDepth: 10,
      hdr: 'hlg',
      pixFmt: 'yuv420p10le',
    })
  })
  it('does not count mp3 cover art as video', () => {
    const info = fixture('cover')
    expect(info.video).toBeUndefined()
    expect(info.attachedPic?.isAttachedPic).toBe(true)
    expect(info.audio?.codec).toBe('mp3')
  })
  it('has a null duration for a webm written to a pipe', () => {
    expect(fixture('nodur').durationSec).toBeNull()
  })
  it('lists subtitles', () => {
    expect(fixture('subtitles-srt').subtitles).toEqual([{ index: 2, codec: 'subrip' }])
  })
})

describe('buildFfmpegArgs', () => {
  it('webm x240 from 640x360: VP9 426x240 + Opus, fast settings, explicit maps', () => {
    const p = buildFfmpegArgs(spec({ format: 'webm', resize: { height: 240 } }), fixture('real-360p-17s'))
    expect(p).toMatchObject({ extension: 'webm', muxer: 'webm', expectedWidth: 426, expectedHeight: 240 })
    expect(p).toMatchObject({
      outputHasVideo: true,
      outputHasAudio: true,
      videoCodec: 'vp9',
      audioCodec: 'opus',
    })
    expect(all(p.args, '-map')).toEqual(['0:0', '0:1'])
    expect(opt(p.args, '-c:v')).toBe('libvpx-vp9')
    expect(opt(p.args, '-row-mt')).toBe('1')
    expect(opt(p.args, '-c:a')).toBe('libopus')
    expect(opt(p.args, '-vf')).toContain('scale=426:240')
    expect(opt(p.args, '-f')).toBe('webm')
    expect(opt(p.args, '-progress')).toBe('pipe:1')
    expect(p.args).toContain('-nostats')
    expect(p.args).not.toContain('-i')
  })

  it('mp4 720p: H.264 yuv420p 1280x720, AAC, faststart', () => {
    const p = buildFfmpegArgs(spec({ format: 'mp4', resize: { height: 720 } }), fixture('real-360p-17s'))
    expect(p).toMatchObject({
      expectedWidth: 1280,
      expectedHeight: 720,
      videoCodec: 'h264',
      pixFmt: 'yuv420p',
    })
    expect(opt(p.args, '-c:v')).toBe('libx264')
    expect(opt(p.args, '-vf')).toMatch(/scale=1280:720.*format=yuv420p$/)
    expect(opt(p.args, '-c:a')).toBe('aac')
    expect(opt(p.args, '-movflags')).toBe('+faststart')
  })

  it('rotated phone video resized x640 keeps the DISPLAY aspect: 360x640 portrait', () => {
    const p = buildFfmpegArgs(
      spec({ format: 'mp4', resize: { height: 640 } }),
      fixture('phone-rotated-vfr-noaudio'),
    )
    expect([p.expectedWidth, p.expectedHeight]).toEqual([360, 640])
    expect(p.outputHasAudio).toBe(false)
    expect(all(p.args, '-map')).toEqual(['0:0'])
    const w = buildFfmpegArgs(
      spec({ format: 'mp4', resize: { width: 360 } }),
      fixture('phone-rotated-vfr-noaudio'),
    )
    expect([w.expectedWidth, w.expectedHeight]).toEqual([360, 640])
  })

  it('odd 161x121 without resize: cropped to even 160x120, no resampling', () => {
    const p = buildFfmpegArgs(spec({ format: 'mp4' }), fixture('odd-161x121'))
    expect([p.expectedWidth, p.expectedHeight]).toEqual([160, 120])
    expect(opt(p.args, '-vf')).toBe('crop=160:120:0:0,setsar=1,format=yuv420p')
  })

  it('even input without resize gets no scaling at all', () => {
    const p = buildFfmpegArgs(spec({ format: 'mp4' }), fixture('video-only'))
    expect(opt(p.args, '-vf')).toBe('format=yuv420p')
    expect([p.expectedWidth, p.expectedHeight]).toEqual([1280, 720])
  })

  it('every resize of every sample gives even sizes close to the display aspect', () => {
    for (const name of [
      'real-360p-17s',
      'phone-rotated-vfr-noaudio',
      'odd-161x121',
      'subtitles-srt',
      'video-only',
    ]) {
      const v = fixture(name).video
      if (!v) throw new Error(name)
      for (let s = 2; s <= 1200; s += 7) {
        for (const r of [{ width: s }, { height: s }, { width: s, height: s + 3 }]) {
          const t = targetSize(v, r)
          expect(t.width % 2, `${name} ${JSON.stringify(r)}`).toBe(0)
          expect(t.height % 2).toBe(0)
          expect(t.width).toBeGreaterThanOrEqual(2)
          if ('height' in r && !('width' in r)) expect(Math.abs(t.height - r.height)).toBeLessThanOrEqual(1)
          if ('width' in r && 'height' in r) {
            expect(t.width).toBeLessThanOrEqual(r.width)
            expect(t.height).toBeLessThanOrEqual(r.height)
          }
          if (s >= 100) {
            const aspect = v.displayWidth / v.displayHeight
            // Rounding to even moves each side by at most 1 px (2 px on a tiny side).
            expect(Math.abs(t.width / t.height - aspect)).toBeLessThan(
              (2.5 / Math.min(t.width, t.height)) * aspect + 0.01,
            )
          }
        }
      }
    }
  })

  it('a box (both sides) fits inside it keeping the aspect', () => {
    const p = buildFfmpegArgs(
      spec({ format: 'mp4', resize: { width: 640, height: 640 } }),
      fixture('real-360p-17s'),
    )
    expect([p.expectedWidth, p.expectedHeight]).toEqual([640, 360])
  })

  it('non-square pixels become square at the display size', () => {
    const info = fixture('video-only')
    if (!info.video) throw new Error('fixture')
    // 720x480 with SAR 32:27 (anamorphic 16:9 DVD): shown as 853x480.
    info.video = {
      ...info.video,
      width: 720,
      height: 480,
      sampleAspectRatio: 32 / 27,
      displayWidth: 853,
      displayHeight: 480,
    }
    const p = buildFfmpegArgs(spec({ format: 'mp4' }), info)
    expect([p.expectedWidth, p.expectedHeight]).toEqual([852, 480])
    expect(opt(p.args, '-vf')).toBe('scale=852:480:flags=bicubic,setsar=1,format=yuv420p')
  })

  it('10-bit HLG to mp4: tone-mapped when zscale/tonemap exist, 8-bit BT.709 either way', () => {
    const info = fixture('iphone-hdr-hevc')
    const t = buildFfmpegArgs(spec({ format: 'mp4' }), info, TONEMAP)
    expect(t.tonemapped).toBe(true)
    expect(opt(t.args, '-vf')).toMatch(/^zscale=tin=arib-std-b67:.*tonemap=tonemap=hable.*format=yuv420p$/)
    const plain = buildFfmpegArgs(spec({ format: 'mp4' }), info, { tonemap: false })
    expect(plain.tonemapped).toBe(false)
    expect(opt(plain.args, '-vf')).toBe('format=yuv420p')
    for (const p of [t, plain]) {
      expect(p.pixFmt).toBe('yuv420p')
      expect(opt(p.args, '-color_primaries')).toBe('bt709')
      expect(opt(p.args, '-color_trc')).toBe('bt709')
      expect(opt(p.args, '-colorspace')).toBe('bt709')
    }
    // SDR input gets no colour tags added.
    expect(buildFfmpegArgs(spec({ format: 'mp4' }), fixture('real-360p-17s'), TONEMAP).args).not.toContain(
      '-color_trc',
    )
  })

  it('gif: palette-based, fps capped, no audio, no subtitles, no chapters', () => {
    const p = buildFfmpegArgs(spec({ format: 'gif', resize: { width: 480 } }), fixture('subtitles-srt'))
    expect(p).toMatchObject({ outputHasAudio: false, subtitles: 'dropped', muxer: 'gif', videoCodec: 'gif' })
    const vf = opt(p.args, '-vf') ?? ''
    expect(vf).toMatch(new RegExp(`^fps=${GIF_MAX_FPS},scale=480:320`))
    expect(vf).toContain('split[a][b];[a]palettegen')
    expect(vf).toContain('[b][p]paletteuse')
    expect(all(p.args, '-map')).toEqual(['0:0'])
    expect(opt(p.args, '-map_chapters')).toBe('-1')
    expect(p.args).toContain('-sn')
  })

  it('gif from a slow input does not invent frames', () => {
    const info = fixture('real-360p-17s')
    if (!info.video) throw new Error('fixture')
    info.video = { ...info.video, fps: 10 }
    expect(opt(buildFfmpegArgs(spec({ format: 'gif' }), info).args, '-vf')).toMatch(/^split/)
  })

  it('mp3 of a video: audio only, lame; cover art never mapped', () => {
    const p = buildFfmpegArgs(spec({ format: 'mp3' }), fixture('real-360p-17s'))
    expect(p).toMatchObject({
      outputHasVideo: false,
      outputHasAudio: true,
      audioCodec: 'mp3',
      extension: 'mp3',
    })
    expect(all(p.args, '-map')).toEqual(['0:1'])
    expect(opt(p.args, '-c:a')).toBe('libmp3lame')
    expect(p.args).not.toContain('-vf')
    const c = buildFfmpegArgs(spec({ format: 'm4a' }), fixture('cover'))
    expect(all(c.args, '-map')).toEqual(['0:0'])
  })

  it('m4a: AAC copied when it already is AAC, encoded otherwise; ipod muxer', () => {
    const copy = buildFfmpegArgs(spec({ format: 'm4a' }), fixture('audio-only'))
    expect(opt(copy.args, '-c:a')).toBe('copy')
    expect(copy).toMatchObject({ audioCodec: 'aac', muxer: 'ipod', extension: 'm4a' })
    const enc = buildFfmpegArgs(spec({ format: 'm4a' }), fixture('audio'))
    expect(opt(enc.args, '-c:a')).toBe('aac')
    expect(enc.encoders).toContain('aac')
  })

  it('surround audio goes to stereo for Opus and MP3 only', () => {
    const info = fixture('real-360p-17s')
    if (!info.audio) throw new Error('fixture')
    info.audio = { ...info.audio, channels: 6 }
    expect(opt(buildFfmpegArgs(spec({ format: 'webm' }), info).args, '-ac')).toBe('2')
    expect(opt(buildFfmpegArgs(spec({ format: 'mp3' }), info).args, '-ac')).toBe('2')
    expect(buildFfmpegArgs(spec({ format: 'mp4' }), info).args).not.toContain('-ac')
  })

  describe('subtitles (SubRip in mkv)', () => {
    const info = fixture('subtitles-srt')
    const sub = (
      format: 'mp4' | 'mov' | 'webm' | 'mkv' | 'gif' | 'mp3' | 'm4a',
      subtitles: 'keep' | 'drop' = 'keep',
    ) => buildFfmpegArgs(spec({ format, subtitles }), info)
    it('mp4/mov: converted to mov_text', () => {
      for (const f of ['mp4', 'mov'] as const) {
        const p = sub(f)
        expect(p.subtitles).toBe('converted')
        expect(all(p.args, '-map')).toEqual(['0:0', '0:1', '0:2'])
        expect(opt(p.args, '-c:s:0')).toBe('mov_text')
        expect(p.args).not.toContain('-sn')
      }
    })
    it('webm: converted to WebVTT', () => {
      expect(opt(sub('webm').args, '-c:s:0')).toBe('webvtt')
      expect(sub('webm').subtitles).toBe('converted')
    })
    it('mkv: copied, and the AC-3 audio too', () => {
      const p = sub('mkv')
      expect(p.subtitles).toBe('copied')
      expect(opt(p.args, '-c:s:0')).toBe('copy')
      expect(opt(p.args, '-c:a')).toBe('copy')
      // Matroska has no edit list: audio packets before the start are not copied.
      expect(opt(p.args, '-copypriorss:a')).toBe('0')
      expect(p.audioCodec).toBe('ac3')
    })
    it('gif/mp3/m4a and drop mode: dropped with -sn', () => {
      for (const p of [sub('gif'), sub('mp3'), sub('m4a'), sub('mp4', 'drop')]) {
        expect(p.subtitles).toBe('dropped')
        expect(p.args).toContain('-sn')
        expect(p.subtitleStreams).toBe(0)
      }
    })
    it('bitmap subtitles: kept in mkv, dropped where they cannot go', () => {
      const pgs: MediaInfo = { ...info, subtitles: [{ index: 2, codec: 'hdmv_pgs_subtitle' }] }
      expect(buildFfmpegArgs(spec({ format: 'mkv' }), pgs).subtitles).toBe('copied')
      for (const f of ['mp4', 'webm'] as const) {
        const p = buildFfmpegArgs(spec({ format: f }), pgs)
        expect(p.subtitles).toBe('dropped')
        expect(all(p.args, '-map')).toEqual(['0:0', '0:1'])
      }
    })
    it('no subtitles in the input: none', () => {
      expect(buildFfmpegArgs(spec({ format: 'mp4' }), fixture('real-360p-17s')).subtitles).toBe('none')
    })
  })

  it('is pure: same input, same output, input untouched', () => {
    const info = fixture('subtitles-srt')
    const frozen = JSON.stringify(info)
    const s = spec({ format: 'webm', resize: { width: 300 } })
    const a = buildFfmpegArgs(s, Object.freeze(info), TONEMAP)
    expect(buildFfmpegArgs(s, info, TONEMAP)).toEqual(a)
    expect(JSON.stringify(info)).toBe(frozen)
  })
})
