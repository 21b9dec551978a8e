/**
 * Bench inputs, made from the shared sample media with ffmpeg into bench/tmp/media (git-ignored) and kept between
 * runs: real clips lengthened with `-stream_loop` (stream copy, so they stay the real encodes), tiny clips from
 * lavfi, and many hard links for the queueing figures.
 */
import { existsSync } from 'node:fs'
import { link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ff, mediaDir, tmpRoot } from './env'
import { runOk } from './proc'

export const mediaOut = join(tmpRoot, 'media')

/** Real sample clips the batches are cut from (see /work/shared/media/README.md). */
export const REAL_SOURCES = [
  'real-360p-17s.mp4', // H.264 640x360 30 fps + AAC
  'video-only.mp4', // H.264 1280x720 25 fps, no audio
  'phone-rotated-vfr-noaudio.mp4', // phone recording, rotated, VFR
] as const

async function makeOnce(out: string, args: string[]): Promise<string> {
  if (existsSync(out)) return out
  await mkdir(join(out, '..'), { recursive: true })
  const part = `${out}.part${out.slice(out.lastIndexOf('.'))}`
  await runOk(ff.ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', ...args, '-y', part])
  await rename(part, out)
  return out
}

/** A real clip `secs` long: `source` looped (stream copy) and cut. */
export function realClip(source: string, secs: number): Promise<string> {
  const base = source.replace(/\.[^.]+$/, '')
  return makeOnce(join(mediaOut, `${base}-${secs}s.mp4`), [
    '-stream_loop',
    '-1',
    '-i',
    join(mediaDir, source),
    '-t',
    String(secs),
    '-map',
    '0',
    '-c',
    'copy',
    '-movflags',
    '+faststart',
  ])
}

/**
 * `n` inputs of `secs` each, cycling through {@link REAL_SOURCES}; each is its own hard link (its own file name),
 * in a fresh folder per call so outputs never collide.
 */
export async function realBatch(dir: string, n: number, secs: number): Promise<string[]> {
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const src = await realClip(REAL_SOURCES[i % REAL_SOURCES.length] as string, secs)
    const dst = join(dir, `clip${String(i).padStart(2, '0')}.mp4`)
    await link(src, dst)
    out.push(dst)
  }
  return out
}

/** The audio of the 360p sample, `secs` long (AAC, stream copy): a job whose encode costs no CPU. */
export function audioClip(secs: number): Promise<string> {
  return makeOnce(join(mediaOut, `aac-${secs}s.m4a`), [
    '-stream_loop',
    '-1',
    '-i',
    join(mediaDir, 'real-360p-17s.mp4'),
    '-t',
    String(secs),
    '-map',
    '0:a',
    '-c',
    'copy',
  ])
}

/** A tiny clip (160x120, 0.5 s, H.264 + AAC) from lavfi: short jobs for the soak. */
export function tinyClip(): Promise<string> {
  return makeOnce(join(mediaOut, 'tiny-160x120-0.5s.mp4'), [
    '-f',
    'lavfi',
    '-i',
    'testsrc2=s=160x120:r=30:d=0.5',
    '-f',
    'lavfi',
    '-i',
    'sine=d=0.5',
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'aac',
    '-shortest',
  ])
}

/** A large real input (~`mb` MB) for the remote-input figure: the 360p sample looped, stream copy. */
export async function bigClip(mb: number): Promise<string> {
  const src = join(mediaDir, 'real-360p-17s.mp4')
  const { size } = await stat(src)
  const secs = Math.ceil(((mb * 1e6) / size) * 17.06)
  return makeOnce(join(mediaOut, `big-${mb}MB.mp4`), [
    '-stream_loop',
    '-1',
    '-i',
    src,
    '-t',
    String(secs),
    '-map',
    '0',
    '-c',
    'copy',
  ])
}

/** `n` hard links to `sources` (cycled) in a fresh `dir`: many distinct small files that cost no disk. */
export async function links(dir: string, sources: readonly string[], n: number): Promise<string[]> {
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const src = sources[i % sources.length] as string
    const ext = src.slice(src.lastIndexOf('.'))
    const dst = join(dir, `f${String(i).padStart(5, '0')}${ext}`)
    await link(src, dst)
    out.push(dst)
  }
  return out
}

/** Copies of the small shared samples in bench/tmp/media (hard links cannot cross into the read-only share). */
export async function smallSamples(): Promise<string[]> {
  const names = ['odd-161x121.webm', 'video-only.mp4', 'subtitles-srt.mkv', 'real-360p-17s.mp4']
  const out: string[] = []
  for (const n of names) {
    const dst = join(mediaOut, `sample-${n}`)
    if (!existsSync(dst)) {
      await mkdir(mediaOut, { recursive: true })
      await runOk('cp', [join(mediaDir, n), dst])
    }
    out.push(dst)
  }
  return out
}

/** Empties and recreates a folder under bench/tmp. */
export async function freshDir(...parts: string[]): Promise<string> {
  const dir = join(tmpRoot, ...parts)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  return dir
}

/** Files in a folder (names only). */
export async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !n.startsWith('.'))
}
