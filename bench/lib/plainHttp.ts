/**
 * Reference sides for figure 5: what reading a file over loopback HTTP costs ffmpeg on this machine with no Bullpen
 * at all. A minimal Range-capable file server, and a minimal proxy in front of it (the shape of Bullpen's route:
 * origin → relay in the worker → ffmpeg), each in its own Node process, printing "listening <port>".
 */
import { background, type Background } from './proc'

const SERVER = `
const http = require('node:http'), fs = require('node:fs')
const file = process.argv[1], size = fs.statSync(file).size
const srv = http.createServer((req, res) => {
  const m = /^bytes=(\\d+)-(\\d*)$/.exec(req.headers.range || '')
  const start = m ? Number(m[1]) : 0, end = m && m[2] ? Number(m[2]) : size - 1
  const headers = { 'Content-Length': end - start + 1, 'Accept-Ranges': 'bytes' }
  if (m) headers['Content-Range'] = 'bytes ' + start + '-' + end + '/' + size
  res.writeHead(m ? 206 : 200, headers)
  fs.createReadStream(file, { start, end, highWaterMark: 1 << 20 }).pipe(res)
})
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port))
`

const PROXY = `
const http = require('node:http')
const upstream = process.argv[1]
const srv = http.createServer((req, res) => {
  const up = http.request(upstream, { headers: req.headers.range ? { range: req.headers.range } : {} }, (r) => {
    res.writeHead(r.statusCode, r.headers)
    r.pipe(res)
  })
  res.on('close', () => up.destroy())
  up.end()
})
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port))
`

export interface PlainHttp {
  /** ffmpeg input URL served directly by the minimal server. */
  direct: string
  /** The same through the minimal proxy. */
  proxied: string
  stop(): Promise<void>
}

async function start(src: string, arg: string): Promise<{ proc: Background; port: number }> {
  const proc = background(process.execPath, ['-e', src, arg])
  await proc.waitFor(/listening \d+/, 10_000)
  const port = Number(/listening (\d+)/.exec(proc.output())?.[1])
  return { proc, port }
}

export async function startPlainHttp(file: string): Promise<PlainHttp> {
  const server = await start(SERVER, file)
  const direct = `http://127.0.0.1:${server.port}/input.mp4`
  const proxy = await start(PROXY, direct)
  return {
    direct,
    proxied: `http://127.0.0.1:${proxy.port}/input.mp4`,
    async stop() {
      await Promise.all([proxy.proc.stop(), server.proc.stop()])
    },
  }
}
