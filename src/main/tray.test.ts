import type { MenuItemConstructorOptions } from 'electron'
import { describe, expect, it } from 'vitest'
import type { QueueStats } from '../shared/api'
import { TrayController, trayMenuTemplate, trayTooltip, type TrayActions, type TrayLike } from './tray'

const stats = (over: Partial<QueueStats> = {}): QueueStats => ({
  waiting: 3,
  active: 2,
  completed: 10,
  failed: 0,
  delayed: 1,
  paused: 0,
  poolPaused: false,
  localPaused: false,
  ...over,
})

class FakeTray implements TrayLike<MenuItemConstructorOptions[]> {
  tooltips: string[] = []
  menus: MenuItemConstructorOptions[][] = []
  setToolTip(t: string): void {
    this.tooltips.push(t)
  }
  setContextMenu(m: MenuItemConstructorOptions[] | null): void {
    if (m) this.menus.push(m)
  }
}

function recordingActions(): TrayActions & { log: string[] } {
  const log: string[] = []
  return {
    log,
    show: () => log.push('show'),
    pause: () => log.push('pause'),
    resume: () => log.push('resume'),
    openDashboard: () => log.push('dashboard'),
    quit: () => log.push('quit'),
  }
}

function click(items: MenuItemConstructorOptions[], label: RegExp): void {
  const item = items.find((i) => i.label !== undefined && label.test(i.label))
  if (!item?.click) throw new Error(`no menu item ${String(label)}`)
  ;(item.click as () => void)()
}

describe('trayTooltip', () => {
  it('counts running, waiting (incl. delayed and paused), done and failed jobs', () => {
    expect(trayTooltip(stats())).toBe('Bullpen — 2 running, 4 waiting, 10 done')
    expect(trayTooltip(stats({ failed: 2, localPaused: true }))).toBe(
      'Bullpen — 2 running, 4 waiting, 10 done, 2 failed (paused here)',
    )
    expect(trayTooltip(stats({ poolPaused: true }))).toMatch(/\(pool paused\)$/)
    expect(trayTooltip(null)).toBe('Bullpen — connecting…')
  })

  it('says why when Redis is out of reach', () => {
    const down = {
      state: 'reconnecting',
      redis: 'redis://x',
      message: 'Redis at x is not answering',
    } as const
    expect(trayTooltip(stats(), down)).toBe('Bullpen — Redis at x is not answering')
  })
})

describe('trayMenuTemplate', () => {
  it('offers pause while working and resume while paused, and every action is wired', () => {
    const a = recordingActions()
    const working = trayMenuTemplate(stats(), a)
    expect(working.map((i) => i.label ?? i.type)).toEqual([
      'Show Bullpen',
      'separator',
      'Pause work on this computer',
      'Queue dashboard',
      'separator',
      'Quit Bullpen',
    ])
    click(working, /^Show/)
    click(working, /^Pause/)
    click(working, /dashboard/)
    click(working, /^Quit/)
    click(trayMenuTemplate(stats({ localPaused: true }), a), /^Resume/)
    expect(a.log).toEqual(['show', 'pause', 'dashboard', 'quit', 'resume'])
  })
})

describe('TrayController', () => {
  it('updates the tooltip when it changes and rebuilds the menu only when the pause state flips', () => {
    const tray = new FakeTray()
    const ctl = new TrayController(tray, (t) => t, recordingActions())
    expect(tray.tooltips).toEqual(['Bullpen — connecting…'])
    expect(tray.menus).toHaveLength(1)
    ctl.setStats(stats())
    ctl.setStats(stats())
    ctl.setStats(stats({ active: 1 }))
    expect(tray.tooltips).toHaveLength(3)
    expect(tray.menus).toHaveLength(1)
    ctl.setStats(stats({ localPaused: true }))
    expect(tray.menus).toHaveLength(2)
    expect(tray.menus[1]?.some((i) => i.label?.startsWith('Resume'))).toBe(true)
  })
})
