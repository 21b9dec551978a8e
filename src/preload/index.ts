/**
 * Exposes exactly the `BullpenBridge` to the renderer as `window.bullpen` (contextIsolation + sandbox): the AppApi
 * methods over IPC, `on` with an unsubscribe, real paths of dropped files, and the native file dialog. Nothing else
 * of Electron or Node reaches the page.
 */
import { contextBridge, webUtils } from 'electron'
import {
  APP_EVENT_NAMES,
  APP_METHOD_NAMES,
  type AppApi,
  type AppEventName,
  type BullpenBridge,
  type Subscribe,
} from '../shared/api'
import { createEventListeners } from '../shared/listeners'
import { methodChannel, PICK_FILES_CHANNEL } from './channels'
import { invoke, onEvent } from './ipc'

const EVENTS: ReadonlySet<string> = new Set(APP_EVENT_NAMES)
let detach: (() => void) | null = null
// One IPC listener for all subscriptions, attached while anyone listens.
const listeners = createEventListeners({
  onCountChange: (n) => {
    if (n > 0) detach ??= onEvent(dispatch)
    else {
      detach?.()
      detach = null
    }
  },
})

function dispatch(name: string, payload: unknown): void {
  if (EVENTS.has(name)) listeners.emit(name as AppEventName, payload as never)
}

const on: Subscribe = listeners.on

const methods = Object.fromEntries(
  APP_METHOD_NAMES.map((name) => [name, (...args: unknown[]) => invoke(methodChannel(name), args)]),
) as unknown as AppApi

const bridge: BullpenBridge = {
  ...methods,
  on,
  kind: 'electron',
  pathsForFiles(files: File[]): Promise<string[]> {
    // Electron 32+ removed File.path; webUtils gives the real path of a dropped or picked file.
    const paths = files.map((f) => ({ name: f.name, path: webUtils.getPathForFile(f) }))
    const pathless = paths.filter((p) => p.path === '').map((p) => p.name)
    if (pathless.length > 0) {
      // Files made in a page (or dragged out of a browser) have no path on this computer.
      return Promise.reject(
        new Error(
          `${pathless.join(', ')}: not a file on this computer; drag it from a folder or use Add files…`,
        ),
      )
    }
    return Promise.resolve(paths.map((p) => p.path))
  },
  async pickFiles(): Promise<string[] | null> {
    return (await invoke(PICK_FILES_CHANNEL, [])) as string[]
  },
}

contextBridge.exposeInMainWorld('bullpen', bridge)
