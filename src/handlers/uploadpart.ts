/**
 * uploadpart: `PUT /{store}/uploadpart/{uploadId}?part=N` stores one part (raw body, streamed).
 */
import { createRoute, z } from '@hono/zod-openapi'
import { MAX_PART_NUMBER, type PutPartOptions } from '../storage/index.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { ownedUpload } from './upload-owner.js'
import { errorResponses } from './http-errors.js'
import { contentLength, requestBody, sha256Header } from './request-options.js'
import { decimalQuery, PartInfoSchema, Sha256Header, StoreParam, UploadIdParam } from './schemas.js'

export const uploadPartRoute = createRoute({
  method: 'put',
  path: '/{store}/uploadpart/{uploadId}',
  operationId: 'uploadPart',
  tags: ['uploads in parts'],
  summary: 'Upload one part',
  description: 'Re-sending a part number replaces that part. `X-Content-SHA256` checks the part.',
  request: {
    params: z.object({ store: StoreParam, uploadId: UploadIdParam }),
    query: z.object({
      part: decimalQuery(1, MAX_PART_NUMBER, 'Part number, from 1.'),
    }),
    headers: z.object({ 'x-content-sha256': Sha256Header('Hex sha256 the part must have (`400 checksum_mismatch` otherwise).').optional() }),
    body: { content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } }, required: true },
  },
  responses: {
    200: { description: 'The part as stored', content: { 'application/json': { schema: PartInfoSchema } } },
    ...errorResponses(400, 403, 404, 408, 413, 503, 507),
  },
})

export function createUploadPartHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [uploadPartRoute])
  app.openapi(uploadPartRoute, async (c) => {
    const { store, uploadId } = c.req.valid('param')
    const { part } = c.req.valid('query')
    const driver = deps.stores.get(store)
    await ownedUpload(c, driver, store, uploadId, 'uploadPart')
    const options: PutPartOptions = {}
    const sha256 = sha256Header(c)
    if (sha256) options.expectedSha256 = sha256
    const size = contentLength(c, deps.maxUploadBytes)
    if (size !== undefined) options.expectedSize = size
    return c.json(await driver.putPart(uploadId, part, requestBody(c), options), 200)
  })
  return app
}
