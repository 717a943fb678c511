/**
 * The rate-limit middleware (rate-limits.ts): each request is counted against its principal's
 * budget (its client address's when it has none: anonymous mode, a signed URL, no or bad
 * credentials), refused with `429 rate_limited` and `Retry-After` over the limit, and its body and
 * its answer's body throttled to the bytes budget. Every answer carries the `RateLimit-Policy` and
 * `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers. `/check` and OPTIONS (CORS preflights,
 * tus discovery) are not counted: a health check must never be refused.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { errorBody } from '../../handlers/index.js'
import type { Authorizer } from '../../auth/index.js'
import { principalKey, type RateLimits } from './rate-limits.js'
import { throttled } from './throttled.js'

export interface RateLimitingOptions {
  limits: RateLimits
  /** Who the request comes from, when it says (a token); a failure leaves it to its address. */
  authorizer: Authorizer
  clientAddress: (c: Context) => string
  /** The health check's path, never counted. */
  checkPath: string
}

export function rateLimiting(options: RateLimitingOptions): MiddlewareHandler {
  const { limits } = options
  const keyOf = async (c: Context): Promise<string> => {
    try {
      const principal = await options.authorizer.authenticate(c)
      if (principal.kind !== 'anonymous' && principal.kind !== 'signed-url') return principalKey(principal.id)
    } catch {
      // No credentials or bad ones: counted by address (the request is then refused with 401 anyway).
    }
    return `a:${options.clientAddress(c)}`
  }
  return async (c, next) => {
    if (c.req.method === 'OPTIONS' || c.req.path === options.checkPath) return next()
    const key = await keyOf(c)
    const admission = await limits.admit(key)
    const policy = limits.policy
    const state = admission.remaining !== undefined ? `"requests";r=${admission.remaining};t=${admission.resetSeconds ?? 0}` : undefined
    if (!admission.admitted) {
      const message = admission.unavailable
        ? 'the rate limiter cannot count requests right now; try again shortly'
        : `too many requests; try again in ${admission.retryAfterSeconds} s`
      return c.json(errorBody('rate_limited', message, { retryAfterSeconds: admission.retryAfterSeconds }), 429, {
        'Retry-After': String(admission.retryAfterSeconds),
        'RateLimit-Policy': policy,
        ...(state ? { RateLimit: state } : {}),
      })
    }
    const raw = c.req.raw
    if (limits.throttlesBytes && raw.body) {
      c.req.raw = new Request(raw.url, {
        method: raw.method,
        headers: raw.headers,
        body: throttled(raw.body, (n) => limits.take(key, n)),
        duplex: 'half',
      } as RequestInit)
    }
    await next()
    c.header('RateLimit-Policy', policy)
    if (state) c.header('RateLimit', state)
    if (limits.throttlesBytes && c.req.method === 'GET' && c.res.headers.has('x-accel-redirect')) {
      // nginx sends these bytes (ACCEL_REDIRECT_LOCATION): it limits the rate itself, per download.
      c.header('X-Accel-Limit-Rate', String(limits.bytesPerSecond))
    } else if (limits.throttlesBytes && c.req.method === 'GET' && c.res.body) {
      c.res = new Response(throttled(c.res.body, (n) => limits.take(key, n)), c.res)
    }
  }
}
