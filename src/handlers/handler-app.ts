/**
 * What every handler shares: its dependencies, and a fresh OpenAPIHono app that answers errors
 * as JSON (SPEC 3.5) and guards its own routes (access.ts), so each handler can be mounted alone.
 */
import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { ByteRange, StoreRegistry } from '../storage/index.js'
import { accessMiddleware, type AccessOptions, OPEN_ACCESS } from './access.js'
import type { EventsAdmin } from './events-admin.js'
import type { ChangeHooks } from './hooks.js'
import { onError, validationHook } from './http-errors.js'

export interface HandlerDeps {
  stores: StoreRegistry
  /** Uploads larger than this get `413 payload_too_large`; unlimited when unset. */
  maxUploadBytes?: number
  /**
   * A JSON body (move, createupload, completeupload, sign) must arrive whole within this, else
   * `408 request_timeout`; unlimited when unset. Streamed bodies have no such deadline.
   */
  jsonBodyTimeoutMs?: number
  /**
   * Who may do what (SPEC 6). Unset: everyone may do everything, as for a host app that
   * authenticates on its own; the node adapter always sets it.
   */
  access?: AccessOptions
  /** How absolute URLs (a tus upload's `Location`, signed URLs) are built. */
  urls?: UrlOptions
  /**
   * nginx sends the bytes (X-Accel-Redirect): downloads of files a store can name on the local file
   * system (`Store.localVersion`) are answered with their headers and this internal
   * location followed by that name, which nginx maps to the store's folder. Unset: never.
   */
  accelRedirect?: string
  /** Blocking hooks asked before uploads and deletes (hooks.ts); none when unset. */
  hooks?: ChangeHooks
  /** The events' dead letters and backlog (events-admin.ts, `/check`); unset: no events. */
  events?: EventsAdmin
  /**
   * The runtime sends the bytes of large downloads itself (the bun adapter: `Bun.file`, sendfile),
   * where the store names the very version on the local file system (`StorageDriver.localVersion`).
   * Unset: the handler streams them.
   */
  localFiles?: LocalFileSender
  /** The service's rate limiter, whose health `/check` reports; unset: none. */
  rateLimits?: { health(): { status: 'ok' | 'degraded'; message?: string } | undefined }
}

/** A runtime's own way of sending a file of a store's local file system (see `HandlerDeps.localFiles`). */
export interface LocalFileSender {
  /** The stores whose files it sends. */
  stores: string[]
  /** Files of at least this many bytes are sent this way; smaller ones as bytes from memory or a stream. */
  minBytes: number
  /**
   * The answer that sends `name` (relative to the store's folder), or its `range`, with the status
   * and headers the handler decided (Content-Length, Content-Range included).
   */
  send(file: { store: string; name: string; range?: ByteRange; status: 200 | 206; headers: Record<string, string> }): Response
}

export interface UrlOptions {
  /** The base clients reach the service at (`https://files.example.com`, with a path a proxy strips). */
  publicUrl?: string
  /** Whether this request comes from a proxy whose `Forwarded`/`X-Forwarded-*` headers are believed. */
  trustForwarded?: (c: Context) => boolean
}

/** The Hono form of a route's path (`/{store}/x/{path{.+}}` is `/:store/x/:path{.+}`), as zod-openapi registers it. */
const honoPath = (path: string) => path.replaceAll(/\/{(.+?)}/g, '/:$1')

/**
 * A handler's app. `guarded` lists its routes (definitions or Hono paths): each gets the access
 * middleware before anything else runs; `public` routes authenticate without requiring it.
 */
export function createHandlerApp(
  deps?: Pick<HandlerDeps, 'access'>,
  guarded: (RouteConfig | string)[] = [],
  options: { public?: boolean } = {},
): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook })
  app.onError(onError)
  const middleware = accessMiddleware(deps?.access ?? OPEN_ACCESS, options)
  const paths = new Set(guarded.map((r) => (typeof r === 'string' ? r : honoPath(r.path))))
  for (const path of paths) app.use(path, middleware)
  return app
}
