/**
 * A known route asked with a method it does not take answers `405 method_not_allowed` with `Allow`
 * (RFC 9110 15.5.6), not `404`: the resource is there, the method is not.
 */
import type { Context } from 'hono'
import { errorBody, notFoundHandler } from './http-errors.js'

export interface RouteShape {
  method: string
  /** Hono route syntax: `{name}` is one segment, `{name{regex}}` matches the regex. */
  path: string
}

const escape = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')

/** The regular expression a Hono route path matches. */
export function routePattern(path: string): RegExp {
  let out = ''
  for (let i = 0; i < path.length; ) {
    if (path[i] !== '{') {
      const next = path.indexOf('{', i)
      const end = next === -1 ? path.length : next
      out += escape(path.slice(i, end))
      i = end
      continue
    }
    // {name} or {name{regex}}: the regex may itself hold braces, so count them.
    let depth = 0
    let j = i
    for (; j < path.length; j++) {
      if (path[j] === '{') depth++
      else if (path[j] === '}' && --depth === 0) break
    }
    const inner = path.slice(i + 1, j)
    const open = inner.indexOf('{')
    out += open === -1 ? '[^/]+' : `(?:${inner.slice(open + 1, -1)})`
    i = j + 1
  }
  return new RegExp(`^${out}$`)
}

/** A notFound handler answering 405 for the paths of `routes` (under `basePath`) asked with another method. */
export function methodNotAllowedHandler(routes: RouteShape[], basePath: string) {
  const patterns = routes.map((r) => ({ method: r.method.toUpperCase(), pattern: routePattern(r.path) }))
  return (c: Context): Response => {
    const path = c.req.path.startsWith(basePath) ? c.req.path.slice(basePath.length) : undefined
    if (path === undefined) return notFoundHandler(c)
    const allowed = new Set(patterns.filter((p) => p.pattern.test(path)).map((p) => p.method))
    if (allowed.has('GET')) allowed.add('HEAD')
    if (allowed.size === 0 || allowed.has(c.req.method)) return notFoundHandler(c)
    const allow = [...allowed].sort().join(', ')
    return c.json(errorBody('method_not_allowed', `${c.req.method} is not allowed here; allowed: ${allow}`), 405, { Allow: allow })
  }
}
