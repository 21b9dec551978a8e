/**
 * The tray icon: queue counts in its tooltip and a small menu (show, pause/resume this computer, quit). Pure
 * functions over a narrow view of Electron's `Tray`, so they are tested with small typed fakes.
 */
import type { MenuItemConstructorOptions } from 'electron'
import type { ConnectionStatus, QueueStats } from '../shared/api'

/** The part of Electron's `Tray` we use. */
export interface TrayLike<M> {
  setToolTip(toolTip: string): void
  setContextMenu(menu: M | null): void
}

/** What the tray menu can do. */
export interface TrayActions {
  show(): void
  pause(): void
  resume(): void
  openDashboard(): void
  quit(): void
}

/** The tooltip: how many jobs wait, run, are done and failed — or why the queue is out of reach. */
export function trayTooltip(stats: QueueStats | null, connection: ConnectionStatus | null = null): string {
  if (connection && connection.state !== 'ready') {
    return `Bullpen — ${connection.message ?? `Redis is ${connection.state}`}`
  }
  if (!stats) return 'Bullpen — connecting…'
  const parts = [
    `${stats.active} running`,
    `${stats.waiting + stats.delayed + stats.paused} waiting`,
    `${stats.completed} done`,
  ]
  if (stats.failed > 0) parts.push(`${stats.failed} failed`)
  const paused = stats.poolPaused ? ' (pool paused)' : stats.localPaused ? ' (paused here)' : ''
  return `Bullpen — ${parts.join(', ')}${paused}`
}

/** The tray menu for the current state. */
export function trayMenuTemplate(
  stats: QueueStats | null,
  actions: TrayActions,
): MenuItemConstructorOptions[] {
  const paused = stats?.localPaused ?? false
  return [
    { label: 'Show Bullpen', click: () => actions.show() },
    { type: 'separator' },
    paused
      ? { label: 'Resume work on this computer', click: () => actions.resume() }
      : { label: 'Pause work on this computer', click: () => actions.pause() },
    { label: 'Queue dashboard', click: () => actions.openDashboard() },
    { type: 'separator' },
    { label: 'Quit Bullpen', click: () => actions.quit() },
  ]
}

/**
 * Keeps a tray in step with the queue: call {@link TrayController.setStats} and
 * {@link TrayController.setConnection} from the core's events. The menu is rebuilt only when it changes
 * (pause state), the tooltip only when its text does.
 */
export class TrayController<M> {
  private stats: QueueStats | null = null
  private connection: ConnectionStatus | null = null
  private tooltip = ''
  private menuPaused: boolean | null = null

  constructor(
    private readonly tray: TrayLike<M>,
    private readonly buildMenu: (template: MenuItemConstructorOptions[]) => M,
    private readonly actions: TrayActions,
  ) {
    this.render()
  }

  setStats(stats: QueueStats): void {
    this.stats = stats
    this.render()
  }

  setConnection(connection: ConnectionStatus): void {
    this.connection = connection
    this.render()
  }

  private render(): void {
    const tooltip = trayTooltip(this.stats, this.connection)
    if (tooltip !== this.tooltip) {
      this.tooltip = tooltip
      this.tray.setToolTip(tooltip)
    }
    const paused = this.stats?.localPaused ?? false
    if (paused !== this.menuPaused) {
      this.menuPaused = paused
      this.tray.setContextMenu(this.buildMenu(trayMenuTemplate(this.stats, this.actions)))
    }
  }
}
