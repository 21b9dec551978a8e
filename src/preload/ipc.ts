/**
 * The only module of the preload that touches `ipcRenderer` (CONVENTIONS 3): invoke a channel and unwrap its
 * outcome; listen to the event channel with an unsubscribe.
 */
import { ipcRenderer, type IpcRendererEvent } from 'electron'
import { EVENT_CHANNEL, type IpcOutcome } from './channels'

/** Calls a main-process handler; rejects with the main side's own error message. */
export async function invoke(channel: string, args: unknown[]): Promise<unknown> {
  const outcome = (await ipcRenderer.invoke(channel, ...args)) as IpcOutcome
  if (outcome.ok) return outcome.value
  const err = new Error(outcome.error.message)
  err.name = outcome.error.name
  throw err
}

/** Listens to every event main pushes; returns the unsubscribe function. */
export function onEvent(listener: (name: string, payload: unknown) => void): () => void {
  const handler = (_e: IpcRendererEvent, name: unknown, payload: unknown): void => {
    if (typeof name === 'string') listener(name, payload)
  }
  ipcRenderer.on(EVENT_CHANNEL, handler)
  return () => {
    ipcRenderer.removeListener(EVENT_CHANNEL, handler)
  }
}
