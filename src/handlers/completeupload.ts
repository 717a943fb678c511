/**
 * completeupload: `POST /{store}/completeupload/{uploadId}` assembles the parts, in order, into the
 * file, atomically.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { fileInfo, MAX_PART_NUMBER, parseSha256, type CompleteUploadOptions } from '../storage/index.js'
import { withBoundedJsonBody } from './json-body.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { ownedUpload } from './upload-owner.js'
import { originOf } from './request-id.js'
import { errorResponses } from './http-errors.js'
import { FileInfoSchema, StoreParam, UploadIdParam } from './schemas.js'

const CompleteUploadBody = z
  .object({
    parts: z
      .array(z.number().int().min(1).max(MAX_PART_NUMBER))
      .max(MAX_PART_NUMBER)
      // Each part once (checked here too, so a retried completion of a finished upload refuses the
      // same bodies); in any order, as a part's number is its place.
      .refine((parts) => new Set(parts).size === parts.length, 'lists a part more than once')
      .optional()
      .openapi({ uniqueItems: true, description: 'Parts to assemble, each once, in any order; all received parts (1..N, no gap) when omitted.' }),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hexadecimal characters')
      .optional()
      .openapi({ description: 'Hex sha256 the assembled file must have.' }),
  })
  .openapi('CompleteUploadRequest')

export const completeUploadRoute = createRoute({
  method: 'post',
  path: '/{store}/completeupload/{uploadId}',
  operationId: 'completeUpload',
  tags: ['uploads in parts'],
  summary: 'Assemble the parts into the file',
  description: 'A missing part gives `409 upload_incomplete`; the upload stays open so it can be sent.',
  request: {
    params: z.object({ store: StoreParam, uploadId: UploadIdParam }),
    body: { content: { 'application/json': { schema: CompleteUploadBody } }, required: false },
  },
  responses: {
    200: { description: 'Replaced an existing file', content: { 'application/json': { schema: FileInfoSchema } } },
    201: { description: 'Created the file', content: { 'application/json': { schema: FileInfoSchema } } },
    ...errorResponses(400, 404, 408, 409, 412, 413, 501, 503, 507),
  },
})

export function createCompleteUploadHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [completeUploadRoute])
  app.openapi(withBoundedJsonBody(completeUploadRoute, deps), async (c) => {
    const { store, uploadId } = c.req.valid('param')
    const driver = deps.stores.get(store)
    // A finished upload too: a retry after a crash answers the stored file (to its owner only).
    await ownedUpload(c, driver, store, uploadId, 'completeUpload', { finished: true })
    const body = c.req.valid('json')
    const options: CompleteUploadOptions = { origin: originOf(c) }
    if (body.parts) options.parts = body.parts
    if (body.sha256) options.expectedSha256 = parseSha256(body.sha256)
    const { file, created } = await driver.completeUpload(uploadId, options)
    return c.json(fileInfo(store, file), created ? 201 : 200, { ETag: file.etag })
  })
  return app
}
