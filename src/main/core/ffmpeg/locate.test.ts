import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FfmpegMissingError } from '../errors'
import {
  checkFfmpeg,
  findFfmpeg,
  findOnPath,
  listEncoders,
  unpackedAsarPath,
  useFfmpeg,
  warmFfmpeg,
} from './locate'

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

  it('falls back to PATH (the ffmpeg-static binary is not installed here)', () => {
    const p = findFfmpeg()
    expect(p.source.ffmpeg).toMatch(/^(ffmpeg-static|path)$/)
    if (p.source.ffmpeg === 'path') expect(p.ffmpeg).toBe(realFfmpeg)
  })

  it('reports not-found with an empty PATH', () => {
    process.env['PATH'] = dir
    const p = findFfmpeg()
    if (p.source.ffmpeg !== 'ffmpeg-static')
      expect(p.source).toMatchObject({ ffmpeg: 'not-found', ffprobe: 'not-found' })
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
