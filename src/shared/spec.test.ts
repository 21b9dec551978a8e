import { describe, expect, it } from 'vitest'
import {
  JobDataSchema,
  TranscodeSpecSchema,
  isSafeAbsolutePath,
  parseResize,
  presetSpec,
  PRESET_NAMES,
  priorityName,
  PRIORITY_VALUES,
} from './spec'

describe('parseResize', () => {
  it('reads WxH, Wx, xH and W', () => {
    expect(parseResize('1280x720')).toEqual({ width: 1280, height: 720 })
    expect(parseResize('1280x')).toEqual({ width: 1280 })
    expect(parseResize('x240')).toEqual({ height: 240 })
    expect(parseResize('640')).toEqual({ width: 640 })
  })
  it('refuses nonsense and absurd sizes', () => {
    for (const t of ['', 'x', 'big', '0x0', '100000x10', '12x-4', '1280x720x3'])
      expect(parseResize(t)).toBeUndefined()
  })
})

describe('TranscodeSpecSchema', () => {
  it('defaults subtitles to keep and rejects unknown fields', () => {
    expect(TranscodeSpecSchema.parse({ format: 'mp4' })).toEqual({ format: 'mp4', subtitles: 'keep' })
    expect(TranscodeSpecSchema.safeParse({ format: 'mp4', ffmpegArgs: ['-y'] }).success).toBe(false)
    expect(TranscodeSpecSchema.safeParse({ format: 'exe' }).success).toBe(false)
  })
  it('refuses a resize of an audio-only target', () => {
    const r = TranscodeSpecSchema.safeParse({ format: 'mp3', resize: { height: 240 } })
    expect(r.success).toBe(false)
    expect(r.error?.issues[0]?.message).toMatch(/no picture/)
  })
  it('builds every preset', () => {
    for (const name of PRESET_NAMES) expect(presetSpec(name).preset).toBe(name)
  })
})

describe('isSafeAbsolutePath', () => {
  it('accepts normalised absolute paths', () => {
    for (const p of [
      '/',
      '/a/b c/[x].mp4',
      "/tmp/te[s]t_ video ' _ .flv",
      'C:\\Users\\me\\v.mp4',
      '\\\\srv\\share\\v.mp4',
      '/tmp/-dash.mp4',
    ]) {
      expect(isSafeAbsolutePath(p), p).toBe(true)
    }
  })
  it('refuses relative, traversing, unnormalised and control-character paths', () => {
    for (const p of [
      '',
      'a/b',
      '../etc',
      '/tmp/../etc',
      '/tmp/./x',
      '/tmp//x',
      '/tmp/x\u0000y',
      '/tmp/x\ny',
      'C:..\\x',
    ]) {
      expect(isSafeAbsolutePath(p), JSON.stringify(p)).toBe(false)
    }
  })
})

describe('priorities', () => {
  it('maps Bull numbers both ways', () => {
    expect(PRIORITY_VALUES).toEqual({ high: 1, normal: 5, low: 10 })
    expect(priorityName(1)).toBe('high')
    expect(priorityName(10)).toBe('low')
    expect(priorityName(undefined)).toBe('normal')
  })
})

describe('JobDataSchema', () => {
  const good = {
    v: 1,
    input: { path: '/media/a.mp4', size: 10, mtimeMs: 1 },
    outputDir: '/media',
    spec: { format: 'webm', resize: { height: 240 } },
    priority: 'normal',
    origin: 'desk-1a2b',
    summary: { durationSec: 1, hasVideo: true, hasAudio: true, width: 640, height: 360 },
    dedupeKey: 'a'.repeat(32),
    createdAt: 1,
  }
  it('accepts a real payload', () => {
    expect(JobDataSchema.safeParse(good).success).toBe(true)
  })
  it('refuses hostile payloads', () => {
    const bad = [
      { ...good, outputDir: '/media/../../etc' },
      { ...good, input: { ...good.input, path: 'relative.mp4' } },
      { ...good, spec: { format: 'mp4', resize: { width: 100000 } } },
      { ...good, extra: '-f null' },
      { ...good, origin: '../../x' },
      { ...good, v: 2 },
    ]
    for (const b of bad) expect(JobDataSchema.safeParse(b).success, JSON.stringify(b)).toBe(false)
  })
})
