/**
 * A small typed event bus (a Node EventEmitter underneath) and the queue events Bullpen publishes on it. The
 * queue maps Bull's GLOBAL events onto it, so every node sees every job, whichever node runs it.
 */
import { EventEmitter } from 'node:events'
import { z } from 'zod'
import type { JobProgress } from '../../shared/api'
import type { ConnectionState } from './redis'

/** Typed event bus: `on` returns the unsubscribe function. A throwing listener never breaks the others. */
export class EventBus<Events extends object> {
  private readonly emitter = new EventEmitter()

  constructor(private readonly onListenerError?: (err: unknown, event: string) => void) {
    // Many windows, tray, bridge clients… listen at once; this is not a leak.
    this.emitter.setMaxListeners(0)
  }

  /** Subscribes; returns a function that unsubscribes. */
  on<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): () => void {
    const wrapped = (payload: Events[K]): void => {
      try {
        listener(payload)
      } catch (err) {
        this.onListenerError?.(err, event)
      }
    }
    this.emitter.on(event, wrapped)
    return () => {
      this.emitter.off(event, wrapped)
    }
  }

  /** Subscribes for one event; returns a function that unsubscribes. */
  once<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): () => void {
    const off = this.on(event, (p) => {
      off()
      listener(p)
    })
    return off
  }

  /** Resolves with the next payload of `event` that passes `filter`. */
  next<K extends keyof Events & string>(
    event: K,
    filter: (payload: Events[K]) => boolean = () => true,
  ): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (p) => {
        if (!filter(p)) return
        off()
        resolve(p)
      })
    })
  }

  emit<K extends keyof Events & string>(event: K, payload: Events[K]): void {
    this.emitter.emit(event, payload)
  }

  listenerCount<K extends keyof Events & string>(event: K): number {
    return this.emitter.listenerCount(event)
  }

  removeAllListeners(): void {
    this.emitter.removeAllListeners()
  }
}

/** Stages a job goes through, as reported in its progress (the contract's `JobProgress['stage']`). */
export const JOB_STAGES = [
  'probe',
  'download',
  'encode',
  'verify',
  'upload',
] as const satisfies readonly JobProgress['stage'][]

const metric = z.number().min(0).max(1e9).nullable().optional()

/**
 * Progress of a running job, as the processor reports it with `job.progress(obj)` (throttled to ≤ 4/s).
 * Read back from Redis, so it is validated; missing numbers become null (`percent` null = duration unknown).
 */
export const JobProgressSchema = z.object({
  stage: z.enum(JOB_STAGES),
  percent: z.number().min(0).max(100).nullable().optional(),
  fps: metric,
  speed: metric,
  etaSec: metric,
})

export type { JobProgress }

/** A progress value from Redis as a {@link JobProgress}, or null when it is not one (a bare number counts). */
export function toJobProgress(value: unknown): JobProgress | null {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return {
      stage: 'encode',
      percent: Math.min(100, Math.max(0, value)),
      fps: null,
      speed: null,
      etaSec: null,
    }
  }
  const r = JobProgressSchema.safeParse(value)
  if (!r.success) return null
  const p = r.data
  return {
    stage: p.stage,
    percent: p.percent ?? null,
    fps: p.fps ?? null,
    speed: p.speed ?? null,
    etaSec: p.etaSec ?? null,
  }
}

/** Events of the transcode queue, seen by every node. */
export interface QueueEvents {
  /** A job was added, or went back to waiting (retry, hand-back). */
  waiting: { jobId: string }
  /** A node took the job. */
  active: { jobId: string; node: string }
  progress: { jobId: string; progress: JobProgress }
  completed: { jobId: string; result: unknown }
  /** Final failure (no retries left, discarded, cancelled: reason `cancelled`). */
  failed: { jobId: string; reason: string }
  /** An attempt failed and the job will be tried again after its backoff. */
  retrying: { jobId: string; reason: string }
  /** Removed by a person (or cancelled while not running). */
  removed: { jobId: string }
  /** Its worker stopped renewing the lock; Bull put it back to waiting. */
  stalled: { jobId: string }
  /** The whole pool was paused / resumed. */
  paused: Record<string, never>
  resumed: Record<string, never>
  /** A cancel was requested for a running job. */
  'cancel-requested': { jobId: string }
  /** State of this process's Redis connection. */
  connection: { state: ConnectionState; url: string }
}

/** The bus type the queue emits on. */
export type QueueEventBus = EventBus<QueueEvents>
