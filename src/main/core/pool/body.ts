import type { IncomingMessage } from 'node:http'
import { PassThrough } from 'node:stream'

/**
 * The body of an HTTP message, ended rather than failed when its connection is cut: what arrived before the cut
 * then reaches the file it is piped to (a failed pipeline drops the file stream's buffered writes), so a resume
 * asks only for the rest. The caller tells a cut from a whole body by `msg.complete` (or the bytes it counted).
 * A pipeline that fails on its own (abort, stall, disk) destroys the body, and the connection goes with it.
 */
export function keepWhatArrives(msg: IncomingMessage, highWaterMark?: number): PassThrough {
  const body = new PassThrough(highWaterMark ? { highWaterMark } : {})
  msg.on('error', () => undefined)
  msg.once('close', () => {
    if (!body.writableEnded && !body.destroyed) body.end()
  })
  body.once('close', () => {
    if (!msg.complete) msg.destroy()
  })
  msg.pipe(body)
  return body
}
