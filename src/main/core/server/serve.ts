/**
 * `bullpen serve` in one call: the AppApi over a started node, behind the bridge server (renderer, uploads into
 * the node's inbox, WebSocket RPC, Bull Board).
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createAppApi, type CoreApi } from '../app'
import type { BullpenNode } from '../node'
import { DEFAULT_INBOX_KEEP_MS, startInboxSweeper } from './inbox'
import { startServer, type RunningServer, type ServerOptions } from './server'

export type ServeOptions = Omit<ServerOptions, 'api' | 'queue' | 'inboxDir'> & {
  /* `rendererDir` defaults to {@link defaultRendererDir}. */
  /** Where browser uploads land; default `<dataDir>/inbox`. */
  inboxDir?: string
  /**
   * How long an upload stays in the inbox once no waiting, active, delayed or failed job needs it (default 7 days);
   * see inbox.ts.
   */
  inboxKeepMs?: number
  /** Serve Bull Board at /admin/queues (default true). */
  dashboard?: boolean
}

/**
 * Where the built renderer is: beside the bundle (out/main/cli.js → out/renderer), or, when run from the sources
 * (tsx, tests), the build output of this checkout.
 */
export function defaultRendererDir(): string {
  // The bundler may put this module in out/main or in out/main/chunks; from the sources it is four levels down.
  const candidates = [
    resolve(__dirname, '..', 'renderer'),
    resolve(__dirname, '..', '..', 'renderer'),
    resolve(__dirname, '..', '..', '..', '..', 'out', 'renderer'),
  ]
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? (candidates[0] as string)
}

/** A running `serve`: the server plus the AppApi it exposes; `close()` stops both (not the node). */
export type ServingNode = RunningServer & { api: CoreApi }

/** Exposes `node` to browsers. Rejects like {@link startServer} (no token off loopback, port taken). */
export async function serveNode(node: BullpenNode, opts: ServeOptions = {}): Promise<ServingNode> {
  let server: RunningServer | null = null
  const api = createAppApi(node, { dashboardUrl: () => server?.dashboardUrl ?? null })
  const { dashboard, inboxDir, inboxKeepMs, rendererDir, ...rest } = opts
  const inbox = inboxDir ?? join(node.dataDir, 'inbox')
  try {
    server = await startServer({
      ...rest,
      api,
      rendererDir: rendererDir ?? defaultRendererDir(),
      inboxDir: inbox,
      ...(dashboard === false ? {} : { queue: node.queue }),
    })
  } catch (err) {
    await api.close()
    throw err
  }
  const running = server
  const sweeper = startInboxSweeper({
    dir: inbox,
    keepMs: inboxKeepMs ?? DEFAULT_INBOX_KEEP_MS,
    inUse: () => node.inputsStillNeeded(),
  })
  return {
    ...running,
    api,
    async close(): Promise<void> {
      await sweeper.stop()
      await running.close()
      await api.close()
    },
  }
}
