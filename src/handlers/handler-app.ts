/**
 * What every handler shares: its dependencies, and a fresh OpenAPIHono app that answers errors
 * as JSON (SPEC 3.5), so each handler can be mounted alone in another app.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { StoreRegistry } from '../storage/index.js'
import { onError, validationHook } from './http-errors.js'

export interface HandlerDeps {
  stores: StoreRegistry
  /** Uploads larger than this get `413 payload_too_large`; unlimited when unset. */
  maxUploadBytes?: number
  /**
   * A JSON body (move, createupload, completeupload) must arrive whole within this, else
   * `408 request_timeout`; unlimited when unset. Streamed bodies have no such deadline.
   */
  jsonBodyTimeoutMs?: number
}

export function createHandlerApp(): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook })
  app.onError(onError)
  return app
}
