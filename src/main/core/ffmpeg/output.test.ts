import { statSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { removeStaleTemps } from '../pool/fileService'
import { commitOutput, isTempOf, planOutput, tempPathFor } from './output'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bullpen-output-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const p = (name: string): string => path.join(dir, name)

function separateShm(): boolean {
  try {
    return statSync('/dev/shm').dev !== statSync(tmpdir()).dev
  } catch {
    return false
  }
}

describe('planOutput', () => {
  it('uses the input name with the new extension', async () => {
    expect(await planOutput('/somewhere/clip.mov', dir, 'mp4')).toBe(p('clip.mp4'))
    expect(await planOutput('/somewhere/my.holiday.video.mkv', dir, '.webm')).toBe(p('my.holiday.video.webm'))
  })

  it('numbers the name when it exists', async () => {
    await writeFile(p('clip.mp4'), 'a')
    expect(await planOutput('/x/clip.mov', dir, 'mp4')).toBe(p('clip (1).mp4'))
    await writeFile(p('clip (1).mp4'), 'b')
    expect(await planOutput('/x/clip.mov', dir, 'mp4')).toBe(p('clip (2).mp4'))
  })

  it('never plans the input itself (mp4 → mp4 in the same folder)', async () => {
    const input = p('clip.mp4')
    await writeFile(input, 'input')
    expect(await planOutput(input, dir, 'mp4')).toBe(p('clip (1).mp4'))
  })

  it('treats a dangling symlink as taken', async () => {
    const { symlink } = await import('node:fs/promises')
    await symlink(p('nowhere'), p('clip.mp4'))
    expect(await planOutput('/x/clip.mov', dir, 'mp4')).toBe(p('clip (1).mp4'))
  })
})

describe('tempPathFor', () => {
  it('is hidden, beside the destination, keeps the extension, and is safe for any job id', () => {
    expect(tempPathFor(p('clip.mp4'), '42')).toBe(p('.clip.bullpen-42.part.mp4'))
    const t = tempPathFor(p('clip (1).webm'), '../../etc/x')
    expect(path.dirname(t)).toBe(dir)
    expect(path.basename(t)).toBe('.clip (1).bullpen-______etc_x.part.webm')
  })
})

describe('the temp files of a job (isTempOf, removeStaleTemps)', () => {
  it("are this input's and this job's only: others' files, and the input itself, are left alone", async () => {
    const input = p('clip.mp4')
    const mine = [
      path.basename(tempPathFor(p('clip.webm'), '49')),
      path.basename(tempPathFor(p('clip (2).webm'), '49')),
      '.clip.bullpen-49.part-0123456789abcdef-1000.webm', // an upload partial
    ]
    const others = [
      '.other.bullpen-49.part.mp4', // another input's job with the same id, in another queue or Redis database
      '.clip.bullpen-491.part.webm', // another job
      '.clip.bullpen-49.part.webm.txt',
      'clip.bullpen-49.part.webm', // not hidden: not a temp file of ours
      'clip.mp4',
    ]
    for (const name of [...mine, ...others]) await writeFile(p(name), name)
    expect(mine.every((n) => isTempOf(n, input, '49'))).toBe(true)
    expect(others.filter((n) => isTempOf(n, input, '49'))).toEqual([])
    expect(await removeStaleTemps(dir, '49', input)).toBe(3)
    expect((await readdir(dir)).sort()).toEqual([...others].sort())
    // An input named like a temp file of its own job is no temp file (a sweep deleted it, and files beside it).
    const odd = p('.x.bullpen-7.part.webm')
    await writeFile(odd, 'input')
    await writeFile(p('.y.bullpen-7.part.mp4'), 'another')
    expect(await removeStaleTemps(dir, '7', odd)).toBe(0)
    expect(await readFile(odd, 'utf8')).toBe('input')
  })

  it("fit in a file name however long the output name is, and are still known as the job's", () => {
    const stem = 'é'.repeat(125) // 250 bytes
    const temp = path.basename(tempPathFor(p(`${stem} (3).mkv`), '12345'))
    expect(Buffer.byteLength(temp)).toBeLessThanOrEqual(255 - 34) // room left for an upload partial's suffix
    expect(temp).toMatch(/^\.é+\.bullpen-12345\.part\.mkv$/)
    expect(isTempOf(temp, p(`${stem}.mp4`), '12345')).toBe(true)
    expect(isTempOf(temp, p(`${'e'.repeat(250)}.mp4`), '12345')).toBe(false)
  })
})

describe('commitOutput', () => {
  it('moves the temp file to the destination', async () => {
    const temp = tempPathFor(p('clip.mp4'), '1')
    await writeFile(temp, 'new')
    expect(await commitOutput(temp, p('clip.mp4'))).toBe(p('clip.mp4'))
    expect(await readFile(p('clip.mp4'), 'utf8')).toBe('new')
    expect(await readdir(dir)).toEqual(['clip.mp4'])
  })

  it('never overwrites: an existing destination stays byte-identical and the output takes the next name', async () => {
    await writeFile(p('clip.mp4'), 'original')
    await writeFile(p('clip (1).mp4'), 'first copy')
    const temp = tempPathFor(p('clip.mp4'), '2')
    await writeFile(temp, 'new')
    expect(await commitOutput(temp, p('clip.mp4'))).toBe(p('clip (2).mp4'))
    expect(await readFile(p('clip.mp4'), 'utf8')).toBe('original')
    expect(await readFile(p('clip (1).mp4'), 'utf8')).toBe('first copy')
    expect(await readFile(p('clip (2).mp4'), 'utf8')).toBe('new')
    expect((await readdir(dir)).sort()).toEqual(['clip (1).mp4', 'clip (2).mp4', 'clip.mp4'])
  })

  it('continues the numbering of a numbered destination', async () => {
    await writeFile(p('clip (3).mp4'), 'x')
    const temp = tempPathFor(p('clip (3).mp4'), '3')
    await writeFile(temp, 'new')
    expect(await commitOutput(temp, p('clip (3).mp4'))).toBe(p('clip (4).mp4'))
  })

  it('race: many jobs planned the same name; each lands on its own, nothing is lost or overwritten', async () => {
    const dest = await planOutput('/x/clip.mov', dir, 'mp4')
    await writeFile(p('clip.mp4'), 'someone else got there first')
    const temps = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const t = tempPathFor(dest, `job${i}`)
        await writeFile(t, `output ${i}`)
        return t
      }),
    )
    const finals = await Promise.all(temps.map((t) => commitOutput(t, dest)))
    expect(new Set(finals).size).toBe(12)
    expect(finals).not.toContain(p('clip.mp4'))
    expect(await readFile(p('clip.mp4'), 'utf8')).toBe('someone else got there first')
    const contents = await Promise.all(finals.map((f) => readFile(f, 'utf8')))
    expect(contents.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `output ${i}`).sort())
    // Every temp file is gone.
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([])
  })

  // A temp file on another file system makes link() fail with EXDEV: the copy fallback, as on file systems
  // without hard links (FAT, some network shares). Runs where /dev/shm is a separate file system.
  it.runIf(separateShm())('falls back to an exclusive copy where link() is impossible', async () => {
    const other = await mkdtemp('/dev/shm/bullpen-output-')
    try {
      const temp = path.join(other, '.clip.bullpen-9.part.mp4')
      await writeFile(temp, 'copied')
      await writeFile(p('clip.mp4'), 'original')
      expect(await commitOutput(temp, p('clip.mp4'))).toBe(p('clip (1).mp4'))
      expect(await readFile(p('clip (1).mp4'), 'utf8')).toBe('copied')
      expect(await readFile(p('clip.mp4'), 'utf8')).toBe('original')
      expect(await readdir(other)).toEqual([])
    } finally {
      await rm(other, { recursive: true, force: true })
    }
  })

  it('fails clearly when the temp file is missing', async () => {
    await expect(commitOutput(p('.gone.part.mp4'), p('clip.mp4'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readdir(dir)).toEqual([])
  })
})
