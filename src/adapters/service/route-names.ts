/**
 * What a request is, in words that can label a metric: the route it matched as the API declares it
 * (`/filestorage/v1/{store}/upload/{path}`, the OpenTelemetry `http.route`), the operation's
 * `operationId` (`upload`), and the store it names, when that is one of the service's stores. Never
 * the request's own path: the set of values stays as small as the API (a scanner's random paths all
 * label as the empty route).
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { matchedRoutes } from 'hono/route'

export interface RouteName {
  /** The route template, `''` when no route of the API matched. */
  route: string
  /** The route's operationId, `''` for routes without one (the docs page) and for no route. */
  operation: string
  /** The route has a `{store}` segment right after the base path. */
  hasStore: boolean
}

const NO_ROUTE: RouteName = { route: '', operation: '', hasStore: false }

/** `/:store/x/:path{.+}` (Hono) or `/{store}/x/{path{.+}}` (zod-openapi) as `/{store}/x/{path}`. */
const template = (path: string) =>
  path
    .replaceAll(/\/:([A-Za-z0-9_]+)(\{[^/]*?\})?(?=\/|$)/g, '/{$1}')
    .replaceAll(/\{([A-Za-z0-9_]+)\{.*?\}\}/g, '{$1}')
    .replace(/\/\*$/, '/*')

/** Names the routes of `app` (the composed API, mounted at the root of the service's app). */
export function routeNames(app: OpenAPIHono, basePath: string): (c: Context) => RouteName {
  const known = new Map<string, RouteName>()
  const definitions = app.openAPIRegistry.definitions as { type: string; route?: { method: string; path: string; operationId?: string } }[]
  for (const d of definitions) {
    if (d.type !== 'route' || !d.route) continue
    const route = template(d.route.path)
    known.set(`${d.route.method.toUpperCase()} ${route}`, {
      route,
      operation: d.route.operationId ?? '',
      hasStore: route.startsWith(`${basePath}/{store}`),
    })
  }
  const byHonoRoute = new Map<string, RouteName>()
  return (c) => {
    // The handler's own entry (middleware entries have the method ALL); for HEAD, Hono matched GET.
    const matched = matchedRoutes(c).find((r) => r.method !== 'ALL')
    if (!matched) return NO_ROUTE
    const key = `${matched.method} ${matched.path}`
    let name = byHonoRoute.get(key)
    if (!name) {
      const route = template(matched.path)
      name = known.get(`${matched.method} ${route}`) ?? { route, operation: '', hasStore: route.startsWith(`${basePath}/{store}`) }
      byHonoRoute.set(key, name)
    }
    return name
  }
}

/** The store a request names (the segment after the base path), when it is one of `stores`; else `''`. */
export function storeOf(path: string, basePath: string, stores: ReadonlySet<string>): string {
  const start = basePath.length + 1
  const end = path.indexOf('/', start)
  const store = path.slice(start, end < 0 ? undefined : end)
  return stores.has(store) ? store : ''
}
