import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createProgressTracker, createThrottle, parseTimestamp, type ProgressSnapshot } from './progress'

// Real output captured from ffmpeg 5.1 runs on the sample media (see fixtures/):
//  progress-video.txt  real-360p-17s.mp4 → H.264 426x240 + AAC (-progress pipe:1 -nostats)
//  progress-audio.txt  audio.mp3 → AAC in ipod (audio only: no frame/fps keys)
//  progress-nodur.txt  a webm written to a pipe (no duration in its header) → mp4
//  progress-na.txt     video-only.mp4 → libx264 medium, -stats_period 0.1: bitrate=N/A, speed=0x at the start
//  stderr-video.txt / stderr-audio.txt  the same runs without -progress: stats lines joined by \r on stderr
const fixture = (name: string): string => readFileSync(path.join(__dirname, 'fixtures', name), 'utf8')

function feedAll(durationSec: number | null, text: string): ProgressSnapshot[] {
  const t = createProgressTracker(durationSec)
  return t.write(text)
}

describe('parseTimestamp', () => {
  it('parses ffmpeg times', () => {
    expect(parseTimestamp('00:00:05.713667')).toBeCloseTo(5.713667, 6)
    expect(parseTimestamp('01:02:03.50')).toBeCloseTo(3723.5, 6)
    expect(parseTimestamp('-00:00:00.02')).toBe(0)
    expect(parseTimestamp('N/A')).toBeNull()
  })
})

describe('createProgressTracker on -progress output', () => {
  it('video run: percent rises to 100, fps/speed/frame/ETA filled', () => {
    const snaps = feedAll(17.064, fixture('progress-video.txt'))
    expect(snaps.length).toBeGreaterThanOrEqual(3)
    const percents = snaps.map((s) => s.percent ?? -1)
    expect(percents).toEqual([...percents].sort((a, b) => a - b))
    const first = snaps[0]
    expect(first?.frame).toBe(1)
    expect(first?.outTimeSec).toBeCloseTo(0.044333, 5)
    const mid = snaps[1]
    expect(mid?.frame).toBe(171)
    expect(mid?.percent).toBeCloseTo((5.713667 / 17.064) * 100, 3)
    expect(mid?.speed).toBeCloseTo(11.1, 5)
    expect(mid?.etaSec).toBeCloseTo((17.064 - 5.713667) / 11.1, 3)
    const last = snaps.at(-1)
    expect(last).toMatchObject({ done: true, percent: 100, etaSec: 0 })
    expect(last?.fps).toBeGreaterThan(0)
    expect(snaps.slice(0, -1).every((s) => !s.done)).toBe(true)
  })

  it('audio-only run: no frames or fps, percent from out_time, N/A speed is null', () => {
    const snaps = feedAll(13.536, fixture('progress-audio.txt'))
    expect(snaps[0]).toMatchObject({ frame: null, fps: null, speed: null, etaSec: null, percent: 0 })
    expect(snaps[1]?.percent).toBeCloseTo((6.250667 / 13.536) * 100, 3)
    expect(snaps.at(-1)).toMatchObject({ done: true, percent: 100 })
    expect(snaps.every((s) => s.frame === null && s.fps === null)).toBe(true)
  })

  it('unknown duration: percent null (indeterminate) until the end, ETA null', () => {
    const snaps = feedAll(null, fixture('progress-nodur.txt'))
    expect(snaps.length).toBeGreaterThanOrEqual(2)
    for (const s of snaps.slice(0, -1)) {
      expect(s.percent).toBeNull()
      expect(s.etaSec).toBeNull()
    }
    expect(snaps[1]?.outTimeSec).toBeGreaterThan(0)
    expect(snaps.at(-1)).toMatchObject({ done: true, outTimeSec: 4.018167 })
  })

  it('N/A bitrate and 0x speed at the start do not break anything', () => {
    const snaps = feedAll(1.5, fixture('progress-na.txt'))
    expect(snaps[0]).toMatchObject({ percent: 0, speed: null, etaSec: null, fps: null, frame: 1 })
    for (const s of snaps) {
      expect(s.percent).toBeGreaterThanOrEqual(0)
      expect(s.percent).toBeLessThanOrEqual(100)
    }
    expect(snaps.at(-1)?.done).toBe(true)
  })

  it('out_time_us=N/A (before the first packet) keeps the last known position', () => {
    const t = createProgressTracker(10)
    t.write('out_time_us=2000000\nprogress=continue\n')
    const [s] = t.write('out_time_us=N/A\nout_time_ms=N/A\nout_time=N/A\nspeed=N/A\nprogress=continue\n')
    expect(s).toMatchObject({ outTimeSec: 2, percent: 20, speed: null })
  })

  it('clamps percent to 100 when the output runs past the probed duration', () => {
    // progress-video's last block reports 17.07 s against a shorter duration.
    const snaps = feedAll(10, fixture('progress-video.txt'))
    expect(snaps.every((s) => s.percent !== null && s.percent <= 100)).toBe(true)
  })

  it('lines split across chunks are reassembled', () => {
    const text = fixture('progress-video.txt')
    const whole = feedAll(17.064, text)
    const t = createProgressTracker(17.064)
    const pieces: ProgressSnapshot[] = []
    for (let i = 0; i < text.length; i += 7) pieces.push(...t.write(text.slice(i, i + 7)))
    expect(pieces).toEqual(whole)
  })
})

describe('createProgressTracker on stderr stats lines', () => {
  it('video: frame, fps, time, speed from \\r-separated stats', () => {
    const snaps = feedAll(17.064, fixture('stderr-video.txt'))
    expect(snaps.length).toBeGreaterThanOrEqual(2)
    const last = snaps.at(-1)
    expect(last?.frame).toBeGreaterThan(500)
    expect(last?.outTimeSec).toBeGreaterThan(16.5)
    expect(last?.percent).toBeGreaterThan(95)
    expect(last?.speed).toBeGreaterThan(0)
  })
  it('audio: "size= … time= … speed=N/A" lines with no frame', () => {
    const snaps = feedAll(13.536, fixture('stderr-audio.txt'))
    expect(snaps[0]).toMatchObject({ frame: null, speed: null, outTimeSec: 0 })
    expect(snaps.at(-1)?.outTimeSec).toBeCloseTo(13.52, 2)
  })
  it('ignores the other stderr lines (stream mapping, metadata)', () => {
    const t = createProgressTracker(5)
    expect(t.push('Stream mapping:')).toBeNull()
    expect(t.push('  Stream #0:0 -> #0:0 (h264 (native) -> h264 (libx264))')).toBeNull()
    expect(t.push('      encoder         : Lavc59.37.100 libx264')).toBeNull()
  })
})

describe('createThrottle', () => {
  it('passes at most one update per interval, the final one always, and flushes the held one', () => {
    let now = 0
    const got: number[] = []
    const th = createThrottle<number>(
      (v) => got.push(v),
      250,
      () => now,
    )
    for (let i = 0; i < 20; i++) {
      th.push(i)
      now += 50
    }
    // 20 updates over 1 s at 50 ms spacing → every 5th one.
    expect(got).toEqual([0, 5, 10, 15])
    th.push(99, true)
    expect(got.at(-1)).toBe(99)
    th.push(100)
    th.flush()
    expect(got.at(-1)).toBe(100)
    th.flush()
    expect(got.filter((v) => v === 100)).toHaveLength(1)
  })
})
