/**
 * The listeners of the core's events on one side of a bridge (the Electron preload, the browser's web bridge):
 * `on` returns the unsubscribe function, `emit` calls every listener of an event — one that throws never stops the
 * others.
 */
import type { AppEventName, AppEvents, Subscribe } from './api'

export interface EventListeners {
  on: Subscribe
  emit<E extends AppEventName>(event: E, payload: AppEvents[E]): void
  /** Listeners over all events. */
  count(): number
}

export function createEventListeners(
  hooks: {
    /** A listener threw. */
    onError?: (event: AppEventName, err: unknown) => void
    /** The number of listeners changed (e.g. to attach a transport only while anyone listens). */
    onCountChange?: (count: number) => void
  } = {},
): EventListeners {
  const listeners = new Map<AppEventName, Set<(payload: never) => void>>()
  let total = 0
  return {
    on(event, listener) {
      let set = listeners.get(event)
      if (!set) {
        set = new Set()
        listeners.set(event, set)
      }
      const fn = listener as (payload: never) => void
      if (!set.has(fn)) {
        set.add(fn)
        hooks.onCountChange?.(++total)
      }
      return () => {
        if (set.delete(fn)) hooks.onCountChange?.(--total)
      }
    },
    emit(event, payload) {
      for (const fn of [...(listeners.get(event) ?? [])]) {
        try {
          ;(fn as (p: typeof payload) => void)(payload)
        } catch (err) {
          hooks.onError?.(event, err)
        }
      }
    },
    count: () => total,
  }
}
