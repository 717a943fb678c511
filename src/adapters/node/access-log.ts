/**
 * One plain line per request, written when the response is ready (hono/logger writes two lines per
 * request with ANSI colours, which log collectors store as noise).
 */
import type { MiddlewareHandler } from 'hono'

export function accessLog(log: (line: string) => void): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now()
    await next()
    const ms = (performance.now() - started).toFixed(1)
    log(`${c.req.method} ${c.req.path} ${c.res.status} ${ms}ms`)
  }
}
