/**
 * The Electron shell, kept thin: one window over the renderer, the IPC adapter, tray, notifications, taskbar
 * progress and the app menu — all over the core's `AppApi` (src/main/core/app.ts), which does the work.
 *
 * Security: a single instance; the window is sandboxed with context isolation and no Node; a CSP on every response;
 * navigation, new windows, webviews and permission requests are denied. Quitting stops this node's worker and
 * hands its running jobs back to the queue, so no ffmpeg outlives the app.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  app,
  BrowserWindow,
  dialog,
  Menu,
  Notification,
  session,
  shell,
  Tray,
  nativeImage,
  type MenuItemConstructorOptions,
} from 'electron'
import { createAppApi, type CoreApi } from './core/app'
import { errorMessage } from './core/errors'
import { logger } from './core/logger'
import { BullpenNode } from './core/node'
import { SettingsStore, defaultDataDir } from './core/settings'
import { RENDERER_CSP, startServer, type RunningServer } from './core/server'
import { registerIpc } from './ipc'
import { appMenuTemplate } from './menu'
import { JobNotifier } from './notifications'
import { TaskbarProgress } from './taskbar'
import { TrayController } from './tray'
import iconPath from '../../resources/icon.png?asset'
import trayIconPath from '../../resources/tray.png?asset'
import trayTemplatePath from '../../resources/trayTemplate.png?asset'

/** How long quitting waits for the node to hand its jobs back before it gives up. */
const STOP_TIMEOUT_MS = 15_000

const devUrl = process.env['ELECTRON_RENDERER_URL']
const rendererIndex = join(__dirname, '../renderer/index.html')
const rendererIndexUrl = pathToFileURL(rendererIndex).toString()

let win: BrowserWindow | null = null
let tray: Tray | null = null
let node: BullpenNode | null = null
let api: CoreApi | null = null
let dashboard: RunningServer | null = null
const cleanups: Array<() => void> = []
let quitting = false

/** True for URLs of our own page (and nothing else: not other files, not other hosts). */
function isOwnUrl(url: string): boolean {
  if (devUrl) return url.startsWith(new URL(devUrl).origin + '/')
  return url.split(/[?#]/)[0] === rendererIndexUrl
}

function showWindow(): void {
  if (!win || win.isDestroyed()) {
    createWindow()
    return
  }
  if (win.isMinimized()) win.restore()
  win.show()
  win.focus()
}

function createWindow(): void {
  win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Bullpen',
    icon: iconPath,
    webPreferences: {
      preload: join(__dirname, '../preload/index.js'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  })
  win.once('ready-to-show', () => win?.show())
  win.on('closed', () => {
    win = null
  })
  if (devUrl) void win.loadURL(devUrl)
  else void win.loadFile(rendererIndex)
}

function hardenContents(): void {
  app.on('web-contents-created', (_e, contents) => {
    contents.setWindowOpenHandler(() => ({ action: 'deny' }))
    contents.on('will-navigate', (e, url) => {
      if (!isOwnUrl(url)) e.preventDefault()
    })
    contents.on('will-redirect', (e, url) => {
      if (!isOwnUrl(url)) e.preventDefault()
    })
    contents.on('will-attach-webview', (e) => e.preventDefault())
  })
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false))
  session.defaultSession.setPermissionCheckHandler(() => false)
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    // The dev server's CSP must allow Vite's HMR socket; the built page gets the strict one (and its meta tag).
    const csp = devUrl
      ? `${RENDERER_CSP.replace("connect-src 'self'", "connect-src 'self' ws:")}`
      : RENDERER_CSP
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } })
  })
}

async function openDashboard(): Promise<void> {
  const url = (await api?.dashboardUrl()) ?? null
  if (url) await shell.openExternal(url)
  else dialog.showMessageBoxSync({ type: 'info', message: 'No queue dashboard is available right now.' })
}

async function startCore(): Promise<void> {
  const n = await BullpenNode.start({ kind: 'desktop', work: true })
  node = n
  const core = createAppApi(n, {
    dashboardUrl: () => dashboard?.dashboardUrl ?? null,
    reveal: (path) => {
      shell.showItemInFolder(path)
      return Promise.resolve(true)
    },
    open: async (path) => (await shell.openPath(path)) === '',
  })
  // Bull Board for the "Queue dashboard" menu: loopback only, behind a random token, no renderer, no uploads.
  dashboard = await startServer({
    api: core,
    port: 0,
    token: randomBytes(24).toString('base64url'),
    queue: n.queue,
  }).catch((err: unknown) => {
    logger.warn({ err: errorMessage(err) }, 'queue dashboard not available')
    return null
  })
  api = core

  cleanups.push(registerIpc({ api: core, window: () => win, isOwnUrl }))

  const notifier = new JobNotifier({
    selfId: n.id,
    enabled: () => n.settings.get().notifications && Notification.isSupported(),
    create: (o) => new Notification({ ...o, icon: iconPath }),
    reveal: (path) => shell.showItemInFolder(path),
    showWindow,
  })
  cleanups.push(notifier.attach(core.on))

  const taskbar = new TaskbarProgress(n.id, () => win)
  cleanups.push(taskbar.attach(core.on))

  // macOS wants a monochrome template image that follows the menu bar's light or dark look.
  const t = new Tray(
    nativeImage.createFromPath(process.platform === 'darwin' ? trayTemplatePath : trayIconPath),
  )
  tray = t
  t.on('click', showWindow)
  const trayCtl = new TrayController(t, (tpl: MenuItemConstructorOptions[]) => Menu.buildFromTemplate(tpl), {
    show: showWindow,
    pause: () => void core.pause('local'),
    resume: () => void core.resume('local'),
    openDashboard: () => void openDashboard(),
    quit: () => app.quit(),
  })
  cleanups.push(core.on('stats', (s) => trayCtl.setStats(s)))
  cleanups.push(core.on('connection', (c) => trayCtl.setConnection(c)))
  void core.getStats().then(
    (s) => trayCtl.setStats(s),
    () => undefined,
  )
}

/**
 * Starts the core; when it cannot (Redis unreachable, ffmpeg missing…) says why and offers to retry, or to open the
 * settings file (Redis URL) first, instead of just quitting. Resolves false when the user quits.
 */
async function startOrAsk(): Promise<boolean> {
  for (;;) {
    try {
      await startCore()
      return true
    } catch (err) {
      const settings = new SettingsStore(defaultDataDir())
      settings.update({}) // make sure the file exists, so that it can be opened
      const { response } = await dialog.showMessageBox({
        type: 'error',
        title: 'Bullpen cannot start',
        message: 'Bullpen cannot start',
        detail: `${errorMessage(err)}\n\nThe Redis URL and the other settings are in ${settings.file}.`,
        buttons: ['Retry', 'Open settings file', 'Quit'],
        defaultId: 0,
        cancelId: 2,
      })
      if (response === 2) return false
      if (response === 1) await shell.openPath(settings.file)
    }
  }
}

/** Stops everything in order: UI listeners, the dashboard, the API, then the node (hand-back, no orphan ffmpeg). */
async function shutdown(): Promise<void> {
  for (const c of cleanups.splice(0)) c()
  tray?.destroy()
  tray = null
  await dashboard?.close().catch(() => undefined)
  await api?.close().catch(() => undefined)
  if (node) {
    const stopping = node.stop({ handBack: true })
    const timeout = new Promise<void>((r) => setTimeout(r, STOP_TIMEOUT_MS).unref())
    await Promise.race([stopping, timeout]).catch((err: unknown) => {
      logger.error({ err: errorMessage(err) }, 'node did not stop cleanly')
    })
  }
}

function main(): void {
  if (!app.requestSingleInstanceLock()) {
    app.quit()
    return
  }
  app.on('second-instance', showWindow)
  app.on('before-quit', (e) => {
    if (quitting) return
    quitting = true
    e.preventDefault()
    void shutdown().finally(() => app.exit(0))
  })
  app.on('window-all-closed', () => {
    // macOS keeps the app (and its worker) running in the dock and tray; elsewhere closing the window quits.
    if (process.platform !== 'darwin') app.quit()
  })
  app.on('activate', showWindow)

  void app.whenReady().then(async () => {
    app.setAppUserModelId('org.bullpen.app')
    hardenContents()
    Menu.setApplicationMenu(
      Menu.buildFromTemplate(
        appMenuTemplate(
          process.platform,
          { openDashboard: () => void openDashboard() },
          devUrl !== undefined,
        ),
      ),
    )
    if (!(await startOrAsk())) {
      app.exit(1)
      return
    }
    createWindow()
  })
}

main()
