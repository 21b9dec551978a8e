import { describe, expect, it } from 'vitest'
import { formatBytes, formatEta, parseDuration, table } from './format'

describe('parseDuration', () => {
  it('reads the units people type', () => {
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('30m')).toBe(1_800_000)
    expect(parseDuration('24h')).toBe(86_400_000)
    expect(parseDuration('7d')).toBe(604_800_000)
    expect(parseDuration('1.5h')).toBe(5_400_000)
    expect(parseDuration('250')).toBe(250)
  })
  it('refuses what it cannot read', () => {
    expect(parseDuration('')).toBeUndefined()
    expect(parseDuration('soon')).toBeUndefined()
    expect(parseDuration('-5m')).toBeUndefined()
    expect(parseDuration('5y')).toBeUndefined()
  })
})

describe('formatEta', () => {
  it('formats seconds as clock time', () => {
    expect(formatEta(0)).toBe('0:00')
    expect(formatEta(75)).toBe('1:15')
    expect(formatEta(3725)).toBe('1:02:05')
  })
  it('shows unknown as dashes', () => {
    expect(formatEta(null)).toBe('--:--')
    expect(formatEta(Number.NaN)).toBe('--:--')
    expect(formatEta(-1)).toBe('--:--')
  })
})

describe('formatBytes', () => {
  it('scales', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(200 * 1024 * 1024)).toBe('200 MiB')
  })
})

describe('table', () => {
  it('aligns columns and trims the last', () => {
    expect(
      table([
        ['id', 'state', 'name'],
        ['12', 'waiting', 'a.mp4'],
      ]),
    ).toBe('id  state    name\n12  waiting  a.mp4')
  })
})
