/**
 * Who may talk to the bridge: a token compared in constant time, loopback detection, and the Origin / Host checks
 * that keep other web sites (cross-site WebSocket hijacking, DNS rebinding) away from a node bound to localhost.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { IncomingMessage } from 'node:http'

/** Shortest token accepted: a guessable token on a network interface is no protection. */
export const MIN_TOKEN_LENGTH = 8

/** True for the host names and addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.')
  return false
}

/** Why `host` and `token` cannot be served together, in words; null when they can (the CLI's usage check too). */
export function listenProblem(host: string, token: string | undefined): string | null {
  if (!isLoopbackHost(host) && token === undefined) {
    return (
      `Refusing to listen on ${host} without a token: anyone on the network could control this node. ` +
      'Give a token (--token or BULLPEN_TOKEN), or listen on 127.0.0.1.'
    )
  }
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    return `The token is too short: use at least ${MIN_TOKEN_LENGTH} characters.`
  }
  return null
}

/** Compares a presented token with the expected one in constant time (both hashed first, so lengths leak nothing). */
export function tokenMatches(given: string | undefined | null, expected: string): boolean {
  if (given === undefined || given === null || given === '') return false
  const a = createHash('sha256').update(given, 'utf8').digest()
  const b = createHash('sha256').update(expected, 'utf8').digest()
  return timingSafeEqual(a, b)
}

/** Name of the cookie that carries the token after a `?token=` visit (port-specific: cookies ignore ports). */
export function tokenCookieName(port: number): string {
  return `bullpen_token_${port}`
}

/** The value of one cookie in a request, if present. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== name) continue
    try {
      return decodeURIComponent(part.slice(eq + 1).trim())
    } catch {
      return undefined
    }
  }
  return undefined
}

/** Where a request may carry the token: `Authorization: Bearer`, `?token=`, or the cookie set by an earlier visit. */
export function presentedTokens(req: IncomingMessage, url: URL, cookieName: string): string[] {
  const out: string[] = []
  const auth = req.headers.authorization
  if (auth?.toLowerCase().startsWith('bearer ')) out.push(auth.slice(7).trim())
  const q = url.searchParams.get('token')
  if (q) out.push(q)
  const c = readCookie(req, cookieName)
  if (c) out.push(c)
  return out
}

/** The host part of a `Host` header (`name:port`, `[v6]:port`). */
export function hostnameOf(hostHeader: string | undefined): string | null {
  if (!hostHeader) return null
  try {
    return new URL(`http://${hostHeader}`).hostname
  } catch {
    return null
  }
}

/**
 * A browser's `Origin` is acceptable when it names the very host (and port) the request was sent to, or one of the
 * extra origins allowed. Requests without an `Origin` come from non-browser clients, which the token (or loopback)
 * already governs.
 */
export function originAllowed(req: IncomingMessage, extra: readonly string[]): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  if (extra.includes(origin)) return true
  let o: URL
  try {
    o = new URL(origin)
  } catch {
    return false
  }
  if (o.protocol !== 'http:' && o.protocol !== 'https:') return false
  return req.headers.host !== undefined && o.host === req.headers.host.toLowerCase()
}
