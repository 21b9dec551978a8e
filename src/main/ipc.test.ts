/**
 * The IPC adapter over a small typed stand-in for Electron's ipcMain (no Electron binary on the build machines):
 * every AppApi method gets a handler, parameters are validated by the bridge's module, foreign frames are refused,
 * errors come back as outcomes, and core events reach the window.
 */
import { EventEmitter } from 'node:events'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { APP_METHOD_NAMES, type AppApi, type Subscribe } from '../shared/api'
import { EVENT_CHANNEL, PICK_FILES_CHANNEL, methodChannel, type IpcOutcome } from '../preload/channels'

type Handler = (event: { senderFrame: { url: string } | null }, ...args: unknown[]) => Promise<IpcOutcome>

const handlers = new Map<string, Handler>()
const dialogResult = { canceled: false, filePaths: ['/videos/a.mp4'] }

vi.mock('electron', () => ({
  ipcMain: {
    handle: (channel: string, fn: Handler) => {
      if (handlers.has(channel)) throw new Error(`second handler for ${channel}`)
      handlers.set(channel, fn)
    },
    removeHandler: (channel: string) => handlers.delete(channel),
  },
  dialog: { showOpenDialog: () => Promise.resolve(dialogResult) },
}))

const { registerIpc } = await import('./ipc')

const OWN = 'file:///app/out/renderer/index.html'

function fakeApi(): { api: AppApi & { on: Subscribe }; calls: unknown[][]; bus: EventEmitter } {
  const calls: unknown[][] = []
  const bus = new EventEmitter()
  const methods = Object.fromEntries(
    APP_METHOD_NAMES.map((m) => [
      m,
      (...args: unknown[]) => {
        calls.push([m, ...args])
        if (m === 'retry') return Promise.reject(new Error('job 7 has not failed'))
        return Promise.resolve(m === 'getJob' ? null : 'ok')
      },
    ]),
  ) as unknown as AppApi
  const on: Subscribe = (event, listener) => {
    bus.on(event, listener)
    return () => bus.off(event, listener)
  }
  return { api: { ...methods, on }, calls, bus }
}

function fakeWindow(): { sent: unknown[][]; win: unknown } {
  const sent: unknown[][] = []
  const win = {
    isDestroyed: () => false,
    webContents: { isDestroyed: () => false, send: (...a: unknown[]) => sent.push(a) },
  }
  return { sent, win }
}

function call(channel: string, url: string, ...args: unknown[]): Promise<IpcOutcome> {
  const h = handlers.get(channel)
  if (!h) throw new Error(`no handler for ${channel}`)
  return h({ senderFrame: { url } }, ...args)
}

beforeEach(() => handlers.clear())

describe('registerIpc', () => {
  it('registers one handler per AppApi method plus the file dialog, and removes them all', () => {
    const { api } = fakeApi()
    const off = registerIpc({ api, window: () => null, isOwnUrl: (u) => u === OWN })
    expect([...handlers.keys()].sort()).toEqual(
      [...APP_METHOD_NAMES.map(methodChannel), PICK_FILES_CHANNEL].sort(),
    )
    off()
    expect(handlers.size).toBe(0)
  })

  it('validates parameters, forwards good calls and returns errors as outcomes', async () => {
    const { api, calls } = fakeApi()
    registerIpc({ api, window: () => null, isOwnUrl: (u) => u === OWN })
    expect(await call(methodChannel('setPriority'), OWN, '5', 'high')).toEqual({ ok: true, value: 'ok' })
    expect(await call(methodChannel('getJob'), OWN, '5')).toEqual({ ok: true, value: null })
    const bad = await call(methodChannel('setPriority'), OWN, '5', 'urgent')
    expect(bad).toMatchObject({ ok: false, error: { name: 'BadRequestError' } })
    expect(await call(methodChannel('retry'), OWN, '7')).toEqual({
      ok: false,
      error: { message: 'job 7 has not failed', name: 'Error' },
    })
    expect(calls).toEqual([
      ['setPriority', '5', 'high'],
      ['getJob', '5'],
      ['retry', '7'],
    ])
  })

  it('refuses calls from any frame but our page', async () => {
    const { api, calls } = fakeApi()
    registerIpc({ api, window: () => null, isOwnUrl: (u) => u === OWN })
    const r = await call(methodChannel('pause'), 'https://evil.example/', 'pool')
    expect(r).toEqual({ ok: false, error: { message: 'forbidden', name: 'Error' } })
    expect((await call(PICK_FILES_CHANNEL, 'file:///etc/other.html')).ok).toBe(false)
    expect(calls).toEqual([])
    expect(await call(PICK_FILES_CHANNEL, OWN)).toEqual({ ok: true, value: ['/videos/a.mp4'] })
  })

  it('forwards every core event to the window until disposed', () => {
    const { api, bus } = fakeApi()
    const { sent, win } = fakeWindow()
    const off = registerIpc({ api, window: () => win as never, isOwnUrl: () => true })
    bus.emit('job:removed', { id: '3' })
    bus.emit('stats', { waiting: 1 })
    off()
    bus.emit('job:removed', { id: '4' })
    expect(sent).toEqual([
      [EVENT_CHANNEL, 'job:removed', { id: '3' }],
      [EVENT_CHANNEL, 'stats', { waiting: 1 }],
    ])
  })
})
