/// <reference types="vite/client" />
import type { BullpenBridge } from '../../shared/api'

declare global {
  interface Window {
    /** The AppApi: set by the Electron preload; absent in a browser, where the web bridge stands in. */
    bullpen?: BullpenBridge
  }
}

export {}
