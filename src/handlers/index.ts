/**
 * The file API: every handler, each usable alone (`createXHandler(deps)` returns a Hono app), and
 * `createFileStorageApp`, which composes them under `/filestorage/v1` with the docs.
 */
import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi'
import { DEFAULT_BASE_PATH } from './base-path.js'
import { abortUploadRoute, createAbortUploadHandler } from './abortupload.js'
import { checkRoute, createCheckHandler } from './check.js'
import { completeUploadRoute, createCompleteUploadHandler } from './completeupload.js'
import { createCreateUploadHandler, createUploadRoute } from './createupload.js'
import { createDeleteHandler, deleteRoute } from './delete.js'
import { createDocsHandler, DOCS_ROUTES } from './docs.js'
import { createDownloadHandler, downloadRoute } from './download.js'
import { createEventsAdminHandler, eventsAdminRoutes } from './events-admin.js'
import { webhookRoutes } from './event-schemas.js'
import type { HandlerDeps } from './handler-app.js'
import { mount } from './mount.js'
import { createHelpHandler, helpRoute } from './help.js'
import { onError, validationHook } from './http-errors.js'
import { createInfoHandler, infoRoute } from './info.js'
import { createListHandler, listRootRoute, listRoute } from './list.js'
import { methodNotAllowedHandler } from './method-not-allowed.js'
import { createMoveHandler, moveRoute } from './move.js'
import { createSignHandler, signRoute } from './sign.js'
import { createTusHandler, tusRoutes } from './tus.js'
import { createUiHandler, UI_ROUTES } from './ui.js'
import { createUploadHandler, uploadFormRoute, uploadRoute } from './upload.js'
import { createUploadPartHandler, uploadPartRoute } from './uploadpart.js'
import { createUploadStatusHandler, uploadStatusRoute } from './uploadstatus.js'
import { createUsageHandler, usageRootRoute, usageRoute } from './usage.js'

export { DEFAULT_BASE_PATH }

export interface FileStorageAppOptions extends HandlerDeps {
  /** Where the API is mounted; `/filestorage/v1` by default. */
  basePath?: string
  service?: { name: string; version: string }
  checkTimeoutMs?: number
}

/** Every route definition of the file API, in the order of SPEC section 3. */
export const fileRoutes: RouteConfig[] = [
  uploadRoute,
  uploadFormRoute,
  downloadRoute,
  infoRoute,
  listRoute,
  listRootRoute,
  moveRoute,
  deleteRoute,
  createUploadRoute,
  uploadPartRoute,
  uploadStatusRoute,
  completeUploadRoute,
  abortUploadRoute,
  ...tusRoutes,
  signRoute,
  usageRoute,
  usageRootRoute,
  checkRoute,
  helpRoute,
  ...eventsAdminRoutes,
]

/** `404`, or `405` with `Allow` for a route of the file API asked with another method. */
export const fileStorageNotFound = (basePath = DEFAULT_BASE_PATH) => methodNotAllowedHandler([...fileRoutes, ...DOCS_ROUTES, ...UI_ROUTES], basePath)

export function createFileStorageApp(options: FileStorageAppOptions): OpenAPIHono {
  const basePath = options.basePath ?? DEFAULT_BASE_PATH
  const app = new OpenAPIHono({ defaultHook: validationHook })
  app.onError(onError)
  app.notFound(fileStorageNotFound(basePath))

  const api = new OpenAPIHono({ defaultHook: validationHook })
  api.onError(onError)
  for (const handler of [
    createUploadHandler(options),
    createDownloadHandler(options),
    createInfoHandler(options),
    createListHandler(options),
    createMoveHandler(options),
    createDeleteHandler(options),
    createCreateUploadHandler(options),
    createUploadPartHandler(options),
    createUploadStatusHandler(options),
    createCompleteUploadHandler(options),
    createAbortUploadHandler(options),
    createTusHandler(options),
    createSignHandler(options),
    createUsageHandler(options),
    createCheckHandler(options),
    createEventsAdminHandler(options),
    createHelpHandler({ basePath, routes: fileRoutes, ...(options.service ? { service: options.service } : {}) }),
  ]) {
    mount(api, '/', handler)
  }
  mount(api, '/', createUiHandler())
  for (const webhook of webhookRoutes) api.openAPIRegistry.registerWebhook(webhook)
  mount(
    api,
    '/',
    createDocsHandler({
      app: api,
      basePath,
      storeNames: options.stores.names(),
      ...(options.events ? { consumerNames: options.events.consumers() } : {}),
      ...(options.service ? { service: options.service } : {}),
      securitySchemes: options.access?.authorizer.securitySchemes ?? {},
      rateLimited: options.rateLimits !== undefined,
    }),
  )
  mount(app, basePath, api)
  return app
}

export type { HandlerDeps, LocalFileSender, UrlOptions } from './handler-app.js'
export { createHandlerApp } from './handler-app.js'
export { mount } from './mount.js'
export { accessMiddleware, type AccessOptions, allows, authorize, type Grant, OPEN_ACCESS, principalOf } from './access.js'
export { isActiveType, isMediaType, parseMediaType } from './media-type.js'
export { errorBody, ErrorSchema, notFoundHandler, onError, statusOf, validationHook } from './http-errors.js'
export { buildOpenApiDocument, createDocsHandler } from './docs.js'
export { createUiHandler, UI_CSP, type UiOptions } from './ui.js'
export { beforeDelete, beforeUpload, type ChangeHooks, type HookRequest, type HookVerdict } from './hooks.js'
export { type ConsumerOverview, type DeadLetterView, type EventsAdmin, type EventsOverview, eventsAdminRoutes } from './events-admin.js'
export { EventPayloadSchema, webhookRoutes } from './event-schemas.js'
export { originOf, requestIdOf } from './request-id.js'
export {
  createUploadHandler,
  createDownloadHandler,
  createInfoHandler,
  createListHandler,
  createMoveHandler,
  createDeleteHandler,
  createCreateUploadHandler,
  createUploadPartHandler,
  createUploadStatusHandler,
  createCompleteUploadHandler,
  createAbortUploadHandler,
  createTusHandler,
  createSignHandler,
  createUsageHandler,
  createCheckHandler,
  createEventsAdminHandler,
  createHelpHandler,
}
export {
  uploadRoute,
  uploadFormRoute,
  downloadRoute,
  infoRoute,
  listRoute,
  listRootRoute,
  moveRoute,
  deleteRoute,
  createUploadRoute,
  uploadPartRoute,
  uploadStatusRoute,
  completeUploadRoute,
  abortUploadRoute,
  tusRoutes,
  signRoute,
  usageRoute,
  usageRootRoute,
  checkRoute,
  helpRoute,
}
