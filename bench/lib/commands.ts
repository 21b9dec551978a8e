/**
 * The ffmpeg command lines of the "direct" side: built with Bullpen's own `buildFfmpegArgs` from its own probe, so
 * they are the very same argv Bullpen's worker runs — and checked against the command lines Bullpen logs (`-v`).
 */
import { basename, join, resolve } from 'node:path'
import { presetSpec, type PresetName } from '../../src/shared/spec'
import { buildFfmpegArgs } from '../../src/main/core/ffmpeg/args'
import { detectCapabilities } from '../../src/main/core/ffmpeg/locate'
import { probeInput } from '../../src/main/core/ffmpeg/probe'
import { ff } from './env'
import { run, type RunResult } from './proc'

export interface Encode {
  input: string
  preset: PresetName
  /** ffmpeg argv without the output path (it is the last element, added per run). */
  argv: string[]
  extension: string
}

/** The encode Bullpen would run for `input` with `preset`. */
export async function encodeFor(input: string, preset: PresetName): Promise<Encode> {
  const abs = resolve(input)
  const info = await probeInput(abs)
  const plan = buildFfmpegArgs(presetSpec(preset), info, await detectCapabilities())
  // Exactly as src/main/core/ffmpeg/run.ts has fluent-ffmpeg spawn it (input options, input, output options, -y).
  const argv = [ff.ffmpeg, '-hide_banner', '-nostdin', '-i', `file:${abs}`, ...plan.args, '-y']
  return { input: abs, preset, argv, extension: plan.extension }
}

/** Runs one encode directly into `outDir`; throws when ffmpeg fails. */
export async function runEncode(e: Encode, outDir: string): Promise<RunResult> {
  const out = join(outDir, `${basename(e.input).replace(/\.[^.]+$/, '')}.${e.preset}.${e.extension}`)
  const [cmd, ...args] = e.argv
  const r = await run(cmd as string, [...args, `file:${out}`])
  if (r.code !== 0)
    throw new Error(`ffmpeg failed on ${e.input}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`)
  return r
}

/** Same quoting as run.ts's log line, so logged and expected command lines compare as strings. */
function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`
}

const OUT_RE = / file:\S+$| 'file:[^']*'$/

/** The command lines Bullpen logged (`ffmpeg started`, from a `-v` run), output path masked. */
export function loggedCommands(stderr: string): string[] {
  const out: string[] = []
  for (const line of stderr.split('\n')) {
    if (!line.includes('"ffmpeg started"')) continue
    try {
      const j = JSON.parse(line) as { cmd?: string }
      if (j.cmd) out.push(j.cmd.replace(OUT_RE, ' file:OUT'))
    } catch {
      // not a log line
    }
  }
  return out.sort()
}

/** The command lines we run directly, quoted and masked the same way. */
export function expectedCommands(encodes: readonly Encode[]): string[] {
  return encodes.map((e) => [...e.argv.map(shellQuote), 'file:OUT'].join(' ')).sort()
}

/** Compares logged and expected command lines; returns a mismatch description or null. */
export function compareCommands(stderr: string, encodes: readonly Encode[]): string | null {
  const got = loggedCommands(stderr)
  const want = expectedCommands(encodes)
  if (got.length !== want.length) return `Bullpen ran ${got.length} ffmpeg commands, expected ${want.length}`
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) return `command lines differ:\n  bullpen: ${got[i]}\n  direct:  ${want[i]}`
  }
  return null
}
