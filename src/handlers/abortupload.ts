/**
 * abortupload: `DELETE /{store}/abortupload/{uploadId}` discards an upload and its parts.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { ownedUpload } from './upload-owner.js'
import { originOf } from './request-id.js'
import { errorResponses } from './http-errors.js'
import { StoreParam, UploadIdParam } from './schemas.js'

export const abortUploadRoute = createRoute({
  method: 'delete',
  path: '/{store}/abortupload/{uploadId}',
  operationId: 'abortUpload',
  tags: ['uploads in parts'],
  summary: 'Discard an upload and its parts',
  request: { params: z.object({ store: StoreParam, uploadId: UploadIdParam }) },
  responses: { 204: { description: 'Discarded' }, ...errorResponses(404, 503) },
})

export function createAbortUploadHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [abortUploadRoute])
  app.openapi(abortUploadRoute, async (c) => {
    const { store, uploadId } = c.req.valid('param')
    const driver = deps.stores.get(store)
    await ownedUpload(c, driver, store, uploadId, 'abortUpload')
    await driver.abortUpload(uploadId, { origin: originOf(c) })
    return c.body(null, 204)
  })
  return app
}
