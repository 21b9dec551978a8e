/**
 * The application menu: the usual roles plus "Queue dashboard" (Bull Board in the browser). A pure template
 * builder, tested without Electron. ("Add files…" lives in the window, where the preset and priority are chosen.)
 */
import type { MenuItemConstructorOptions } from 'electron'

export interface MenuActions {
  openDashboard(): void
}

/** The menu template for a platform (`darwin` gets the app menu). */
export function appMenuTemplate(
  platform: NodeJS.Platform,
  actions: MenuActions,
  isDev = false,
): MenuItemConstructorOptions[] {
  const isMac = platform === 'darwin'
  const template: MenuItemConstructorOptions[] = []
  if (isMac) template.push({ role: 'appMenu' })
  template.push({
    label: 'File',
    submenu: [isMac ? { role: 'close' } : { role: 'quit' }],
  })
  template.push({ role: 'editMenu' })
  template.push({
    label: 'View',
    submenu: [
      { label: 'Queue dashboard', accelerator: 'CmdOrCtrl+D', click: () => actions.openDashboard() },
      { type: 'separator' },
      ...(isDev ? ([{ role: 'reload' }, { role: 'toggleDevTools' }] as const) : []),
      { role: 'resetZoom' },
      { role: 'zoomIn' },
      { role: 'zoomOut' },
      { type: 'separator' },
      { role: 'togglefullscreen' },
    ],
  })
  template.push({ role: 'windowMenu' })
  return template
}
