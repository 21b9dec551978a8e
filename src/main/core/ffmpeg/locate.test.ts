import { execFileSync } from 'node:child_process'
import { readdirSync, realpathSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import fluentFfmpeg from 'fluent-ffmpeg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FfmpegMissingError } from '../errors'
import {
  checkFfmpeg,
  detectCapabilities,
  findFfmpeg,
  findOnPath,
  listEncoders,
  listFilters,
  parseEncoders,
  parseFormats,
  unpackedAsarPath,
  useFfmpeg,
  warmFfmpeg,
  type FfmpegCheck,
} from './locate'
import { probeInput } from './probe'
import { runFfmpeg } from './run'
import { durationTolerance } from './verify'

const VARS = ['FFMPEG_PATH', 'FFMPEG_BIN', 'FFPROBE_PATH', 'FFPROBE_BIN', 'PATH'] as const
let saved: Record<string, string | undefined>
let dir: string

beforeEach(async () => {
  saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]))
  for (const v of VARS.slice(0, 4)) delete process.env[v]
  dir = await mkdtemp(path.join(tmpdir(), 'bullpen-locate-'))
})
afterEach(async () => {
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v]
    else process.env[v] = saved[v]
  }
  useFfmpeg()
  await rm(dir, { recursive: true, force: true })
})

const realFfmpeg = findOnPath('ffmpeg')
const realFfprobe = findOnPath('ffprobe')

describe('findFfmpeg', () => {
  it('explicit setting wins over the environment', () => {
    process.env['FFMPEG_PATH'] = '/env/ffmpeg'
    const p = findFfmpeg({ ffmpegPath: '/set/ffmpeg', ffprobePath: '/set/ffprobe' })
    expect(p).toMatchObject({ ffmpeg: '/set/ffmpeg', ffprobe: '/set/ffprobe' })
    expect(p.source).toMatchObject({ ffmpeg: 'setting', ffprobe: 'setting' })
  })

  it('FFMPEG_PATH before FFMPEG_BIN, FFPROBE_PATH for ffprobe', () => {
    process.env['FFMPEG_BIN'] = '/bin-var/ffmpeg'
    expect(findFfmpeg().ffmpeg).toBe('/bin-var/ffmpeg')
    process.env['FFMPEG_PATH'] = '/path-var/ffmpeg'
    process.env['FFPROBE_PATH'] = '/path-var/ffprobe'
    const p = findFfmpeg()
    expect(p).toMatchObject({ ffmpeg: '/path-var/ffmpeg', ffprobe: '/path-var/ffprobe' })
    expect(p.source).toMatchObject({
      ffmpeg: 'env',
      ffmpegEnv: 'FFMPEG_PATH',
      ffprobe: 'env',
      ffprobeEnv: 'FFPROBE_PATH',
    })
  })

  it('takes the ffprobe beside the chosen ffmpeg', async () => {
    for (const name of ['ffmpeg', 'ffprobe']) {
      await writeFile(path.join(dir, name), '#!/bin/sh\n')
      await chmod(path.join(dir, name), 0o755)
    }
    const p = findFfmpeg({ ffmpegPath: path.join(dir, 'ffmpeg') })
    expect(p.ffprobe).toBe(path.join(dir, 'ffprobe'))
    expect(p.source.ffprobe).toBe('beside-ffmpeg')
  })

  it('takes the ffprobe beside an ffmpeg given by a relative path or a bare name', async () => {
    for (const name of ['ffmpeg', 'ffprobe']) {
      await writeFile(path.join(dir, name), '#!/bin/sh\n')
      await chmod(path.join(dir, name), 0o755)
    }
    process.env['FFMPEG_PATH'] = path.relative(process.cwd(), path.join(dir, 'ffmpeg'))
    expect(findFfmpeg()).toMatchObject({
      ffprobe: path.join(dir, 'ffprobe'),
      source: { ffprobe: 'beside-ffmpeg' },
    })
    process.env['FFMPEG_PATH'] = 'ffmpeg'
    process.env['PATH'] = dir
    expect(findFfmpeg()).toMatchObject({
      ffmpeg: 'ffmpeg',
      ffprobe: path.join(dir, 'ffprobe'),
      source: { ffprobe: 'beside-ffmpeg' },
    })
  })

  it('falls back to PATH (the ffmpeg-static binary is not installed here)', () => {
    const p = findFfmpeg()
    expect(p.source.ffmpeg).toMatch(/^(ffmpeg-static|path)$/)
    if (p.source.ffmpeg === 'path') expect(p.ffmpeg).toBe(realFfmpeg)
  })

  it('reports not-found with an empty PATH (ffprobe: the bundled static one)', () => {
    process.env['PATH'] = dir
    const p = findFfmpeg()
    // With FFMPEG_BIN set when it was loaded (CI), ffmpeg-static reports the system ffmpeg, ffprobe beside it.
    if (p.source.ffmpeg === 'ffmpeg-static')
      expect(p.source.ffprobe).toMatch(/^(beside-ffmpeg|ffprobe-installer)$/)
    else expect(p.source).toMatchObject({ ffmpeg: 'not-found', ffprobe: 'ffprobe-installer' })
  })
})

describe('the bundled ffprobe (@ffprobe-installer/ffprobe)', () => {
  const media = path.join(__dirname, '..', '..', '..', '..', '..', 'shared', 'media')
  /** Every sample probed with the ffprobe in use: what Bullpen makes of it, or the error it gives. */
  const probeAll = async (): Promise<Record<string, unknown>> => {
    const out: Record<string, unknown> = {}
    for (const f of readdirSync(media).filter((n) => !n.endsWith('.md'))) {
      out[f] = await probeInput(path.join(media, f)).catch(
        (err: unknown) => `error: ${(err as Error).message}`,
      )
    }
    return out
  }

  it('is the ffprobe of an ffmpeg with none beside it (ffmpeg-static), and reads every sample as the system one does', async () => {
    // An ffmpeg alone in its folder, as ffmpeg-static installs it.
    await symlink(realFfmpeg as string, path.join(dir, 'ffmpeg'))
    const p = useFfmpeg({ ffmpegPath: path.join(dir, 'ffmpeg') })
    expect(p.source.ffprobe).toBe('ffprobe-installer')
    expect(p.ffprobe).toMatch(/@ffprobe-installer[\\/][a-z0-9]+-[a-z0-9]+[\\/]ffprobe(\.exe)?$/)
    const check = await checkFfmpeg()
    expect(check.ffprobeVersion).toMatch(/^ffprobe version /)
    const bundled = await probeAll()
    // The system ffprobe, for comparison: the probes that decide every command line must not depend on which one ran.
    useFfmpeg({ ffprobePath: realFfprobe as string })
    const system = await probeAll()
    expect(Object.keys(bundled).length).toBeGreaterThan(8)
    // Containers' durations may differ between ffmpeg versions (5.1 and the bundled 6.x read MP4 edit lists
    // differently): within the tolerance an output is verified with.
    const durations = (all: Record<string, unknown>): Record<string, number | null> =>
      Object.fromEntries(
        Object.entries(all).flatMap(([f, v]) =>
          typeof v === 'object' && v !== null ? [[f, (v as { durationSec: number | null }).durationSec]] : [],
        ),
      )
    const withoutDurations = (all: Record<string, unknown>): Record<string, unknown> =>
      Object.fromEntries(
        Object.entries(all).map(([f, v]) => [
          f,
          typeof v === 'object' && v !== null ? { ...v, durationSec: 0 } : v,
        ]),
      )
    expect(withoutDurations(bundled)).toEqual(withoutDurations(system))
    const sys = durations(system)
    for (const [f, d] of Object.entries(durations(bundled))) {
      const s = sys[f] ?? null
      expect(d === null, f).toBe(s === null)
      if (d !== null && s !== null) expect(Math.abs(d - s), f).toBeLessThanOrEqual(durationTolerance(s))
    }
  })
})

describe('findOnPath', () => {
  it('finds executables only', async () => {
    await writeFile(path.join(dir, 'tool'), 'x')
    expect(findOnPath('tool', dir)).toBeNull()
    await chmod(path.join(dir, 'tool'), 0o755)
    expect(findOnPath('tool', `/nonexistent${path.delimiter}${dir}`)).toBe(path.join(dir, 'tool'))
  })
})

describe('unpackedAsarPath', () => {
  it('rewrites app.asar to app.asar.unpacked, once, and leaves other paths alone', () => {
    expect(unpackedAsarPath('/opt/Bullpen/resources/app.asar/node_modules/ffmpeg-static/ffmpeg')).toBe(
      '/opt/Bullpen/resources/app.asar.unpacked/node_modules/ffmpeg-static/ffmpeg',
    )
    expect(
      unpackedAsarPath('C:\\Bullpen\\resources\\app.asar\\node_modules\\ffmpeg-static\\ffmpeg.exe'),
    ).toBe('C:\\Bullpen\\resources\\app.asar.unpacked\\node_modules\\ffmpeg-static\\ffmpeg.exe')
    const already = '/x/resources/app.asar.unpacked/node_modules/ffmpeg-static/ffmpeg'
    expect(unpackedAsarPath(already)).toBe(already)
    expect(unpackedAsarPath('/usr/bin/ffmpeg')).toBe('/usr/bin/ffmpeg')
  })
})

describe('checkFfmpeg (real binaries)', () => {
  it.runIf(realFfmpeg !== null && realFfprobe !== null)('returns both versions', async () => {
    const c = await checkFfmpeg()
    expect(c.ffmpegVersion).toMatch(/^ffmpeg version /)
    expect(c.ffprobeVersion).toMatch(/^ffprobe version /)
  })

  it('says exactly what is missing and how to fix it', async () => {
    const err = await checkFfmpeg({
      ffmpegPath: path.join(dir, 'no-ffmpeg'),
      ffprobePath: realFfprobe ?? '',
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FfmpegMissingError)
    const msg = (err as Error).message
    expect(msg).toContain(
      `ffmpeg not usable: ffmpeg from the ffmpeg path in the settings (${dir}/no-ffmpeg) does not exist`,
    )
    expect(msg).toContain('Install ffmpeg')
    expect(msg).toContain('set FFMPEG_PATH to the executable')
    expect(msg).not.toContain('FFPROBE_PATH')
  })

  it('names both when both are missing, and a file that is not executable', async () => {
    await writeFile(path.join(dir, 'ffprobe'), 'not a program')
    await symlink('/nonexistent/ffmpeg', path.join(dir, 'ffmpeg'))
    const err = await checkFfmpeg({
      ffmpegPath: path.join(dir, 'ffmpeg'),
      ffprobePath: path.join(dir, 'ffprobe'),
    }).catch((e: unknown) => e)
    expect((err as Error).message).toMatch(
      /^ffmpeg and ffprobe not usable: .*does not exist; ffprobe from .* is not executable/,
    )
    expect((err as Error).message).toContain('FFMPEG_PATH / FFPROBE_PATH')
  })
})

describe('checkFfmpeg: the program must be the one it stands for', () => {
  it.runIf(realFfmpeg !== null && realFfprobe !== null)(
    'refuses an ffmpeg given as ffprobe, and a program that prints nothing',
    async () => {
      const swapped = await checkFfmpeg({
        ffmpegPath: realFfmpeg as string,
        ffprobePath: realFfmpeg as string,
      }).catch((e: unknown) => e)
      expect(swapped).toBeInstanceOf(FfmpegMissingError)
      expect((swapped as Error).message).toMatch(
        /^ffprobe not usable: ffprobe from .* is not ffprobe \(its -version says "ffmpeg version /,
      )
      expect((swapped as Error).message).toContain('set FFPROBE_PATH to the executable')
      const silent = path.join(dir, 'silent')
      await writeFile(silent, '#!/bin/sh\nexit 0\n')
      await chmod(silent, 0o755)
      const quiet = await checkFfmpeg({ ffmpegPath: silent, ffprobePath: realFfprobe as string }).catch(
        (e: unknown) => e,
      )
      expect((quiet as Error).message).toMatch(
        /^ffmpeg not usable: .* is not ffmpeg \(its -version says nothing\)/,
      )
    },
  )
})

describe('listEncoders', () => {
  it.runIf(realFfmpeg !== null)('lists the real encoders, cached', async () => {
    useFfmpeg()
    const a = await listEncoders()
    expect(a.has('libx264')).toBe(true)
    expect(a.has('aac')).toBe(true)
    expect(a.has('=')).toBe(false)
    expect(await listEncoders()).toBe(a)
  })

  it.runIf(realFfmpeg !== null)(
    'warmFfmpeg reads the lists a first job needs, and they stay cached',
    async () => {
      useFfmpeg()
      await warmFfmpeg()
      const a = await listEncoders()
      expect(a.has('libx264')).toBe(true)
      await warmFfmpeg()
      expect(await listEncoders()).toBe(a)
    },
  )
})

describe.runIf(realFfmpeg !== null && realFfprobe !== null)('the ffmpeg record in the data folder', () => {
  /** The runs of a start without a usable record: the check (with ffmpeg's version in -filters) and the lists. */
  const FULL_CHECK = [
    'ffmpeg -filters',
    'ffmpeg -hide_banner -encoders',
    'ffmpeg -hide_banner -formats',
    'ffprobe -version',
  ]
  /**
   * ffmpeg and ffprobe shims that write each run's arguments to calls.txt, then run the real binaries through
   * links in real/ (which a test can point elsewhere without touching the shims).
   */
  async function shims(): Promise<{ ffmpeg: string; ffprobe: string; calls: () => Promise<string[]> }> {
    const calls = path.join(dir, 'calls.txt')
    const ffmpeg = path.join(dir, 'ffmpeg')
    const ffprobe = path.join(dir, 'ffprobe')
    await mkdir(path.join(dir, 'real'))
    await symlink(realFfmpeg as string, path.join(dir, 'real', 'ffmpeg'))
    await symlink(realFfprobe as string, path.join(dir, 'real', 'ffprobe'))
    for (const [shim, name] of [
      [ffmpeg, 'ffmpeg'],
      [ffprobe, 'ffprobe'],
    ] as const) {
      await writeFile(shim, `#!/bin/sh\necho "${name} $*" >> '${calls}'\nexec '${dir}/real/${name}' "$@"\n`, {
        mode: 0o755,
      })
    }
    const read = async (): Promise<string[]> => {
      const text = await readFile(calls, 'utf8').catch(() => '')
      await writeFile(calls, '')
      return text.split('\n').filter(Boolean)
    }
    return { ffmpeg, ffprobe, calls: read }
  }
  /** What a node start does (BullpenNode.start): the check and, for a worker, the warm-up, side by side. */
  async function start(bins: { ffmpeg: string; ffprobe: string }, known: string): Promise<FfmpegCheck> {
    useFfmpeg({ ffmpegPath: bins.ffmpeg, ffprobePath: bins.ffprobe })
    const warm = warmFfmpeg(known)
    const check = await checkFfmpeg(undefined, known)
    await warm
    return check
  }

  it('is written by a first start, and a later start reads no list again, its encodes included', async () => {
    const bins = await shims()
    const known = path.join(dir, 'ffmpeg.json')
    const first = await start(bins, known)
    expect(first.ffmpegVersion).toMatch(/^ffmpeg version /)
    expect((await bins.calls()).sort()).toEqual(FULL_CHECK)
    expect(JSON.parse(await readFile(known, 'utf8'))).toMatchObject({
      v: 1,
      ffmpegVersion: first.ffmpegVersion,
    })

    const again = await start(bins, known)
    expect(again.ffmpegVersion).toBe(first.ffmpegVersion)
    expect(again.ffprobeVersion).toBe(first.ffprobeVersion)
    expect((await listEncoders()).has('libx264')).toBe(true)
    expect((await detectCapabilities()).tonemap).toBe((await listFilters()).has('zscale'))
    // Both still started once, to see that they run as recorded; none of the lists is read again.
    expect((await bins.calls()).sort()).toEqual(['ffmpeg -version', 'ffprobe -version'])

    // fluent-ffmpeg checks the output format against ffmpeg's formats before it runs: answered from the record.
    const input = path.join(dir, 'in.mp4')
    execFileSync(realFfmpeg as string, [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=160x120:r=10:d=1'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', input],
    ])
    await runFfmpeg({
      jobId: 'record-test',
      input,
      output: path.join(dir, 'out.mp4'),
      args: ['-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'mp4'],
      durationSec: 1,
    })
    const runs = await bins.calls()
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatch(/^ffmpeg -hide_banner -nostdin -i file:/)
    // A format fluent-ffmpeg does not know is still refused, from the recorded list.
    const refused = await runFfmpeg({
      jobId: 'record-test-2',
      input,
      output: path.join(dir, 'out.x'),
      args: ['-f', 'no_such_muxer'],
      durationSec: 1,
    }).catch((e: unknown) => e)
    expect(String(refused)).toMatch(/no_such_muxer/)
    expect(await bins.calls()).toEqual([])
  })

  it('is not taken for a binary that changed, nor when it is damaged, and is then written again', async () => {
    const bins = await shims()
    const known = path.join(dir, 'ffmpeg.json')
    await start(bins, known)
    await bins.calls()
    const before = JSON.parse(await readFile(known, 'utf8')) as { ffprobe: { mtimeMs: number } }

    // An upgrade: same path, new file time.
    const later = new Date(Date.now() + 60_000)
    await utimes(bins.ffprobe, later, later)
    await start(bins, known)
    expect((await bins.calls()).sort()).toEqual(FULL_CHECK)
    const after = JSON.parse(await readFile(known, 'utf8')) as { ffprobe: { mtimeMs: number } }
    expect(after.ffprobe.mtimeMs).not.toBe(before.ffprobe.mtimeMs)

    const damages: (() => Promise<void>)[] = [
      ...['{"v":1,', JSON.stringify({ ...after, formats: 'all of them' }), ''].map(
        (text) => () => writeFile(known, text),
      ),
      // A FIFO would block a plain read forever; a huge file is not read into memory.
      async () => {
        await rm(known)
        execFileSync('mkfifo', [known])
      },
      async () => {
        await rm(known)
        await writeFile(known, JSON.stringify({ ...after, pad: 'x'.repeat(5 << 20) }))
      },
    ]
    for (const damage of damages) {
      await damage()
      const check = await start(bins, known)
      expect(check.ffprobeVersion).toMatch(/^ffprobe version /)
      expect(await bins.calls()).toHaveLength(4)
      expect(JSON.parse(await readFile(known, 'utf8'))).toMatchObject({ v: 1 })
    }

    // Other binaries (another FFMPEG_PATH, a new setting) are not these: checked, and the record now theirs.
    const check = await start({ ffmpeg: realFfmpeg as string, ffprobe: realFfprobe as string }, known)
    expect(check.ffmpegVersion).toMatch(/^ffmpeg version /)
    expect(JSON.parse(await readFile(known, 'utf8'))).toMatchObject({
      ffmpeg: { path: realpathSync(realFfmpeg as string) },
    })
    expect(await bins.calls()).toEqual([])
  })

  it('a wrapper whose target broke, or another version behind it, is not taken for the recorded one', async () => {
    const bins = await shims()
    const known = path.join(dir, 'ffmpeg.json')
    await start(bins, known)
    await bins.calls()
    // The shim itself is unchanged (same stamp): what it runs is not (a library that no longer loads acts the same).
    await rm(path.join(dir, 'real', 'ffprobe'))
    await symlink('/bin/false', path.join(dir, 'real', 'ffprobe'))
    useFfmpeg({ ffmpegPath: bins.ffmpeg, ffprobePath: bins.ffprobe })
    const err = await checkFfmpeg(undefined, known).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FfmpegMissingError)
    expect((err as Error).message).toContain('ffprobe not usable')

    const other = path.join(dir, 'other-ffprobe')
    await writeFile(other, '#!/bin/sh\necho "ffprobe version 99.0 (a test)"\n', { mode: 0o755 })
    await rm(path.join(dir, 'real', 'ffprobe'))
    await symlink(other, path.join(dir, 'real', 'ffprobe'))
    const check = await start(bins, known)
    expect(check.ffprobeVersion).toBe('ffprobe version 99.0 (a test)')
    expect(await bins.calls()).toEqual(expect.arrayContaining(['ffmpeg -hide_banner -encoders']))
    expect(JSON.parse(await readFile(known, 'utf8'))).toMatchObject({
      ffprobeVersion: 'ffprobe version 99.0 (a test)',
    })
  })

  it('a missing binary is reported as before, whatever the record says', async () => {
    const bins = await shims()
    const known = path.join(dir, 'ffmpeg.json')
    await start(bins, known)
    await rm(bins.ffprobe)
    useFfmpeg({ ffmpegPath: bins.ffmpeg, ffprobePath: bins.ffprobe })
    const err = await checkFfmpeg(undefined, known).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FfmpegMissingError)
    expect((err as Error).message).toContain('ffprobe not usable')
  })
})

describe.runIf(realFfmpeg !== null)('parseEncoders, parseFormats', () => {
  it("give fluent-ffmpeg's own answers for the real binary (its capability check reads them)", async () => {
    const ffmpeg = realFfmpeg as string
    const text = (flag: string): string =>
      execFileSync(ffmpeg, ['-hide_banner', flag], { encoding: 'utf8', maxBuffer: 8 << 20 })
    const theirs = <T>(which: 'availableEncoders' | 'availableFormats'): Promise<T> =>
      new Promise((resolve, reject) => {
        const command = fluentFfmpeg().setFfmpegPath(ffmpeg)
        command[which]((err: Error | null, found: unknown) => (err ? reject(err) : resolve(found as T)))
      })
    const encoders = parseEncoders(text('-encoders'))
    expect(encoders).toEqual(await theirs('availableEncoders'))
    expect(encoders['libx264']).toMatchObject({ type: 'video' })
    const formats = parseFormats(text('-formats'))
    expect(formats).toEqual(await theirs('availableFormats'))
    expect(formats['webm']).toMatchObject({ canMux: true })
  })
})
