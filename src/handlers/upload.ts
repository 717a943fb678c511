/**
 * upload: `PUT /{store}/upload/{path}` streams the raw body into one file; `POST /{store}/upload/{path}`
 * streams the `file` parts of a multipart form into the folder `path`.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import {
  fileInfo,
  joinPath,
  parseMetadata,
  parseName,
  StorageError,
  type FileInfo,
  type PutResult,
  type Store,
} from '../storage/index.js'
import { authorize, grantedContentType, uploadLimit } from './access.js'
import { requestPath } from './request-path.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { beforeUpload, type ChangeHooks } from './hooks.js'
import { originOf } from './request-id.js'
import { errorResponses } from './http-errors.js'
import { parseMediaType } from './media-type.js'
import { formParts } from './multipart.js'
import { metadataHeader, putOptions, requestBody, writePreconditions } from './request-options.js'
import { CreateOnlyHeader, EtagListHeader, FormFolderParam, FileInfoSchema, MetadataHeader, PathParam, Sha256Header, StoreParam } from './schemas.js'

const uploadHeaders = z.object({
  'x-file-metadata': MetadataHeader.optional(),
  'x-content-sha256': Sha256Header('Hex sha256 the body must have; on mismatch nothing is stored (`400 checksum_mismatch`).').optional(),
  'if-none-match': CreateOnlyHeader.optional(),
  'if-match': EtagListHeader('Replace only the version with this ETag (`412` otherwise).').optional(),
})

export const uploadRoute = createRoute({
  method: 'put',
  path: '/{store}/upload/{path{[\\s\\S]*}}',
  operationId: 'upload',
  tags: ['files'],
  summary: 'Upload a file (raw body, streamed)',
  description:
    'Streams the request body into the file at `path`, atomically: readers see the old file or the new one. ' +
    'The `Content-Type` header becomes the file\'s content type (guessed from the name when absent or generic).',
  request: {
    params: z.object({ store: StoreParam, path: PathParam }),
    headers: uploadHeaders,
    body: { content: { '*/*': { schema: { type: 'string', format: 'binary' } } }, required: true },
  },
  responses: {
    200: { description: 'Replaced an existing file', content: { 'application/json': { schema: FileInfoSchema } } },
    201: { description: 'Created a new file', content: { 'application/json': { schema: FileInfoSchema } } },
    ...errorResponses(400, 403, 404, 408, 409, 412, 413, 501, 503, 507),
  },
})

export const uploadFormRoute = createRoute({
  method: 'post',
  path: '/{store}/upload/{path{[\\s\\S]*}}',
  operationId: 'uploadForm',
  tags: ['files'],
  summary: 'Upload files from a multipart form',
  description:
    'Each `file` part is stored in the folder `path` (empty for the root) under its file name, streamed. A `metadata` field (JSON) ' +
    'applies to the file parts after it. If a part fails, the files this request created are removed.',
  request: {
    params: z.object({ store: StoreParam, path: FormFolderParam }),
    headers: uploadHeaders.pick({ 'if-none-match': true, 'x-file-metadata': true }),
    body: {
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            properties: {
              metadata: { type: 'object', description: 'JSON object for the files that follow' },
              file: { type: 'array', items: { type: 'string', format: 'binary' }, minItems: 1 },
            },
            required: ['file'],
            // Other fields are ignored, but a field name travels in a part header, where control
            // characters (other than tab) make the form malformed (400).
            propertyNames: { pattern: '^[^\\x00-\\x08\\x0a-\\x1f\\x7f]*$' },
          },
          encoding: { metadata: { contentType: 'application/json' } },
        },
      },
      required: true,
    },
  },
  responses: {
    201: {
      description: 'The stored files, in form order',
      content: { 'application/json': { schema: z.array(FileInfoSchema) } },
    },
    ...errorResponses(400, 403, 404, 408, 409, 412, 413, 501, 503, 507),
  },
})

const FORM_LIMITS = { fieldBytes: 64 * 1024, fields: 100, files: 1000 }

export function createUploadHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [uploadRoute, uploadFormRoute])

  app.openapi(uploadRoute, async (c) => {
    const { store, path: rawPath } = c.req.valid('param')
    const driver = deps.stores.get(store)
    const path = requestPath(c, rawPath)
    const grant = await authorize(c, { operation: 'upload', action: 'write', store, path })
    const options = putOptions(c, uploadLimit(deps.maxUploadBytes, grant))
    const contentType = grantedContentType(options.contentType, grant, 'Content-Type')
    if (contentType !== undefined) options.contentType = contentType
    const metadata = await beforeUpload(c, deps.hooks, {
      operation: 'upload',
      store,
      path,
      ...(options.expectedSize !== undefined ? { size: options.expectedSize } : {}),
      ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
    })
    if (metadata) options.metadata = metadata
    options.origin = originOf(c)
    const { file, created } = await driver.put(path, requestBody(c), options)
    return c.json(fileInfo(store, file), created ? 201 : 200, { ETag: file.etag })
  })

  app.openapi(uploadFormRoute, async (c) => {
    const { store, path: rawDir } = c.req.valid('param')
    const driver = deps.stores.get(store)
    const dir = requestPath(c, rawDir, { folder: true })
    // The folder first: a right on it covers every file the form can put there.
    await authorize(c, { operation: 'uploadForm', action: 'write', store, path: dir })
    const contentType = c.req.header('content-type') ?? ''
    if (!/^multipart\/form-data\s*;/i.test(contentType)) {
      throw new StorageError('invalid_request', 'this route takes a multipart/form-data body')
    }
    const conditions = writePreconditions(c)
    let metadata = metadataHeader(c)
    const stored: FileInfo[] = []
    const created: string[] = []
    try {
      for await (const part of formParts(requestBody(c), contentType, FORM_LIMITS)) {
        if (part.kind === 'field') {
          if (part.name === 'metadata') metadata = parseMetadata(part.value)
          continue
        }
        if (part.name !== 'file') {
          throw new StorageError('invalid_request', `unexpected file field "${part.name}": file parts are named "file"`)
        }
        if (part.filename === '') throw new StorageError('invalid_request', 'a file part has no file name')
        const path = joinPath(dir, parseName(part.filename))
        await authorize(c, { operation: 'uploadForm', action: 'write', store, path })
        const result = await storePart(c, { driver, hooks: deps.hooks, store, path, metadata, conditions, maxBytes: deps.maxUploadBytes }, part)
        stored.push(fileInfo(store, result.file))
        if (result.created) created.push(result.file.path)
      }
    } catch (e) {
      // All or nothing for what this request created; files it replaced stay replaced.
      await Promise.allSettled(created.map((p) => driver.delete(p, { origin: originOf(c) })))
      throw e
    }
    if (stored.length === 0) throw new StorageError('invalid_request', 'the form has no "file" part')
    return c.json(stored, 201)
  })

  return app
}

/** One file of a form: asked of the pre-upload hook, then stored. */
async function storePart(
  c: Context,
  into: {
    driver: Store
    hooks: ChangeHooks | undefined
    store: string
    path: string
    metadata: Record<string, unknown> | undefined
    conditions: ReturnType<typeof writePreconditions>
    maxBytes: number | undefined
  },
  part: { contentType: string; body: ReadableStream<Uint8Array> },
): Promise<PutResult> {
  const { driver, store, path, maxBytes } = into
  const contentType = parseMediaType(part.contentType, "a file part's Content-Type")
  const metadata = await beforeUpload(c, into.hooks, { operation: 'uploadForm', store, path, contentType, ...(into.metadata ? { metadata: into.metadata } : {}) })
  return driver.put(path, part.body, {
    ...into.conditions,
    contentType,
    ...(metadata ? { metadata } : {}),
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    origin: originOf(c),
  })
}
