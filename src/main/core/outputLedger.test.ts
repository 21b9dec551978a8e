import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { OutputLedger } from './outputLedger'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bullpen-ledger-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('OutputLedger', () => {
  it('returns the earlier result of the same job while its output is unchanged', async () => {
    const ledger = new OutputLedger(join(dir, 'ledger'))
    const out = join(dir, 'clip.mp4')
    await writeFile(out, 'video')
    expect(await ledger.earlier('7', 'k'.repeat(32))).toBeNull()
    await ledger.remember('7', 'k'.repeat(32), { outputPath: out, size: 5 })
    expect(await ledger.earlier('7', 'k'.repeat(32))).toEqual({ outputPath: out, size: 5 })
    // Another job, or the same id for another input, is not the same delivery.
    expect(await ledger.earlier('8', 'k'.repeat(32))).toBeNull()
    expect(await ledger.earlier('7', 'j'.repeat(32))).toBeNull()
    // An output that was changed or removed since does not count.
    await writeFile(out, 'edited video')
    expect(await ledger.earlier('7', 'k'.repeat(32))).toBeNull()
    await rm(out)
    expect(await ledger.earlier('7', 'k'.repeat(32))).toBeNull()
  })

  it('prunes old records', async () => {
    const ledger = new OutputLedger(dir)
    await ledger.remember('1', 'a'.repeat(32), { outputPath: '/x', size: 1 })
    await ledger.remember('2', 'a'.repeat(32), { outputPath: '/y', size: 1 })
    const old = new Date(Date.now() - 30 * 24 * 3600_000)
    await utimes(join(dir, `1-${'a'.repeat(32)}.json`), old, old)
    expect(await ledger.prune()).toBe(1)
    expect(await ledger.prune()).toBe(0)
  })
})
