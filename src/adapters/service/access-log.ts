/**
 * One plain line per request, written when the response is ready (hono/logger writes two lines per
 * request with ANSI colours, which log collectors store as noise): `METHOD path status duration sub="…"`.
 * The path has no query, so a signed URL's signature never reaches the log; the subject is the
 * principal's (`-` when the request was refused before one was known), never its token.
 */
import type { MiddlewareHandler } from 'hono'
import { principalOf } from '../../handlers/index.js'

export function accessLog(log: (line: string) => void): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now()
    await next()
    const ms = (performance.now() - started).toFixed(1)
    log(`${c.req.method} ${c.req.path} ${c.res.status} ${ms}ms sub=${JSON.stringify(principalOf(c)?.sub ?? '-')}`)
  }
}
