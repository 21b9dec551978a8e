import { describe, expect, it } from 'vitest'
import {
  SlotGate,
  capabilityQueueName,
  enqueueTarget,
  extraEncoders,
  ownQueueName,
  queuesToProcess,
} from './routing'

describe('routing', () => {
  const poolNode = { nodeId: 'a-1', mode: 'pool' as const, encoders: ['libx264', 'aac', 'libx265'] }
  const ownNode = { nodeId: 'b-2', mode: 'own' as const, encoders: ['libx264', 'aac', 'libx265'] }

  it('sends jobs of a "my jobs only" node to its own queue, others to the pool or a capability queue', () => {
    expect(enqueueTarget('transcode', ownNode, ['libx264', 'aac'])).toBe('transcode-own-b-2')
    expect(enqueueTarget('transcode', ownNode, ['libx265'])).toBe('transcode-own-b-2')
    expect(enqueueTarget('transcode', poolNode, ['libx264', 'aac'])).toBe('transcode')
    expect(enqueueTarget('transcode', poolNode, ['libx265', 'aac', 'h264_nvenc'])).toBe(
      'transcode-need-h264_nvenc+libx265',
    )
    expect(extraEncoders(['aac', 'libx264', 'gif'])).toEqual([])
    expect(capabilityQueueName('t', [])).toBe('t')
  })

  it('lets a node work only on the queues it may', () => {
    const caps = ['transcode-need-libx265', 'transcode-need-h264_nvenc+libx265', 'other-need-libx265']
    expect(queuesToProcess('transcode', ownNode, caps)).toEqual(['transcode-own-b-2'])
    expect(queuesToProcess('transcode', poolNode, caps)).toEqual([
      'transcode',
      ownQueueName('transcode', 'a-1'),
      'transcode-need-libx265',
    ])
    expect(
      queuesToProcess('transcode', { ...poolNode, encoders: ['libx265', 'h264_nvenc'] }, caps),
    ).toContain('transcode-need-h264_nvenc+libx265')
  })

  it('keeps one node-wide concurrency across queues', () => {
    const gate = new SlotGate(2)
    const a = gate.tryAcquire()
    const b = gate.tryAcquire()
    expect(a).not.toBeNull()
    expect(b).not.toBeNull()
    expect(gate.tryAcquire()).toBeNull()
    a?.()
    a?.() // releasing twice frees one slot only
    expect(gate.inUse).toBe(1)
    expect(gate.tryAcquire()).not.toBeNull()
    expect(gate.tryAcquire()).toBeNull()
  })
})
