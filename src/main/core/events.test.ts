import { describe, expect, it } from 'vitest'
import { EventBus, toJobProgress } from './events'

interface E {
  tick: { n: number }
  other: { s: string }
}

describe('EventBus', () => {
  it('delivers typed payloads; on() returns an unsubscribe function', () => {
    const bus = new EventBus<E>()
    const seen: number[] = []
    const off = bus.on('tick', ({ n }) => seen.push(n))
    bus.emit('tick', { n: 1 })
    off()
    bus.emit('tick', { n: 2 })
    expect(seen).toEqual([1])
    expect(bus.listenerCount('tick')).toBe(0)
  })

  it('once() fires once; next() resolves with the first payload that passes the filter', async () => {
    const bus = new EventBus<E>()
    const seen: number[] = []
    bus.once('tick', ({ n }) => seen.push(n))
    const p = bus.next('tick', ({ n }) => n > 1)
    bus.emit('tick', { n: 1 })
    bus.emit('tick', { n: 2 })
    bus.emit('tick', { n: 3 })
    expect(seen).toEqual([1])
    expect(await p).toEqual({ n: 2 })
    expect(bus.listenerCount('tick')).toBe(0)
  })

  it('a throwing listener does not stop the others and is reported', () => {
    const errors: string[] = []
    const bus = new EventBus<E>((err, ev) => errors.push(`${ev}: ${String(err)}`))
    const seen: string[] = []
    bus.on('other', () => {
      throw new Error('bad listener')
    })
    bus.on('other', ({ s }) => seen.push(s))
    bus.emit('other', { s: 'x' })
    expect(seen).toEqual(['x'])
    expect(errors).toEqual(['other: Error: bad listener'])
  })
})

describe('toJobProgress', () => {
  it('accepts the processor object and bare numbers, refuses anything else', () => {
    const p = { percent: 42.5, fps: 30, speed: 1.2, etaSec: 7, stage: 'encode' }
    expect(toJobProgress(p)).toEqual(p)
    expect(toJobProgress({ stage: 'probe' })).toEqual({
      stage: 'probe',
      percent: null,
      fps: null,
      speed: null,
      etaSec: null,
    })
    expect(
      toJobProgress({ stage: 'encode', percent: null, fps: 25, speed: null, etaSec: null }),
    ).toMatchObject({
      percent: null,
      fps: 25,
    })
    expect(toJobProgress(0)).toMatchObject({ percent: 0 })
    expect(toJobProgress(150)).toMatchObject({ percent: 100 })
    expect(toJobProgress({ stage: 'encode', percent: 'lots' })).toBeNull()
    expect(toJobProgress({ stage: 'encode', percent: 200 })).toBeNull()
    expect(toJobProgress({ stage: 'rm -rf', percent: 2 })).toBeNull()
    expect(toJobProgress(null)).toBeNull()
    expect(toJobProgress('50')).toBeNull()
  })
})
