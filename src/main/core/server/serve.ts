/**
 * `bullpen serve` in one call: the AppApi over a started node, behind the bridge server (renderer, uploads into
 * the node's inbox, WebSocket RPC, Bull Board).
 */
import { join } from 'node:path'
import { createAppApi, type CoreApi } from '../app'
import type { BullpenNode } from '../node'
import { startServer, type RunningServer, type ServerOptions } from './server'

export type ServeOptions = Omit<ServerOptions, 'api' | 'queue' | 'inboxDir'> & {
  /** Where browser uploads land; default `<dataDir>/inbox`. */
  inboxDir?: string
  /** Serve Bull Board at /admin/queues (default true). */
  dashboard?: boolean
}

/** A running `serve`: the server plus the AppApi it exposes; `close()` stops both (not the node). */
export type ServingNode = RunningServer & { api: CoreApi }

/** Exposes `node` to browsers. Rejects like {@link startServer} (no token off loopback, port taken). */
export async function serveNode(node: BullpenNode, opts: ServeOptions = {}): Promise<ServingNode> {
  let server: RunningServer | null = null
  const api = createAppApi(node, {
    dashboardUrl: () => server?.dashboardUrl ?? null,
    listNodes: () => node.listNodes(),
  })
  const { dashboard, inboxDir, ...rest } = opts
  try {
    server = await startServer({
      ...rest,
      api,
      inboxDir: inboxDir ?? join(node.dataDir, 'inbox'),
      ...(dashboard === false ? {} : { queue: node.queue.bull }),
    })
  } catch (err) {
    await api.close()
    throw err
  }
  const running = server
  return {
    ...running,
    api,
    async close(): Promise<void> {
      await running.close()
      await api.close()
    },
  }
}
