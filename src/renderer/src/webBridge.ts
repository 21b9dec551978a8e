/**
 * The `BullpenBridge` of a browser served by `bullpen serve`: the same `AppApi` as the Electron preload, over a
 * WebSocket JSON-RPC to `ws(s)://${location.host}/api/ws` (`{id, method, params}` → `{id, result}` |
 * `{id, error: {message}}`; events arrive as `{event, payload}`). Dropped files are uploaded to the node's inbox
 * (`POST /api/upload`, streamed, with progress) and the server-side paths are what `addFiles` gets.
 *
 * While the socket is gone the bridge emits a `connection` event with state `down`, fails calls at once (the UI
 * shows why instead of hanging) and reconnects with exponential backoff; once back it emits the core's own
 * connection status and fresh stats so the UI can refresh.
 */
import {
  APP_EVENT_NAMES,
  APP_METHOD_NAMES,
  type AppApi,
  type AppEventName,
  type AppEvents,
  type AppMethodName,
  type BullpenBridge,
  type ConnectionStatus,
  type Subscribe,
} from '../../shared/api'
import { createEventListeners } from '../../shared/listeners'

/** Options for tests and unusual deployments; a page served by `bullpen serve` needs none. */
export interface WebBridgeOptions {
  /** Base URL of the server; default the page's own origin. */
  baseUrl?: string
  /** The token; default `?token=` of the page URL (the server also set it as a cookie). */
  token?: string | null
  /** Longest wait between reconnection attempts; default 5 s. */
  maxBackoffMs?: number
  /** How long a call may wait for its answer; default 60 s. */
  callTimeoutMs?: number
}

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  timer: ReturnType<typeof setTimeout>
}

interface Incoming {
  id?: unknown
  result?: unknown
  error?: { message?: unknown; name?: unknown }
  event?: unknown
  payload?: unknown
}

/** An error the server returned for a call; `name` is the server-side error class. */
export class BridgeCallError extends Error {
  constructor(message: string, name = 'BridgeCallError') {
    super(message)
    this.name = name
  }
}

const EVENT_SET: ReadonlySet<string> = new Set<AppEventName>(APP_EVENT_NAMES)

/** Creates the browser bridge and opens its socket. */
export function createWebBridge(options: WebBridgeOptions = {}): BullpenBridge {
  const base = new URL(options.baseUrl ?? window.location.href)
  const token =
    options.token === undefined ? new URLSearchParams(window.location.search).get('token') : options.token
  const wsUrl = new URL('/api/ws', base)
  wsUrl.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:'
  if (token) wsUrl.searchParams.set('token', token)
  const uploadUrl = new URL('/api/upload', base).toString()
  const maxBackoffMs = options.maxBackoffMs ?? 5000
  const callTimeoutMs = options.callTimeoutMs ?? 60_000

  const listeners = createEventListeners({
    onError: (event, err) => console.error(`bullpen: a listener of ${event} threw`, err),
  })
  const pending = new Map<number, Pending>()
  /** Calls made before the very first connection opened; sent once it does. */
  let queued: string[] = []
  let socket: WebSocket | null = null
  let everOpened = false
  let open = false
  let attempt = 0
  let lastRedis = ''
  let nextId = 1
  let downReported = false

  function emit<E extends AppEventName>(event: E, payload: AppEvents[E]): void {
    if (event === 'connection') lastRedis = (payload as ConnectionStatus).redis || lastRedis
    listeners.emit(event, payload)
  }

  function downStatus(): ConnectionStatus {
    return {
      state: 'down',
      redis: lastRedis,
      message: `Lost the connection to the Bullpen server at ${base.host}; reconnecting…`,
    }
  }

  function connect(): void {
    const ws = new WebSocket(wsUrl)
    socket = ws
    ws.onopen = () => {
      open = true
      downReported = false
      attempt = 0
      const wasReconnect = everOpened
      everOpened = true
      for (const text of queued) ws.send(text)
      queued = []
      if (wasReconnect) void refreshAfterReconnect()
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return
      let msg: Incoming
      try {
        msg = JSON.parse(ev.data) as Incoming
      } catch {
        return
      }
      if (typeof msg.event === 'string') {
        if (EVENT_SET.has(msg.event)) emit(msg.event as AppEventName, msg.payload as never)
        return
      }
      if (typeof msg.id !== 'number') return
      const p = pending.get(msg.id)
      if (!p) return
      pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.error) {
        const message = typeof msg.error.message === 'string' ? msg.error.message : 'the call failed'
        p.reject(
          new BridgeCallError(message, typeof msg.error.name === 'string' ? msg.error.name : undefined),
        )
      } else {
        p.resolve(msg.result)
      }
    }
    ws.onclose = () => {
      if (socket !== ws) return
      socket = null
      open = false
      for (const [id, p] of pending) {
        clearTimeout(p.timer)
        p.reject(new BridgeCallError('The connection to the Bullpen server was lost before it answered.'))
        pending.delete(id)
      }
      if (!downReported) {
        downReported = true
        emit('connection', downStatus())
      }
      // Exponential backoff with jitter: 250 ms, 500 ms, 1 s, … up to maxBackoffMs.
      const delay = Math.min(maxBackoffMs, 250 * 2 ** attempt) * (0.75 + Math.random() * 0.5)
      attempt = Math.min(attempt + 1, 16)
      setTimeout(connect, delay)
    }
  }

  async function refreshAfterReconnect(): Promise<void> {
    try {
      emit('connection', (await call('getConnection', [])) as ConnectionStatus)
      emit('stats', (await call('getStats', [])) as AppEvents['stats'])
    } catch {
      // The socket dropped again: onclose has already reported it.
    }
  }

  function call(method: AppMethodName, params: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (everOpened && !open) {
        reject(new BridgeCallError(`Not connected to the Bullpen server at ${base.host}; reconnecting…`))
        return
      }
      const id = nextId++
      const text = JSON.stringify({ id, method, params })
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new BridgeCallError(`The Bullpen server did not answer ${method} in time.`))
      }, callTimeoutMs)
      pending.set(id, { resolve, reject, timer })
      if (open && socket) socket.send(text)
      else queued.push(text)
    })
  }

  const on: Subscribe = listeners.on

  function uploadOne(
    file: File,
    onUpload?: (name: string, sent: number, total: number) => void,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest()
      xhr.open('POST', uploadUrl)
      xhr.setRequestHeader('X-File-Name', encodeURIComponent(file.name))
      xhr.setRequestHeader('Content-Type', 'application/octet-stream')
      if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`)
      xhr.upload.onprogress = (ev) =>
        onUpload?.(file.name, ev.loaded, ev.lengthComputable ? ev.total : file.size)
      xhr.onload = () => {
        let body: { path?: unknown; error?: { message?: unknown } } = {}
        try {
          body = JSON.parse(xhr.responseText) as typeof body
        } catch {
          // Not JSON: fall through to the status text.
        }
        if (xhr.status === 201 && typeof body.path === 'string') {
          onUpload?.(file.name, file.size, file.size)
          resolve(body.path)
        } else {
          const why = typeof body.error?.message === 'string' ? body.error.message : `HTTP ${xhr.status}`
          reject(new BridgeCallError(`Could not upload ${file.name}: ${why}`))
        }
      }
      xhr.onerror = () =>
        reject(new BridgeCallError(`Could not upload ${file.name}: the server is unreachable.`))
      xhr.send(file)
    })
  }

  const methods = Object.fromEntries(
    APP_METHOD_NAMES.map((name) => [name, (...params: unknown[]) => call(name, params)]),
  ) as unknown as AppApi

  const bridge: BullpenBridge = {
    ...methods,
    on,
    kind: 'web',
    async pathsForFiles(files, onUpload) {
      const paths: string[] = []
      // One at a time: the node's disk and uplink are shared, and progress stays readable.
      for (const file of files) paths.push(await uploadOne(file, onUpload))
      return paths
    },
    pickFiles() {
      return Promise.resolve(null)
    },
  }
  connect()
  return bridge
}
