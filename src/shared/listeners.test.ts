import { describe, expect, it } from 'vitest'
import { createEventListeners } from './listeners'

describe('createEventListeners', () => {
  it('calls the listeners of an event, unsubscribes, and survives a throwing one', () => {
    const counts: number[] = []
    const errors: string[] = []
    const l = createEventListeners({ onCountChange: (n) => counts.push(n), onError: (e) => errors.push(e) })
    const got: string[] = []
    const off = l.on('job:removed', ({ id }) => got.push(`a${id}`))
    l.on('job:removed', () => {
      throw new Error('boom')
    })
    l.on('job:removed', ({ id }) => got.push(`c${id}`))
    l.emit('job:removed', { id: '1' })
    off()
    off()
    l.emit('job:removed', { id: '2' })
    l.emit('stats', {
      waiting: 0,
      active: 0,
      completed: 0,
      failed: 0,
      delayed: 0,
      paused: 0,
      poolPaused: false,
      localPaused: false,
    })
    expect(got).toEqual(['a1', 'c1', 'c2'])
    expect(errors).toEqual(['job:removed', 'job:removed'])
    expect(counts).toEqual([1, 2, 3, 2])
    expect(l.count()).toBe(2)
  })
})
