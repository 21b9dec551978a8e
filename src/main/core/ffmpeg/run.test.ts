import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { mostTellingLine } from './run'

// Real stderr tails (last 20 lines) of failed ffmpeg 5.1 runs on video-only.mp4, captured into fixtures/.
const tail = (n: number): string[] =>
  readFileSync(path.join(__dirname, 'fixtures', `stderr-fail-${n}.txt`), 'utf8').split('\n')

describe('mostTellingLine', () => {
  it("picks the precise line, not ffmpeg's generic follow-ups", () => {
    expect(mostTellingLine(tail(1))).toBe('No audio stream present.') // video mapped into the mp3 muxer
    expect(mostTellingLine(tail(2))).toBe("Stream map '0:1' matches no streams.")
    expect(mostTellingLine(tail(3))).toBe("Invalid size 'nonsense'")
    expect(mostTellingLine(tail(4))).toBe('width not divisible by 2 (161x121)')
    expect(mostTellingLine(tail(5))).toBe("Unknown encoder 'no_such_encoder'")
  })
  it('falls back to the last line, or null for nothing', () => {
    expect(mostTellingLine(['Stream mapping:', 'something odd happened'])).toBe('something odd happened')
    expect(mostTellingLine(['Conversion failed!'])).toBeNull()
    expect(mostTellingLine([])).toBeNull()
  })
})
