import type { MenuItemConstructorOptions } from 'electron'
import { describe, expect, it } from 'vitest'
import { appMenuTemplate } from './menu'

function flatten(items: MenuItemConstructorOptions[]): MenuItemConstructorOptions[] {
  return items.flatMap((i) => [i, ...(Array.isArray(i.submenu) ? flatten(i.submenu) : [])])
}

describe('appMenuTemplate', () => {
  it('has a Queue dashboard item that opens the dashboard', () => {
    let opened = 0
    const items = flatten(appMenuTemplate('linux', { openDashboard: () => opened++ }))
    const dash = items.find((i) => i.label === 'Queue dashboard')
    ;(dash?.click as () => void)()
    expect(opened).toBe(1)
    expect(items.some((i) => i.role === 'quit')).toBe(true)
    expect(items.some((i) => i.role === 'toggleDevTools')).toBe(false)
  })

  it('gives macOS its app menu, and development builds their dev tools', () => {
    const mac = appMenuTemplate('darwin', { openDashboard: () => undefined }, true)
    expect(mac[0]?.role).toBe('appMenu')
    expect(flatten(mac).some((i) => i.role === 'toggleDevTools')).toBe(true)
  })
})
