/**
 * Packaging pieces that can be checked without an Electron binary: the afterPack hook that makes the bundled ffprobe
 * executable by everyone, and that electron-builder's configuration ships both binaries unpacked.
 */
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const root = path.resolve(__dirname, '..', '..')
const afterPack = createRequire(import.meta.url)(path.join(root, 'scripts', 'after-pack.cjs')) as (ctx: {
  appOutDir: string
}) => Promise<void>

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bullpen-pack-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function file(rel: string, mode: number): Promise<string> {
  const p = path.join(dir, rel)
  await mkdir(path.dirname(p), { recursive: true })
  await writeFile(p, 'x')
  await chmod(p, mode)
  return p
}
const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777

describe('scripts/after-pack.cjs', () => {
  it('gives the bundled ffprobe (as its postinstall leaves it: u+x) mode 755, and nothing else', async () => {
    const unpacked = 'resources/app.asar.unpacked/node_modules'
    const probe = await file(`${unpacked}/@ffprobe-installer/linux-x64/ffprobe`, 0o744)
    const winProbe = await file(`${unpacked}/@ffprobe-installer/win32-x64/ffprobe.exe`, 0o644)
    const readme = await file(`${unpacked}/@ffprobe-installer/linux-x64/README.md`, 0o644)
    const other = await file(`${unpacked}/something/ffprobe`, 0o700)
    await afterPack({ appOutDir: dir })
    expect(await modeOf(probe)).toBe(0o755)
    expect(await modeOf(winProbe)).toBe(0o755)
    expect(await modeOf(readme)).toBe(0o644)
    expect(await modeOf(other)).toBe(0o700)
  })
})

describe('electron-builder.yml', () => {
  it('ships ffmpeg-static and the bundled ffprobe unpacked, and runs the afterPack hook', () => {
    const yml = readFileSync(path.join(root, 'electron-builder.yml'), 'utf8')
    const unpack = /^asarUnpack:\n((?: {2}- .+\n)+)/m.exec(yml)?.[1] ?? ''
    expect(unpack).toContain('- node_modules/ffmpeg-static/**')
    expect(unpack).toContain('- node_modules/@ffprobe-installer/**')
    expect(yml).toMatch(/^afterPack: scripts\/after-pack\.cjs$/m)
  })
})
