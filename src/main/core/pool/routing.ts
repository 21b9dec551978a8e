/**
 * Which Bull queue a job goes to and which queues a node works on.
 *
 * Bull 4 gives a queue one processor, and a worker takes whatever job is next: it cannot skip jobs it should not run
 * (a named processor that does not match fails the job). So routing is done with queues, decided when a job is
 * queued, instead of a check-and-hand-back that would make nodes bounce jobs between each other:
 *
 * - `<base>` (e.g. `transcode`): the pool. Every node in `pool` mode works on it.
 * - `<base>-own-<nodeId>`: the jobs of a node in "my jobs only" (`own`) mode. Only that node works on it. A node in
 *   `pool` mode works on its own queue too, so jobs queued while it was in `own` mode are not stranded.
 * - `<base>-need-<encoder>[+<encoder>…]`: jobs that need an encoder outside the {@link BASELINE_ENCODERS} every
 *   Bullpen node has (e.g. `libx265`, `h264_nvenc`). A `pool` node works on each such queue whose encoders it has.
 *
 * One node-wide {@link SlotGate} keeps the node's concurrency across its queues: a queue's processor that finds no
 * free slot hands its job back at once (no attempt counted) for another node.
 */

/** Encoders every node is expected to have (those of the built-in formats in a standard ffmpeg build). */
export const BASELINE_ENCODERS: ReadonlySet<string> = new Set([
  'libx264',
  'aac',
  'libvpx-vp9',
  'libopus',
  'gif',
  'libmp3lame',
  'mov_text',
  'webvtt',
  'subrip',
  'ass',
  'copy',
])

const ENCODER = /^[A-Za-z0-9_.-]{1,64}$/

export interface RoutingNode {
  nodeId: string
  mode: 'pool' | 'own'
  encoders: readonly string[]
}

/** The private queue of a node in "my jobs only" mode. */
export function ownQueueName(base: string, nodeId: string): string {
  return `${base}-own-${nodeId}`
}

/** The queue of jobs needing these (non-baseline) encoders. */
export function capabilityQueueName(base: string, encoders: readonly string[]): string {
  const list = [...new Set(encoders)].filter((e) => ENCODER.test(e)).sort()
  if (list.length === 0) return base
  return `${base}-need-${list.join('+')}`
}

/** The encoders of `required` that not every node has. */
export function extraEncoders(required: readonly string[]): string[] {
  return [...new Set(required)].filter((e) => !BASELINE_ENCODERS.has(e)).sort()
}

/**
 * Where a job queued by `origin` goes: its private queue in `own` mode; else the pool, or the capability queue
 * when it needs an encoder outside the baseline.
 */
export function enqueueTarget(
  base: string,
  origin: RoutingNode,
  requiredEncoders: readonly string[] = [],
): string {
  if (origin.mode === 'own') return ownQueueName(base, origin.nodeId)
  return capabilityQueueName(base, extraEncoders(requiredEncoders))
}

/**
 * The queues a node works on. `capabilityQueues` are the capability queue names known to exist (e.g. from a
 * registry of classes in use); the node takes those whose every encoder it has.
 */
export function queuesToProcess(
  base: string,
  node: RoutingNode,
  capabilityQueues: readonly string[] = [],
): string[] {
  const own = ownQueueName(base, node.nodeId)
  if (node.mode === 'own') return [own]
  const mine = new Set(node.encoders)
  const prefix = `${base}-need-`
  const caps = capabilityQueues.filter((q) => {
    if (!q.startsWith(prefix)) return false
    const needed = q.slice(prefix.length).split('+')
    return needed.length > 0 && needed.every((e) => ENCODER.test(e) && mine.has(e))
  })
  return [base, own, ...[...new Set(caps)].sort()]
}

/** A node-wide limit on jobs running at once, shared by the processors of several queues. */
export class SlotGate {
  private used = 0

  constructor(private limit: number) {}

  /** Takes a slot; returns its release function, or null when every slot is taken. */
  tryAcquire(): (() => void) | null {
    if (this.used >= this.limit) return null
    this.used++
    let released = false
    return () => {
      if (released) return
      released = true
      this.used--
    }
  }

  get inUse(): number {
    return this.used
  }

  setLimit(limit: number): void {
    this.limit = Math.max(1, limit)
  }
}
