/** The bridge that takes the `AppApi` to a browser (`bullpen serve`), and the call validation shared with IPC. */
export { startServer, RENDERER_CSP, WS_PATH, UPLOAD_PATH, DASHBOARD_PATH } from './server'
export type { ServerOptions, RunningServer, BridgeApi } from './server'
export { callAppMethod, validateCall, isAppMethodName, BadRequestError, METHOD_PARAMS } from './methods'
export { safeFileName, DEFAULT_MAX_UPLOAD_BYTES } from './upload'
export { isLoopbackHost, tokenMatches } from './auth'
export { serveNode, defaultRendererDir } from './serve'
export type { ServeOptions, ServingNode } from './serve'
