/**
 * The only module of the main process that touches `ipcMain` (CONVENTIONS 3). It registers one handler per
 * AppApi method — each call validated by the same module as the WebSocket bridge — plus the native file dialog,
 * and forwards every core event to the window. Calls from any frame but our own page are refused.
 */
import { dialog, ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron'
import { APP_EVENT_NAMES, APP_METHOD_NAMES, type AppApi, type Subscribe } from '../shared/api'
import { callAppMethod } from './core/server/methods'
import { errorMessage } from './core/errors'
import { logger } from './core/logger'
import { EVENT_CHANNEL, methodChannel, PICK_FILES_CHANNEL, type IpcOutcome } from '../preload/channels'

/** Media the "Add files…" dialog offers first. */
const MEDIA_EXTENSIONS = [
  'mp4',
  'm4v',
  'mov',
  'mkv',
  'webm',
  'avi',
  'flv',
  'wmv',
  'mpg',
  'mpeg',
  'ts',
  'mts',
  'm2ts',
  '3gp',
  'ogv',
  'mp3',
  'm4a',
  'aac',
  'wav',
  'flac',
  'ogg',
  'opus',
  'gif',
]

export interface IpcOptions {
  api: AppApi & { on: Subscribe }
  /** The app window (null while there is none). */
  window(): BrowserWindow | null
  /** True for the URL of our own renderer (file:// of the build, or the dev server). */
  isOwnUrl(url: string): boolean
}

async function outcome(run: () => Promise<unknown>): Promise<IpcOutcome> {
  try {
    return { ok: true, value: (await run()) ?? null }
  } catch (err) {
    return {
      ok: false,
      error: { message: errorMessage(err), name: err instanceof Error ? err.name : 'Error' },
    }
  }
}

/** Registers every handler and starts forwarding events; returns the function that undoes both. */
export function registerIpc(opts: IpcOptions): () => void {
  const { api } = opts
  const trusted = (e: IpcMainInvokeEvent): boolean => {
    const url = e.senderFrame?.url ?? ''
    const ok = opts.isOwnUrl(url)
    if (!ok) logger.warn({ url }, 'IPC call from a foreign frame refused')
    return ok
  }

  for (const method of APP_METHOD_NAMES) {
    ipcMain.handle(methodChannel(method), (e, ...args: unknown[]) =>
      trusted(e)
        ? outcome(() => callAppMethod(api, method, args))
        : Promise.resolve<IpcOutcome>({ ok: false, error: { message: 'forbidden', name: 'Error' } }),
    )
  }

  ipcMain.handle(PICK_FILES_CHANNEL, (e) =>
    trusted(e)
      ? outcome(async () => {
          const win = opts.window()
          const options: Electron.OpenDialogOptions = {
            title: 'Add files to Bullpen',
            properties: ['openFile', 'multiSelections'],
            filters: [
              { name: 'Video and audio', extensions: MEDIA_EXTENSIONS },
              { name: 'All files', extensions: ['*'] },
            ],
          }
          const r = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options)
          return r.canceled ? [] : r.filePaths
        })
      : Promise.resolve<IpcOutcome>({ ok: false, error: { message: 'forbidden', name: 'Error' } }),
  )

  const unsubscribe = APP_EVENT_NAMES.map((event) =>
    api.on(event, (payload) => {
      const win = opts.window()
      if (!win || win.isDestroyed() || win.webContents.isDestroyed()) return
      win.webContents.send(EVENT_CHANNEL, event, payload)
    }),
  )

  return () => {
    for (const method of APP_METHOD_NAMES) ipcMain.removeHandler(methodChannel(method))
    ipcMain.removeHandler(PICK_FILES_CHANNEL)
    for (const off of unsubscribe) off()
  }
}
