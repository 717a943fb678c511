/**
 * createupload: `POST /{store}/createupload/{path}` starts a large upload in parts (SPEC 3.3).
 */
import { createRoute, z } from '@hono/zod-openapi'
import { validateMetadata, type CreateUploadOptions } from '../storage/index.js'
import { authorize, ownerOf } from './access.js'
import { parseMediaType } from './media-type.js'
import { requestPath } from './request-path.js'
import { withBoundedJsonBody } from './json-body.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { beforeUpload } from './hooks.js'
import { originOf } from './request-id.js'
import { metadataHeader, writePreconditions } from './request-options.js'
import { CreateOnlyHeader, EtagListHeader, MediaTypeField, MetadataHeader, MetadataSchema, PathParam, StoreParam, UploadSessionSchema } from './schemas.js'

const CreateUploadBody = z
  .object({
    contentType: MediaTypeField('Content type of the assembled file; empty is taken as absent.')
      .or(z.literal(''))
      .optional(),
    metadata: MetadataSchema.optional(),
    size: z
      .number()
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER) // said in the OpenAPI document, which a bare int() leaves out
      .optional()
      .openapi({
        description:
          'The size of the assembled file, when known: the parts may not add up to more, completing needs exactly this many bytes ' +
          '(`409 upload_incomplete` otherwise), and where quotas hold it is reserved at once (`403 quota_exceeded` before any part is sent).',
        example: 104857600,
      }),
  })
  .openapi('CreateUploadRequest')

export const createUploadRoute = createRoute({
  method: 'post',
  path: '/{store}/createupload/{path{[\\s\\S]*}}',
  operationId: 'createUpload',
  tags: ['uploads in parts'],
  summary: 'Start an upload in parts',
  description:
    'Parts are then sent with uploadpart (numbered from 1, any order, in parallel; re-sending replaces) and ' +
    'assembled by completeupload. `If-None-Match: *` and `If-Match` are checked now and again at completion.',
  request: {
    params: z.object({ store: StoreParam, path: PathParam }),
    headers: z.object({
      'if-none-match': CreateOnlyHeader.optional(),
      'if-match': EtagListHeader('Complete only if the file still has this ETag (`412` otherwise).').optional(),
      'x-file-metadata': MetadataHeader.optional(),
    }),
    body: { content: { 'application/json': { schema: CreateUploadBody } }, required: false },
  },
  responses: {
    201: { description: 'The upload', content: { 'application/json': { schema: UploadSessionSchema } } },
    ...errorResponses(400, 403, 404, 408, 409, 412, 413, 501, 503, 507),
  },
})

export function createCreateUploadHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [createUploadRoute])
  app.openapi(withBoundedJsonBody(createUploadRoute, deps), async (c) => {
    const { store, path: rawPath } = c.req.valid('param')
    const body = c.req.valid('json')
    const driver = deps.stores.get(store)
    const path = requestPath(c, rawPath)
    await authorize(c, { operation: 'createUpload', action: 'write', store, path })
    const given = body.metadata ? validateMetadata(body.metadata) : metadataHeader(c)
    const contentType = body.contentType ? parseMediaType(body.contentType, 'contentType') : undefined
    const metadata = await beforeUpload(c, deps.hooks, {
      operation: 'createUpload',
      store,
      path,
      ...(contentType !== undefined ? { contentType } : {}),
      ...(given ? { metadata: given } : {}),
    })
    const options: CreateUploadOptions = {
      ...writePreconditions(c),
      owner: ownerOf(c),
      ...(contentType !== undefined ? { contentType } : {}),
      ...(metadata ? { metadata } : {}),
      ...(body.size !== undefined ? { totalSize: body.size } : {}),
      ...(deps.maxUploadBytes !== undefined ? { maxBytes: deps.maxUploadBytes } : {}),
      origin: originOf(c),
    }
    return c.json(await driver.createUpload(path, options), 201)
  })
  return app
}
