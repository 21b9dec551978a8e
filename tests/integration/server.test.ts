/**
 * The bridge server of `bullpen serve` over real sockets: JSON-RPC roundtrip and events, refused methods and
 * parameters, the token off loopback, Origin / Host checks, uploads (never overwriting, names sanitised, size
 * limit) and Bull Board over a real Bull queue in the test Redis.
 *
 * The AppApi here is a small recording implementation: these tests are about the transport and its guards; the
 * real core behind the same server is driven end to end in tests/e2e.
 */
import { EventEmitter } from 'node:events'
import { request } from 'node:http'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Bull from 'bull'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type {
  AppApi,
  AppEventName,
  AppEvents,
  ConnectionStatus,
  JobState,
  Page,
  JobView,
  QueueStats,
  Settings,
  Subscribe,
} from '../../src/shared/api'
import type { Priority } from '../../src/shared/spec'
import { BullpenNode } from '../../src/main/core/node'
import {
  defaultRendererDir,
  safeFileName,
  serveNode,
  startServer,
  type RunningServer,
} from '../../src/main/core/server'
import { TranscodeQueue } from '../../src/main/core/queue'
import { fakeJobData } from '../helpers/jobs'
import { TEST_REDIS_URL, uniquePrefix, waitFor } from '../helpers/redis'

const STATS: QueueStats = {
  waiting: 2,
  active: 1,
  completed: 3,
  failed: 0,
  delayed: 0,
  paused: 0,
  poolPaused: false,
  localPaused: false,
}

/** Records every call that reaches it; emits events on demand. */
class RecordingApi implements AppApi {
  readonly calls: { method: string; args: unknown[] }[] = []
  private readonly bus = new EventEmitter()
  readonly on: Subscribe = (event, listener) => {
    this.bus.on(event, listener)
    return () => this.bus.off(event, listener)
  }
  emit<E extends AppEventName>(event: E, payload: AppEvents[E]): void {
    this.bus.emit(event, payload)
  }
  listenerCount(): number {
    return this.bus.eventNames().reduce((n, e) => n + this.bus.listenerCount(e), 0)
  }
  private rec(method: string, args: unknown[]): void {
    this.calls.push({ method, args })
  }
  addFiles(req: Parameters<AppApi['addFiles']>[0]): ReturnType<AppApi['addFiles']> {
    this.rec('addFiles', [req])
    return Promise.resolve(
      req.paths.map((p, i) => ({ path: p, id: String(i + 1), duplicate: false, error: null })),
    )
  }
  listJobs(state: JobState, offset: number, limit: number): Promise<Page<JobView>> {
    this.rec('listJobs', [state, offset, limit])
    return Promise.resolve({ items: [], total: 0, offset })
  }
  getJob(id: string): Promise<JobView | null> {
    this.rec('getJob', [id])
    return Promise.resolve(null)
  }
  getStats(): Promise<QueueStats> {
    this.rec('getStats', [])
    return Promise.resolve(STATS)
  }
  setPriority(id: string, priority: Priority): Promise<void> {
    this.rec('setPriority', [id, priority])
    return Promise.resolve()
  }
  moveToTop(id: string): Promise<void> {
    this.rec('moveToTop', [id])
    return Promise.resolve()
  }
  cancel(id: string): Promise<void> {
    this.rec('cancel', [id])
    return Promise.reject(new Error(`job ${id} is not running`))
  }
  retry(id: string): Promise<void> {
    this.rec('retry', [id])
    return Promise.resolve()
  }
  remove(id: string): Promise<void> {
    this.rec('remove', [id])
    return Promise.resolve()
  }
  pause(scope: 'local' | 'pool'): Promise<void> {
    this.rec('pause', [scope])
    return Promise.resolve()
  }
  resume(scope: 'local' | 'pool'): Promise<void> {
    this.rec('resume', [scope])
    return Promise.resolve()
  }
  clean(graceMs: number): Promise<number> {
    this.rec('clean', [graceMs])
    return Promise.resolve(0)
  }
  getSettings(): Promise<Settings> {
    return Promise.resolve({
      redisUrl: '',
      concurrency: 1,
      outputDir: '',
      nodeName: 'test',
      notifications: true,
      lastPreset: '720p',
      lastPriority: 'normal',
    })
  }
  async updateSettings(patch: Partial<Settings>): Promise<Settings> {
    this.rec('updateSettings', [patch])
    return { ...(await this.getSettings()), ...patch }
  }
  listNodes(): ReturnType<AppApi['listNodes']> {
    return Promise.resolve([])
  }
  listPresets(): ReturnType<AppApi['listPresets']> {
    return Promise.resolve([])
  }
  getConnection(): Promise<ConnectionStatus> {
    return Promise.resolve({ state: 'ready', redis: 'redis://127.0.0.1:6379', message: null })
  }
  revealOutput(id: string): Promise<boolean> {
    this.rec('revealOutput', [id])
    return Promise.resolve(false)
  }
  openOutput(id: string): Promise<boolean> {
    this.rec('openOutput', [id])
    return Promise.resolve(false)
  }
  dashboardUrl(): Promise<string | null> {
    return Promise.resolve(null)
  }
}

interface RpcReply {
  id: unknown
  result?: unknown
  error?: { message: string }
}

/** A WebSocket client of the bridge: `call` sends one request and resolves with its reply. */
class Client {
  private nextId = 1
  readonly events: { event: string; payload: unknown }[] = []
  private readonly waiting = new Map<unknown, (r: RpcReply) => void>()
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as RpcReply & { event?: string; payload?: unknown }
      if (msg.event !== undefined) this.events.push({ event: msg.event, payload: msg.payload })
      else this.waiting.get(msg.id)?.(msg)
    })
  }
  static open(url: string, headers: Record<string, string> = {}): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers })
      ws.once('open', () => resolve(new Client(ws)))
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
      ws.once('error', reject)
    })
  }
  send(raw: string): Promise<RpcReply> {
    const id = (JSON.parse(raw) as { id: unknown }).id
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.ws.send(raw)
    })
  }
  call(method: string, params: unknown[] = []): Promise<RpcReply> {
    const id = this.nextId++
    return this.send(JSON.stringify({ id, method, params }))
  }
  close(): void {
    this.ws.close()
  }
}

function wsUrl(srv: RunningServer, query = ''): string {
  return `ws://127.0.0.1:${srv.port}/api/ws${query}`
}

/** A raw HTTP request (fetch cannot set Host). */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

let work: string
let rendererDir: string
let inboxDir: string
const servers: RunningServer[] = []
const clients: Client[] = []

async function serve(opts: Partial<Parameters<typeof startServer>[0]> = {}): Promise<RunningServer> {
  const srv = await startServer({ api: new RecordingApi(), port: 0, rendererDir, inboxDir, ...opts })
  servers.push(srv)
  return srv
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'bullpen-server-test-'))
  rendererDir = join(work, 'renderer')
  inboxDir = join(work, 'inbox')
  await rm(rendererDir, { recursive: true, force: true })
  await import('node:fs/promises').then((fs) => fs.mkdir(rendererDir, { recursive: true }))
  await writeFile(join(rendererDir, 'index.html'), '<!doctype html><title>Bullpen</title>')
})

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of servers.splice(0)) await s.close()
  await rm(inboxDir, { recursive: true, force: true })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

describe('JSON-RPC over /api/ws', () => {
  it('answers a call with the result and pushes core events', async () => {
    const api = new RecordingApi()
    const srv = await serve({ api })
    const c = await Client.open(wsUrl(srv))
    clients.push(c)
    expect(await c.call('getStats')).toEqual({ id: 1, result: STATS })
    expect(await c.call('setPriority', ['17', 'high'])).toEqual({ id: 2, result: null })
    expect(api.calls).toContainEqual({ method: 'setPriority', args: ['17', 'high'] })
    // Errors thrown by the core come back as {error: {message}}.
    const failed = await c.call('cancel', ['9'])
    expect(failed.error?.message).toBe('job 9 is not running')

    api.emit('job:progress', {
      id: '17',
      progress: { stage: 'encode', percent: 42, fps: 30, speed: 1.5, etaSec: 3 },
    })
    api.emit('stats', STATS)
    await expect.poll(() => c.events.map((e) => e.event)).toEqual(['job:progress', 'stats'])
    expect(c.events[0]?.payload).toMatchObject({ id: '17', progress: { percent: 42 } })
  })

  it('unsubscribes from the core when closed', async () => {
    const api = new RecordingApi()
    const srv = await serve({ api })
    expect(api.listenerCount()).toBeGreaterThan(0)
    await srv.close()
    expect(api.listenerCount()).toBe(0)
  })

  it('rejects method names outside APP_METHOD_NAMES', async () => {
    const api = new RecordingApi()
    const c = await Client.open(wsUrl(await serve({ api })))
    clients.push(c)
    for (const method of [
      'constructor',
      '__proto__',
      'toString',
      'emit',
      'on',
      'rec',
      'hasOwnProperty',
      42,
    ]) {
      const reply = await c.send(JSON.stringify({ id: 'x', method, params: [] }))
      expect(reply.error?.message, String(method)).toMatch(/^unknown method/)
    }
    expect(api.calls).toEqual([])
    const garbage = await new Promise<RpcReply>((resolve) => {
      c.ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString('utf8')) as RpcReply))
      c.ws.send('{not json')
    })
    expect(garbage.error?.message).toMatch(/^bad message/)
  })

  it('rejects bad parameters before they reach the core', async () => {
    const api = new RecordingApi()
    const c = await Client.open(wsUrl(await serve({ api })))
    clients.push(c)
    const bad: [string, unknown][] = [
      ['setPriority', ['17', 'urgent']],
      ['setPriority', ['17']],
      ['listJobs', ['waiting', -1, 10]],
      ['listJobs', ['everything', 0, 10]],
      ['listJobs', ['waiting', 0, 1e9]],
      ['getJob', ['../../etc']],
      ['pause', ['everyone']],
      ['addFiles', [{ paths: ['/a.mp4'], priority: 'normal', ffmpegArgs: ['-y'] }]],
      ['addFiles', [{ paths: [], priority: 'normal' }]],
      ['addFiles', [{ paths: ['/a.mp4'], priority: 'normal', spec: { format: 'exe' } }]],
      ['updateSettings', [{ concurrency: 0 }]],
      ['updateSettings', [{ shell: '/bin/sh' }]],
      ['getStats', 'not a list'],
    ]
    for (const [method, params] of bad) {
      const reply = await c.send(JSON.stringify({ id: 1, method, params }))
      expect(reply.error?.message, `${method} ${JSON.stringify(params)}`).toMatch(
        new RegExp(`^bad parameters for ${method}`),
      )
    }
    expect(api.calls).toEqual([])
    // The same calls with good parameters go through.
    const ok = await c.call('addFiles', [{ paths: ['/a.mp4'], priority: 'low', spec: { format: 'webm' } }])
    expect(ok.result).toEqual([{ path: '/a.mp4', id: '1', duplicate: false, error: null }])
    expect(api.calls[0]?.args[0]).toMatchObject({ spec: { format: 'webm', subtitles: 'keep' } })
  })

  it('gives the dashboard URL of this server when it serves one', async () => {
    const queue = new Bull(uniquePrefix('board'), TEST_REDIS_URL)
    try {
      const srv = await serve({ queue })
      const c = await Client.open(wsUrl(srv))
      clients.push(c)
      expect((await c.call('dashboardUrl')).result).toBe(`http://127.0.0.1:${srv.port}/admin/queues`)
    } finally {
      await queue.close()
    }
  })
})

describe('who may connect', () => {
  it('refuses to listen off loopback without a token', async () => {
    await expect(serve({ host: '0.0.0.0' })).rejects.toThrow(/without a token/)
    await expect(serve({ host: '0.0.0.0', token: 'short' })).rejects.toThrow(/too short/)
  })

  it('checks the token on HTTP and on the WebSocket when one is set', async () => {
    const token = 'tok-0123456789abcdef'
    const srv = await serve({ host: '0.0.0.0', token })
    // The printed URLs name the machine, not the unspecified address.
    expect(srv.openUrl).toBe(`http://${hostname()}:${srv.port}/?token=${token}`)
    const base = `http://127.0.0.1:${srv.port}`
    expect((await fetch(`${base}/`)).status).toBe(401)
    expect((await fetch(`${base}/?token=tok-0123456789abcdeX`)).status).toBe(401)
    expect((await fetch(`${base}/`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
    const first = await fetch(`${base}/?token=${token}`)
    expect(first.status).toBe(200)
    // The token given once in the URL becomes an HttpOnly cookie for the page's other requests.
    const cookie = first.headers.get('set-cookie') ?? ''
    expect(cookie).toMatch(/HttpOnly/i)
    expect(
      (await fetch(`${base}/index.html`, { headers: { cookie: cookie.split(';')[0] ?? '' } })).status,
    ).toBe(200)

    await expect(Client.open(wsUrl(srv))).rejects.toThrow(/401/)
    await expect(Client.open(wsUrl(srv, '?token=wrong-token-123'))).rejects.toThrow(/401/)
    const c = await Client.open(wsUrl(srv, `?token=${token}`))
    clients.push(c)
    expect((await c.call('getStats')).result).toEqual(STATS)
  })

  it('refuses WebSocket upgrades from another origin', async () => {
    const srv = await serve()
    await expect(Client.open(wsUrl(srv), { origin: 'http://evil.example' })).rejects.toThrow(/403/)
    const c = await Client.open(wsUrl(srv), { origin: `http://127.0.0.1:${srv.port}` })
    clients.push(c)
    expect((await c.call('getStats')).result).toEqual(STATS)
  })

  it('without a token, answers only requests naming a loopback host (DNS rebinding)', async () => {
    const srv = await serve()
    expect(await rawGet(srv.port, '/', { host: `127.0.0.1:${srv.port}` })).toBe(200)
    expect(await rawGet(srv.port, '/', { host: `localhost:${srv.port}` })).toBe(200)
    expect(await rawGet(srv.port, '/', { host: `rebind.evil.example:${srv.port}` })).toBe(403)
  })

  it('serves the renderer with a strict CSP', async () => {
    const srv = await serve()
    const res = await fetch(srv.url)
    expect(res.status).toBe(200)
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("object-src 'none'")
    expect(csp).not.toContain('unsafe-eval')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  })
})

describe('POST /api/upload', () => {
  async function upload(srv: RunningServer, name: string, body: string | Uint8Array): Promise<Response> {
    return fetch(`${srv.url}api/upload`, {
      method: 'POST',
      headers: { 'x-file-name': encodeURIComponent(name), 'content-type': 'application/octet-stream' },
      body,
    })
  }

  it('stores the body in the inbox and never overwrites a file', async () => {
    const srv = await serve()
    const a = await upload(srv, 'clip.mp4', 'first')
    expect(a.status).toBe(201)
    const first = (await a.json()) as { path: string; size: number }
    expect(first.path).toBe(join(inboxDir, 'clip.mp4'))
    expect(first.size).toBe(5)
    const second = (await (await upload(srv, 'clip.mp4', 'second')).json()) as { path: string }
    expect(second.path).toBe(join(inboxDir, 'clip (1).mp4'))
    const third = (await (await upload(srv, 'clip.mp4', 'third')).json()) as { path: string }
    expect(third.path).toBe(join(inboxDir, 'clip (2).mp4'))
    expect(await readFile(first.path, 'utf8')).toBe('first')
    expect(await readFile(second.path, 'utf8')).toBe('second')
    expect(await readFile(third.path, 'utf8')).toBe('third')
    // No part files left behind.
    expect((await readdir(inboxDir)).sort()).toEqual(['clip (1).mp4', 'clip (2).mp4', 'clip.mp4'])
  })

  it('neutralises path traversal and hostile names', async () => {
    const srv = await serve()
    const names = [
      '../../escape.mp4',
      '..\\..\\escape-win.mp4',
      '/etc/passwd',
      '..',
      '.bashrc',
      'a\u0000b.mp4',
      'con.mp4',
      'x'.repeat(400) + '.mp4',
    ]
    for (const name of names) {
      const res = await upload(srv, name, 'data')
      expect(res.status, name).toBe(201)
      const { path } = (await res.json()) as { path: string }
      expect(dirname(path), name).toBe(inboxDir)
      expect(Buffer.byteLength(path.slice(inboxDir.length + 1)), name).toBeLessThanOrEqual(180)
    }
    const stored = await readdir(inboxDir)
    expect(stored.every((n) => !n.startsWith('.'))).toBe(true)
    expect(stored).toContain('escape.mp4')
    expect(stored).toContain('escape-win.mp4')
    expect(stored).toContain('passwd')
    expect(stored).toContain('_con.mp4')
    // Nothing escaped into the folders above the inbox.
    expect(await readdir(work)).toEqual(expect.not.arrayContaining(['escape.mp4', 'escape-win.mp4']))
    expect(await readdir(dirname(work))).toEqual(expect.not.arrayContaining(['escape.mp4']))
  })

  it('refuses bodies over the size limit and leaves nothing behind', async () => {
    const srv = await serve({ maxUploadBytes: 1000 })
    const res = await upload(srv, 'big.mp4', new Uint8Array(5000))
    expect(res.status).toBe(413)
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/big\.mp4.*limit/)
    expect(await readdir(inboxDir).catch(() => [])).toEqual([])
    expect((await upload(srv, 'empty.mp4', '')).status).toBe(400)
  })

  it('leaves nothing behind when the client gives up mid-upload', async () => {
    const srv = await serve()
    const req = request({
      host: '127.0.0.1',
      port: srv.port,
      path: '/api/upload',
      method: 'POST',
      headers: { 'x-file-name': 'half.mp4', 'content-length': 1_000_000 },
    })
    req.on('error', () => undefined)
    req.write(Buffer.alloc(64 * 1024))
    // The part file exists while the body streams in…
    await expect.poll(async () => (await readdir(inboxDir).catch(() => [])).length).toBe(1)
    req.destroy()
    // …and is gone once the client has given up; no half.mp4 either.
    await expect.poll(async () => await readdir(inboxDir)).toEqual([])
  })

  it('requires the token too', async () => {
    const srv = await serve({ host: '0.0.0.0', token: 'tok-0123456789abcdef' })
    expect((await upload(srv, 'a.mp4', 'x')).status).toBe(401)
    expect(await readdir(inboxDir).catch(() => [])).toEqual([])
  })
})

describe('safeFileName', () => {
  it('keeps ordinary names and strips folders and dots', () => {
    expect(safeFileName("te[s]t_ video ' _ .flv")).toBe("te[s]t_ video ' _ .flv")
    expect(safeFileName('%2E%2E%2Fx.mp4')).toBe('x.mp4')
    expect(safeFileName('...')).toBe('upload')
    expect(safeFileName('a:b?.mp4')).toBe('a_b_.mp4')
  })
})

describe('Bull Board at /admin/queues', () => {
  it('shows the real queue, behind the same token', async () => {
    const name = uniquePrefix('board')
    const queue = new Bull(name, TEST_REDIS_URL)
    try {
      await queue.add({ n: 1 })
      const token = 'tok-0123456789abcdef'
      const srv = await serve({ queue, token })
      const base = `http://127.0.0.1:${srv.port}/admin/queues`
      expect((await fetch(base)).status).toBe(401)
      expect(srv.dashboardUrl).toBe(`${base}?token=${token}`)
      const page = await fetch(`${base}?token=${token}`)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('__UI_CONFIG__')
      const api = await fetch(`${base}/api/queues?activeQueue=${name}&status=waiting&page=1`, {
        headers: { authorization: `Bearer ${token}` },
      })
      expect(api.status).toBe(200)
      const body = (await api.json()) as { queues: { name: string; counts: { waiting: number } }[] }
      expect(body.queues.find((q) => q.name === name)?.counts.waiting).toBe(1)
    } finally {
      await queue.obliterate({ force: true })
      await queue.close()
    }
  })
})

describe('Bull Board over a Bullpen queue', () => {
  it("routes the board's retry, remove and data edits through Bullpen, and adds no job", async () => {
    const q = new TranscodeQueue({
      redisUrl: TEST_REDIS_URL,
      prefix: uniquePrefix('board-bp'),
      attempts: 1,
      worker: { drainDelay: 1 },
    })
    const removed: string[] = []
    q.events.on('removed', ({ jobId }) => removed.push(jobId))
    const token = 'tok-0123456789abcdef'
    const srv = await serve({ queue: q, token })
    const api = async (method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`http://127.0.0.1:${srv.port}/admin/queues/api/queues/${encodeURIComponent(q.name)}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
    const dedupeKeys = async (): Promise<number> =>
      (await q.connections.client.keys(`${q.prefix}:${q.name}:bp:dedupe:*`)).length
    try {
      const failed = await q.add(fakeJobData('/m/board-fail.mp4'))
      await q.process(1, () => Promise.reject(new Error('boom')))
      await waitFor(async () => (await q.get(failed.id))?.state === 'failed', 'the job to fail')
      await q.pauseLocal()

      // The same file queued again: a board retry of the failed copy would make two live jobs for one file.
      const copy = await q.add(fakeJobData('/m/board-fail.mp4'))
      expect(copy.duplicate).toBe(false)
      const retry = await api('PUT', `/${failed.id}/retry`)
      expect(retry.status).toBe(409)
      expect(JSON.stringify(await retry.json())).toContain(`the same file is queued as job ${copy.id}`)
      expect((await q.get(failed.id))?.state).toBe('failed')

      // Data edits must pass the payload schema.
      const edit = await api('PATCH', `/${copy.id}/update-data`, { jobData: { v: 1, evil: true } })
      expect(edit.status).toBe(400)
      expect((await q.get(copy.id))?.data?.input.path).toBe('/m/board-fail.mp4')

      // Removing from the board releases the key and tells every window.
      expect(await dedupeKeys()).toBe(1)
      const clean = await api('PUT', `/${copy.id}/clean`)
      expect(clean.status).toBe(204)
      expect(await q.get(copy.id)).toBeNull()
      expect(await dedupeKeys()).toBe(0)
      await waitFor(() => removed.includes(copy.id), "the 'removed' event")

      // Now the failed one can be retried from the board, as Bullpen retries: key taken, attempts reset.
      expect((await api('PUT', `/${failed.id}/retry`)).status).toBe(204)
      expect(await q.get(failed.id)).toMatchObject({ state: 'waiting', attemptsMade: 0 })
      expect(await dedupeKeys()).toBe(1)

      const add = await api('POST', '/add', { name: 'x', data: fakeJobData('/m/other.mp4'), options: {} })
      expect(add.status).toBe(400)
      expect((await q.stats()).waiting).toBe(1)

      // Emptying the waiting list from the board frees the files of the jobs it deleted.
      expect((await api('PUT', '/empty')).status).toBe(200)
      expect((await q.stats()).waiting).toBe(0)
      expect(await dedupeKeys()).toBe(0)

      // Obliterating deletes Bullpen's keys with Bull's: nothing of the queue is left.
      await q.add(fakeJobData('/m/board-last.mp4'))
      expect((await api('PUT', '/pause')).status).toBe(200)
      expect((await api('PUT', '/obliterate', {})).status).toBe(200)
      expect(await q.connections.client.keys(`${q.prefix}:${q.name}:*`)).toEqual([])
    } finally {
      await srv.close()
      await q.obliterate()
      await q.close()
    }
  })
})

describe('serveNode', () => {
  it('serves a real node: stats over RPC, uploads into <dataDir>/inbox, the board at /admin/queues', async () => {
    const tag = uniquePrefix('serve')
    const node = await BullpenNode.start({
      kind: 'serve',
      dataDir: join(work, 'serve-data'),
      redisUrl: TEST_REDIS_URL,
      manageRedis: false,
      work: false,
      serve: false,
      queueName: tag,
      prefix: tag,
    })
    try {
      const srv = await serveNode(node, { port: 0, rendererDir })
      servers.push(srv)
      const c = await Client.open(wsUrl(srv))
      clients.push(c)
      expect((await c.call('getStats')).result).toMatchObject({ waiting: 0, active: 0 })
      expect((await c.call('dashboardUrl')).result).toBe(`http://127.0.0.1:${srv.port}/admin/queues`)
      expect(srv.dashboardUrl).toBe(`http://127.0.0.1:${srv.port}/admin/queues`)
      expect(await srv.api.dashboardUrl()).toBe(srv.dashboardUrl)
      const up = await fetch(`${srv.url}api/upload`, {
        method: 'POST',
        headers: { 'x-file-name': 'a.mp4' },
        body: 'x',
      })
      expect(((await up.json()) as { path: string }).path).toBe(join(work, 'serve-data', 'inbox', 'a.mp4'))
      expect((await fetch(`${srv.url}admin/queues`)).status).toBe(200)
      // From the sources, the renderer defaults to this checkout's build output.
      expect(defaultRendererDir()).toBe(join(__dirname, '..', '..', 'out', 'renderer'))
    } finally {
      for (const s of servers.splice(0)) await s.close()
      await node.queue.bull.obliterate({ force: true })
      await node.stop()
    }
  })
})
