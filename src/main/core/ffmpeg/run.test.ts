import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ffmpegPaths } from './locate'
import { DEFAULT_ENCODE_NICE, encodeNice, mostTellingLine, runFfmpeg } from './run'

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

describe('encodeNice', () => {
  it('is below normal unless BULLPEN_FFMPEG_NICE gives 0–19', () => {
    expect(encodeNice({})).toBe(DEFAULT_ENCODE_NICE)
    expect(encodeNice({ BULLPEN_FFMPEG_NICE: '0' })).toBe(0)
    expect(encodeNice({ BULLPEN_FFMPEG_NICE: '19' })).toBe(19)
    expect(encodeNice({ BULLPEN_FFMPEG_NICE: '-5' })).toBe(DEFAULT_ENCODE_NICE)
    expect(encodeNice({ BULLPEN_FFMPEG_NICE: 'high' })).toBe(DEFAULT_ENCODE_NICE)
  })
})

describe('runFfmpeg priority', () => {
  // Linux shows each thread's niceness in /proc/<pid>/task/<tid>/stat (field 19).
  it.runIf(process.platform === 'linux')(
    'runs ffmpeg and all its threads at the encode niceness',
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'bullpen-nice-'))
      try {
        const input = path.join(dir, 'in.mp4')
        execFileSync(ffmpegPaths().ffmpeg, [
          ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=3'],
          ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', input],
        ])
        const output = path.join(dir, 'out-nice-probe.mp4')
        const run = runFfmpeg({
          jobId: 'nice-test',
          input,
          output,
          // `realtime` paces the encode to the clock, so the process lives long enough to be looked at.
          args: ['-vf', 'realtime', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'mp4'],
          durationSec: 3,
        })
        let pid: string | undefined
        for (let i = 0; i < 50 && !pid; i++) {
          await new Promise((r) => setTimeout(r, 100))
          pid = readdirSync('/proc')
            .filter((p) => /^\d+$/.test(p))
            .find((p) => {
              try {
                return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(output)
              } catch {
                return false
              }
            })
        }
        expect(pid).toBeDefined()
        await new Promise((r) => setTimeout(r, 500)) // encoder threads started
        const nices = readdirSync(`/proc/${pid}/task`).map((tid) => {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
        })
        expect(nices.length).toBeGreaterThan(1)
        expect(new Set(nices)).toEqual(new Set([DEFAULT_ENCODE_NICE]))
        await run
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    },
  )
})
