import type { BullpenBridge } from '../../shared/api'
import { createWebBridge } from './webBridge'

let webBridge: BullpenBridge | null = null

/**
 * The bridge to the core: `window.bullpen` from the Electron preload when present, otherwise (a browser served by
 * `bullpen serve`) the WebSocket bridge, created once.
 */
export function getBridge(): BullpenBridge {
  if (window.bullpen) return window.bullpen
  webBridge ??= createWebBridge()
  return webBridge
}
