/**
 * IPC channel names shared by src/main/ipc.ts and src/preload/ipc.ts (pure constants, no imports, so the sandboxed
 * preload bundle stays small). One channel per AppApi method, one for every pushed event.
 */
import type { AppMethodName } from '../shared/api'

/** Channel of an AppApi method. */
export function methodChannel(method: AppMethodName): string {
  return `bullpen:${method}`
}

/** Every core event, as `(name, payload)`. */
export const EVENT_CHANNEL = 'bullpen:event'
/** The native "Add files…" dialog. */
export const PICK_FILES_CHANNEL = 'bullpen:pickFiles'

/** What an invoke answers: Electron would wrap a thrown error's message in its own text, so we send the outcome. */
export type IpcOutcome =
  { ok: true; value: unknown } | { ok: false; error: { message: string; name: string } }
