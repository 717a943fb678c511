/**
 * uploadstatus: `GET /{store}/uploadstatus/{uploadId}` lists the parts received so far.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { ownedUpload } from './upload-owner.js'
import { errorResponses } from './http-errors.js'
import { StoreParam, UploadIdParam, UploadStatusSchema } from './schemas.js'

export const uploadStatusRoute = createRoute({
  method: 'get',
  path: '/{store}/uploadstatus/{uploadId}',
  operationId: 'uploadStatus',
  tags: ['uploads in parts'],
  summary: 'Show an upload and its parts',
  request: { params: z.object({ store: StoreParam, uploadId: UploadIdParam }) },
  responses: {
    200: { description: 'The upload', content: { 'application/json': { schema: UploadStatusSchema } } },
    ...errorResponses(404, 503),
  },
})

export function createUploadStatusHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [uploadStatusRoute])
  app.openapi(uploadStatusRoute, async (c) => {
    const { store, uploadId } = c.req.valid('param')
    const { owner: _owner, ...status } = await ownedUpload(c, deps.stores.get(store), store, uploadId, 'uploadStatus')
    return c.json(status, 200)
  })
  return app
}
