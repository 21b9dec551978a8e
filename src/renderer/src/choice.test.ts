import { describe, expect, it } from 'vitest'
import { summarizeOutcomes } from './actions'
import { type Choice, choiceProblem, decodeChoice, encodeChoice, requestFields } from './choice'
import { joinRedisUrl, splitRedisUrl } from './components/SettingsPanel'
import { describeProgress, formatBytes, formatDuration } from './format'

describe('choice encoding (settings.lastPreset)', () => {
  const cases: [Choice, string][] = [
    [{ kind: 'preset', preset: '720p' }, '720p'],
    [{ kind: 'convert', format: 'webm' }, 'convert:webm'],
    [{ kind: 'resize', format: 'mp4', width: 1280, height: 720 }, 'resize:mp4:1280x720'],
    [{ kind: 'resize', format: 'gif', width: null, height: 240 }, 'resize:gif:x240'],
  ]
  it.each(cases)('round-trips %j as %s', (choice, text) => {
    expect(encodeChoice(choice)).toBe(text)
    expect(decodeChoice(text)).toEqual(choice)
  })

  it('falls back to the default for anything unreadable', () => {
    for (const bad of ['', null, 'convert:avi', 'resize:exe:1x1', 'Rm -rf', 'x'.repeat(40)])
      expect(decodeChoice(bad)).toEqual({ kind: 'preset', preset: '720p' })
  })

  it('turns a choice into the preset or the spec of a request, refusing a resize without a size', () => {
    expect(requestFields({ kind: 'preset', preset: 'gif' })).toEqual({ preset: 'gif' })
    expect(requestFields({ kind: 'convert', format: 'mp3' })).toEqual({ spec: { format: 'mp3' } })
    expect(requestFields({ kind: 'resize', format: 'mkv', width: null, height: 360 })).toEqual({
      spec: { format: 'mkv', resize: { height: 360 } },
    })
    expect(choiceProblem({ kind: 'resize', format: 'mp4', width: null, height: null })).toMatch(
      /width, a height/,
    )
    expect(choiceProblem({ kind: 'resize', format: 'mp4', width: 1, height: null })).toMatch(/2 to 7680/)
    expect(choiceProblem({ kind: 'resize', format: 'mp4', width: 9000, height: null })).toMatch(/2 to 7680/)
    expect(choiceProblem({ kind: 'resize', format: 'mp4', width: 640, height: null })).toBeNull()
    expect(choiceProblem({ kind: 'resize', format: 'mp3', width: 640, height: null })).toMatch(/no picture/)
  })
})

describe('display helpers', () => {
  it('formats progress, durations and sizes', () => {
    expect(describeProgress({ stage: 'encode', percent: 42.9, fps: 87.4, speed: 3.14, etaSec: 3725 })).toBe(
      '42% · 87 fps · 3.1× · ETA 1:02:05',
    )
    expect(describeProgress({ stage: 'download', percent: null, fps: null, speed: null, etaSec: null })).toBe(
      'Fetching input',
    )
    expect(describeProgress(null)).toBe('Starting…')
    expect(formatDuration(59.6)).toBe('1:00')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(2_200_000)).toBe('2.1 MB')
    expect(formatBytes(15 * 1024 ** 3)).toBe('15 GB')
  })

  it('summarises what addFiles did, naming refused files', () => {
    expect(
      summarizeOutcomes(
        [
          { path: '/a/x.mp4', id: '1', duplicate: false, error: null },
          { path: '/a/y.mp4', id: '2', duplicate: true, error: null },
          { path: '/a/notes.txt', id: null, duplicate: false, error: 'not a video or audio file' },
        ],
        '720p, high priority',
      ),
    ).toEqual({
      kind: 'error',
      text: 'Queued 1 file (720p, high priority). 1 already queued. notes.txt refused: not a video or audio file.',
    })
    // A reason that ends its own sentence gets no second full stop.
    expect(
      summarizeOutcomes(
        [{ path: '/a/s.mp3', id: null, duplicate: false, error: 'It has no video. Choose mp3 or m4a.' }],
        'webm',
      ).text,
    ).toBe('s.mp3 refused: It has no video. Choose mp3 or m4a.')
  })
})

describe('Redis URL fields', () => {
  it('splits the password and TLS out of a stored URL and joins them back', () => {
    const f = splitRedisUrl('rediss://:p%40ss@redis.example.com:6380/2')
    expect(f).toEqual({
      mode: 'remote',
      url: 'redis://redis.example.com:6380/2',
      password: 'p@ss',
      tls: true,
    })
    expect(joinRedisUrl(f)).toBe('rediss://:p%40ss@redis.example.com:6380/2')
    expect(splitRedisUrl('')).toEqual({ mode: 'local', url: '', password: '', tls: false })
    expect(joinRedisUrl({ mode: 'local', url: 'ignored', password: '', tls: false })).toBe('')
    expect(joinRedisUrl({ mode: 'remote', url: '10.0.0.5', password: '', tls: false })).toBe(
      'redis://10.0.0.5',
    )
    expect(() => joinRedisUrl({ mode: 'remote', url: '', password: '', tls: false })).toThrow(
      /not a Redis address/,
    )
  })
})
