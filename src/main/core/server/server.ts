/**
 * The bridge of `bullpen serve`: the same `AppApi` the Electron preload exposes, offered to a browser.
 *
 * - HTTP (express 5): the built renderer with a strict CSP, `POST /api/upload` into the inbox, Bull Board at
 *   `/admin/queues`.
 * - WebSocket `/api/ws`: a tiny JSON-RPC — `{id, method, params}` → `{id, result}` | `{id, error: {message}}` —
 *   and every core event pushed as `{event, payload}`.
 *
 * Bound to 127.0.0.1 by default. Any other host requires a token (we refuse to start without one), checked on every
 * HTTP request and WebSocket upgrade. Without a token, requests must name a loopback host (DNS-rebinding guard);
 * WebSocket upgrades from a browser must come from this very origin.
 *
 * Plain Node: no electron here (the desktop app starts it too, on loopback, for the dashboard).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import express, { type NextFunction, type Request, type Response } from 'express'
import { WebSocketServer, WebSocket, type RawData } from 'ws'
import type Bull from 'bull'
import { createBullBoard } from '@bull-board/api'
import { BullAdapter } from '@bull-board/api/bullAdapter'
import { ExpressAdapter } from '@bull-board/express'
import {
  APP_EVENT_NAMES,
  type AppApi,
  type AppEventName,
  type AppEvents,
  type Subscribe,
} from '../../../shared/api'
import { errorMessage, UserFacingError } from '../errors'
import { logger } from '../logger'
import { TranscodeQueue } from '../queue'
import { BullpenBoardAdapter } from './board'
import {
  hostnameOf,
  isLoopbackHost,
  listenProblem,
  originAllowed,
  presentedTokens,
  tokenCookieName,
  tokenMatches,
} from './auth'
import { callAppMethod, validateCall } from './methods'
import { DEFAULT_MAX_UPLOAD_BYTES, receiveUpload, UploadError } from './upload'

/** Path of the WebSocket endpoint. */
export const WS_PATH = '/api/ws'
/** Path of the upload endpoint. */
export const UPLOAD_PATH = '/api/upload'
/** Base path of Bull Board. */
export const DASHBOARD_PATH = '/admin/queues'

/** Strict CSP of the renderer: only its own scripts, styles inline (React style props), talk only to this origin. */
export const RENDERER_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** Bull Board's UI: its own scripts, inline styles. */
const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** Outgoing bytes a client may fall behind by before we stop sending it progress events. */
const SLOW_CLIENT_BYTES = 4 * 1024 * 1024
const PING_INTERVAL_MS = 30_000
/** Largest JSON-RPC message a client may send. */
const MAX_MESSAGE_BYTES = 1024 * 1024

/** What the bridge needs from the core: the API and its event subscription. */
export type BridgeApi = AppApi & { on: Subscribe }

export interface ServerOptions {
  api: BridgeApi
  /** Interface to listen on; default 127.0.0.1. Anything but loopback requires `token`. */
  host?: string
  /** Port; default 8060; 0 picks a free one. */
  port?: number
  /** Shared secret for HTTP and WebSocket; required off loopback. */
  token?: string
  /** The built renderer (out/renderer); not served when absent. */
  rendererDir?: string
  /** Where uploads land; uploads are refused when absent. */
  inboxDir?: string
  /** Upload size limit in bytes; default 8 GiB. */
  maxUploadBytes?: number
  /**
   * The queue of the dashboard at /admin/queues (no dashboard when absent): a Bullpen queue, whose dashboard actions go
   * through Bullpen (server/board.ts), or a plain Bull queue.
   */
  queue?: TranscodeQueue | Bull.Queue
  /** Extra browser origins allowed to open the WebSocket (e.g. a dev server). */
  allowedOrigins?: string[]
}

export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8060/` (without the token). */
  url: string
  /** URL to open in a browser: the base URL with `?token=` when there is a token. */
  openUrl: string
  /** Bull Board URL (with `?token=` when there is a token), or null without a queue. */
  dashboardUrl: string | null
  host: string
  port: number
  /** Stops listening, closes every socket; does not close the api or the queue. */
  close(): Promise<void>
}

interface RpcRequest {
  id?: unknown
  method?: unknown
  params?: unknown
}

function urlOf(req: IncomingMessage): URL {
  return new URL(req.url ?? '/', 'http://bridge.invalid')
}

/**
 * Starts the bridge. Rejects with a {@link UserFacingError} when asked to listen off loopback without a token, or
 * when the port is taken.
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1'
  const token = opts.token === undefined || opts.token === '' ? undefined : opts.token
  const problem = listenProblem(host, token)
  if (problem) throw new UserFacingError(problem)
  const api = opts.api
  const maxUploadBytes = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES
  const allowedOrigins = opts.allowedOrigins ?? []
  // The cookie name needs the port, known only after listen() when port 0 was asked for.
  let cookieName = tokenCookieName(opts.port ?? 8060)

  /** Token check shared by HTTP and WS. Returns null when allowed, else the status and reason. */
  function refusal(req: IncomingMessage, url: URL): { status: number; message: string } | null {
    if (token === undefined) {
      // Loopback without a token: the Host must be a loopback name too, or a rebinding DNS name could reach us.
      const h = hostnameOf(req.headers.host)
      if (h === null || !isLoopbackHost(h)) return { status: 403, message: 'forbidden host' }
      return null
    }
    const ok = presentedTokens(req, url, cookieName).some((t) => tokenMatches(t, token))
    return ok ? null : { status: 401, message: 'a valid token is required' }
  }

  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-Content-Type-Options', 'nosniff')
    res.setHeader('Referrer-Policy', 'no-referrer')
    res.setHeader('X-Frame-Options', 'DENY')
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin')
    const url = urlOf(req)
    const refused = refusal(req, url)
    if (refused) {
      res.status(refused.status).type('text/plain').send(refused.message)
      return
    }
    const q = url.searchParams.get('token')
    if (token !== undefined && q !== null && tokenMatches(q, token)) {
      // Remember the token so the page's own assets, uploads and the dashboard's fetches are authorised too.
      res.cookie(cookieName, q, { httpOnly: true, sameSite: 'strict', path: '/' })
    }
    next()
  })

  app.get('/api/health', (_req, res) => {
    res.json({ ok: true })
  })

  app.post(UPLOAD_PATH, async (req: Request, res: Response) => {
    if (!originAllowed(req, allowedOrigins)) {
      res.status(403).json({ error: { message: 'forbidden origin' } })
      return
    }
    if (opts.inboxDir === undefined) {
      res.status(404).json({ error: { message: 'this node takes no uploads' } })
      return
    }
    try {
      const result = await receiveUpload(req, opts.inboxDir, maxUploadBytes)
      logger.info({ path: result.path, size: result.size }, 'upload stored')
      res.status(201).json(result)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const aborted =
        code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ECONNABORTED'
      const status = err instanceof UploadError ? err.status : aborted ? 400 : 500
      if (aborted) logger.info('upload abandoned by the client (partial file removed)')
      else if (status === 500) logger.error({ err }, 'upload failed')
      // The client may still be sending: close after answering rather than reading a body we refuse.
      res.setHeader('Connection', 'close')
      res.status(status).json({ error: { message: errorMessage(err) } })
    }
  })

  let dashboardPath: string | null = null
  if (opts.queue) {
    const serverAdapter = new ExpressAdapter()
    serverAdapter.setBasePath(DASHBOARD_PATH)
    const adapter =
      opts.queue instanceof TranscodeQueue ? new BullpenBoardAdapter(opts.queue) : new BullAdapter(opts.queue)
    createBullBoard({ queues: [adapter], serverAdapter })
    app.use(
      DASHBOARD_PATH,
      (_req: Request, res: Response, next: NextFunction) => {
        res.setHeader('Content-Security-Policy', DASHBOARD_CSP)
        next()
      },
      serverAdapter.getRouter() as express.Router,
    )
    dashboardPath = DASHBOARD_PATH
  }

  if (opts.rendererDir !== undefined) {
    const dir = resolve(opts.rendererDir)
    if (!existsSync(resolve(dir, 'index.html'))) {
      logger.warn({ dir }, 'renderer not built: no index.html there (run `npm run build`)')
    }
    app.use(
      express.static(dir, {
        index: 'index.html',
        dotfiles: 'ignore',
        setHeaders: (res) => res.setHeader('Content-Security-Policy', RENDERER_CSP),
      }),
    )
  }

  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').send('not found')
  })

  const server: Server = createServer(app)
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES })

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = urlOf(req)
    const reject = (status: number, message: string): void => {
      socket.end(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    }
    if (url.pathname !== WS_PATH) return reject(404, 'Not Found')
    const refused = refusal(req, url)
    if (refused) return reject(refused.status, refused.status === 401 ? 'Unauthorized' : 'Forbidden')
    if (!originAllowed(req, allowedOrigins)) return reject(403, 'Forbidden')
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })

  const alive = new WeakMap<WebSocket, boolean>()

  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    alive.set(ws, true)
    ws.on('pong', () => alive.set(ws, true))
    ws.on('error', (err) => logger.warn({ err }, 'websocket client error'))
    ws.on('message', (data: RawData, isBinary: boolean) => {
      void handleMessage(ws, req, data, isBinary)
    })
  })

  async function handleMessage(
    ws: WebSocket,
    req: IncomingMessage,
    data: RawData,
    isBinary: boolean,
  ): Promise<void> {
    let msg: RpcRequest
    try {
      if (isBinary) throw new Error('binary messages are not accepted')
      const buf = Array.isArray(data)
        ? Buffer.concat(data)
        : data instanceof ArrayBuffer
          ? Buffer.from(data)
          : data
      const text = buf.toString('utf8')
      const parsed: unknown = JSON.parse(text)
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object')
      msg = parsed
    } catch (err) {
      send(ws, { id: null, error: { message: `bad message: ${errorMessage(err)}` } })
      return
    }
    const id = typeof msg.id === 'number' || typeof msg.id === 'string' ? msg.id : null
    try {
      let result: unknown
      if (msg.method === 'dashboardUrl' && dashboardPath !== null) {
        validateCall(msg.method, msg.params)
        // The browser reaches the board through the very host it reached us by (the token cookie is already set).
        result = `http://${req.headers.host ?? `${host}:${String(boundPort)}`}${dashboardPath}`
      } else {
        result = await callAppMethod(api, msg.method, msg.params)
      }
      send(ws, { id, result: result === undefined ? null : result })
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error'
      if (!(err instanceof UserFacingError) && name !== 'BadRequestError') {
        logger.warn({ err, method: msg.method }, 'bridge call failed')
      }
      send(ws, { id, error: { message: errorMessage(err), name } })
    }
  }

  function send(ws: WebSocket, message: unknown): void {
    if (ws.readyState !== WebSocket.OPEN) return
    ws.send(JSON.stringify(message))
  }

  function broadcast<E extends AppEventName>(event: E, payload: AppEvents[E]): void {
    if (wss.clients.size === 0) return
    const text = JSON.stringify({ event, payload })
    for (const ws of wss.clients) {
      if (ws.readyState !== WebSocket.OPEN) continue
      // A client that cannot keep up misses progress ticks (the next one supersedes them), never state changes.
      if (event === 'job:progress' && ws.bufferedAmount > SLOW_CLIENT_BYTES) continue
      ws.send(text)
    }
  }

  const unsubscribers = APP_EVENT_NAMES.map((event) => api.on(event, (payload) => broadcast(event, payload)))

  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate()
        continue
      }
      alive.set(ws, false)
      ws.ping()
    }
  }, PING_INTERVAL_MS)
  pinger.unref()

  let boundPort = opts.port ?? 8060
  await new Promise<void>((resolveListen, rejectListen) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (err.code === 'EADDRINUSE') {
        rejectListen(
          new UserFacingError(`Port ${boundPort} on ${host} is already in use: pick another with --port.`),
        )
      } else {
        rejectListen(err)
      }
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolveListen()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(boundPort, host)
  }).catch((err: unknown) => {
    clearInterval(pinger)
    for (const off of unsubscribers) off()
    throw err
  })
  boundPort = (server.address() as AddressInfo).port
  cookieName = tokenCookieName(boundPort)
  server.on('error', (err) => logger.error({ err }, 'bridge server error'))

  // Listening on every interface: name the machine in the URLs we print, not the unspecified address.
  const shownHost = host === '0.0.0.0' || host === '::' ? hostname() : host
  const urlHost = shownHost.includes(':') ? `[${shownHost}]` : shownHost
  const url = `http://${urlHost}:${boundPort}/`
  const withToken = (u: string): string =>
    token === undefined ? u : `${u}?token=${encodeURIComponent(token)}`
  logger.info({ url, dashboard: dashboardPath !== null }, 'bridge listening')

  let closing: Promise<void> | null = null
  return {
    url,
    openUrl: withToken(url),
    dashboardUrl: dashboardPath === null ? null : withToken(`http://${urlHost}:${boundPort}${dashboardPath}`),
    host,
    port: boundPort,
    close(): Promise<void> {
      closing ??= (async () => {
        clearInterval(pinger)
        for (const off of unsubscribers) off()
        for (const ws of wss.clients) ws.terminate()
        await new Promise<void>((r) => wss.close(() => r()))
        const closed = new Promise<void>((r) => server.close(() => r()))
        server.closeAllConnections()
        await closed
      })()
      return closing
    },
  }
}
