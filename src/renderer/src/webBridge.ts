// STUB — to be replaced by the web bridge client (owned by the engineer who writes `bullpen serve`).
import type { BullpenBridge } from '../../shared/api'

/**
 * The `BullpenBridge` of a browser: a WebSocket client of `ws(s)://${location.host}/api/ws` (token from `?token=`).
 * Stub until the real client lands: it throws so that a missing bridge is loud.
 */
export function createWebBridge(): BullpenBridge {
  throw new Error('The web bridge is not available in this build (src/renderer/src/webBridge.ts is a stub).')
}
