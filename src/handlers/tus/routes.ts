/**
 * The tus routes as OpenAPI documents them. The protocol's answers are mostly headers, so the
 * handler reads its headers itself (tus wants its own statuses for bad ones: 412, 415); these
 * definitions only document the routes, their headers and statuses.
 */
import { createRoute, type RouteConfig, z } from '@hono/zod-openapi'
import { ErrorSchema, errorResponses } from '../http-errors.js'
import { StoreParam } from '../schemas.js'
import { BYTE_COUNT, UPLOAD_CHECKSUM, UPLOAD_METADATA } from './protocol.js'

const TAG = 'resumable uploads (tus)'

const UploadIdParam = z.string().openapi({
  param: { name: 'uploadId', in: 'path' },
  description: 'The last segment of the `Location` a creation answered.',
  example: '4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99',
})

const header = (description: string, type: 'string' | 'integer' = 'string') => ({ description, schema: { type } })
const tusResumable = { 'Tus-Resumable': header('`1.0.0`') }
const progress = {
  ...tusResumable,
  'Upload-Offset': header('Bytes received so far.', 'integer'),
  'Upload-Length': header('Size of the whole upload (absent while deferred).', 'integer'),
  'Upload-Defer-Length': header('`1` while the size is not known yet.'),
  'Upload-Metadata': header('As the client sent it at creation.'),
  'Upload-Expires': header('When the unfinished upload expires (RFC 9110 date).'),
}
const finished = {
  'X-File-Path': header('When this request completed the upload: the path of the file (percent-encoded).'),
  'X-Content-SHA256': header('When this request completed the upload: the sha256 of the file.'),
}

/**
 * What the tus headers take: the grammars the handler parses them with (protocol.ts), so the
 * document says exactly what it accepts. `Tus-Resumable` is required by every request but OPTIONS.
 * Two rules are the handler's alone, as no schema of independent headers can say them: a creation
 * sends exactly one of `Upload-Length` and `Upload-Defer-Length`, and `Upload-Metadata`'s keys are
 * unique and its values UTF-8 text (its description says so; its format names that grammar).
 */
const HEADER_SCHEMAS: Record<string, z.ZodType> = {
  'tus-resumable': z.literal('1.0.0'),
  'upload-length': z.string().regex(BYTE_COUNT).openapi({ example: '11' }),
  'upload-offset': z.string().regex(BYTE_COUNT),
  'upload-defer-length': z.literal('1'),
  'upload-metadata': z.string().regex(UPLOAD_METADATA).openapi({
    format: 'tus-upload-metadata',
    example: 'filename c3VtbWFyeS5wZGY=,filetype YXBwbGljYXRpb24vcGRm',
  }),
  'if-none-match': z.literal('*'),
  'upload-checksum': z.string().regex(UPLOAD_CHECKSUM).openapi({ example: 'sha256 n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=' }),
}
const REQUIRED = new Set(['tus-resumable', 'upload-offset'])

const requestHeaders = (shape: Record<string, string>) =>
  z.object(
    Object.fromEntries(
      Object.entries(shape).map(([name, description]) => {
        const schema = (HEADER_SCHEMAS[name] ?? z.string()).openapi({ description })
        return [name, REQUIRED.has(name) ? schema : schema.optional()]
      }),
    ),
  )

const json = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } })
const missingVersion = { 412: json('`precondition_failed`: no or an unsupported `Tus-Resumable` (the answer carries `Tus-Version`)') }

/** What a request carrying upload data can answer besides success. */
const dataErrors = {
  ...errorResponses(400, 403, 404, 408, 409, 412, 413, 415, 501, 503, 507),
  ...missingVersion,
  460: json('`checksum_mismatch`: the body does not match `Upload-Checksum`; nothing of it is kept'),
}

/** Upload data: any bytes, as `application/offset+octet-stream`. */
const uploadData = (required: boolean) => ({
  content: { 'application/offset+octet-stream': { schema: { type: 'string' as const, format: 'binary' } } },
  required,
})

const dataHeaders = {
  'upload-checksum': '`sha1 <base64>` or `sha256 <base64>` of this request\'s body (checksum extension); `460` on a mismatch.',
}

export const tusOptionsRoute = createRoute({
  method: 'options',
  path: '/{store}/tus/',
  operationId: 'tusOptions',
  tags: [TAG],
  summary: 'What this tus server supports',
  request: { params: z.object({ store: StoreParam }) },
  responses: {
    204: {
      description: 'Capabilities',
      headers: {
        'Tus-Version': header('`1.0.0`'),
        'Tus-Extension': header('creation, creation-with-upload, creation-defer-length, termination, checksum, expiration'),
        'Tus-Checksum-Algorithm': header('`sha1,sha256`'),
        'Tus-Max-Size': header('`MAX_UPLOAD_BYTES`, when set.', 'integer'),
      },
    },
    ...errorResponses(404),
  },
})

export const tusCreateRoute = createRoute({
  method: 'post',
  path: '/{store}/tus/',
  operationId: 'tusCreate',
  tags: [TAG],
  summary: 'Create a resumable upload (tus creation, creation-with-upload)',
  description:
    '`Upload-Metadata` decides where the file goes: `path` (the whole path), or `dir` and `filename` (or `name`); ' +
    'without a name the file gets a random one. `filetype` (or `type`) is its content type; every other key ' +
    'becomes its metadata. A body sent along (as `application/offset+octet-stream`) is the upload\'s first bytes.',
  request: {
    params: z.object({ store: StoreParam }),
    headers: requestHeaders({
      'tus-resumable': '`1.0.0` (required).',
      'upload-length': 'Size of the whole upload in bytes.',
      'upload-defer-length': '`1` when the size is not known yet (send `Upload-Length` on a later PATCH).',
      'upload-metadata': 'Comma-separated `key base64(value)` pairs: unique keys, values of UTF-8 text.',
      'if-none-match': '`*`: never replace an existing file (`412`), checked now and at completion.',
      ...dataHeaders,
    }),
    body: uploadData(false),
  },
  responses: {
    201: { description: 'Created; `Location` is the upload\'s URL', headers: { Location: header('URL of the upload.'), ...progress, ...finished } },
    ...dataErrors,
  },
})

export const tusHeadRoute = createRoute({
  method: 'head',
  path: '/{store}/tus/{uploadId}',
  operationId: 'tusHead',
  tags: [TAG],
  summary: 'Where an upload stands (resume from `Upload-Offset`)',
  request: { params: z.object({ store: StoreParam, uploadId: UploadIdParam }), headers: requestHeaders({ 'tus-resumable': '`1.0.0` (required).' }) },
  responses: {
    200: { description: 'The upload (no body)', headers: { ...progress, 'Cache-Control': header('`no-store`') } },
    404: { description: 'No such upload: unknown, completed, terminated or expired (no body)' },
    409: { description: 'Every byte arrived but the file cannot be stored there (no body); see 412' },
    412: {
      description:
        'No or an unsupported `Tus-Resumable`; or every byte arrived and completing, tried again by this HEAD, ' +
        'still fails its `If-None-Match: *` (no body)',
    },
    503: { description: 'The store is unavailable (no body)' },
  },
})

export const tusPatchRoute = createRoute({
  method: 'patch',
  path: '/{store}/tus/{uploadId}',
  operationId: 'tusPatch',
  tags: [TAG],
  summary: 'Send bytes at an offset; the last ones complete the file',
  description:
    'The body is appended at `Upload-Offset`, which must be where the upload stands (`409` otherwise). A body cut off ' +
    'part-way keeps what arrived; resume from HEAD\'s `Upload-Offset`. When the offset reaches `Upload-Length` the file ' +
    'appears at its path, atomically, with its sha256, as a PUT would store it. A POST with `X-HTTP-Method-Override: PATCH` ' +
    '(or `DELETE`) is taken as that method, for clients that cannot send PATCH.',
  request: {
    params: z.object({ store: StoreParam, uploadId: UploadIdParam }),
    headers: requestHeaders({
      'tus-resumable': '`1.0.0` (required).',
      'upload-offset': 'Where this body starts (required).',
      'upload-length': 'The size of the whole, for an upload created with `Upload-Defer-Length: 1`.',
      ...dataHeaders,
    }),
    body: uploadData(true),
  },
  responses: {
    204: { description: 'Stored', headers: { ...progress, ...finished } },
    ...dataErrors,
  },
})

export const tusDeleteRoute = createRoute({
  method: 'delete',
  path: '/{store}/tus/{uploadId}',
  operationId: 'tusTerminate',
  tags: [TAG],
  summary: 'Terminate an upload: its bytes are discarded (termination)',
  request: { params: z.object({ store: StoreParam, uploadId: UploadIdParam }), headers: requestHeaders({ 'tus-resumable': '`1.0.0` (required).' }) },
  responses: { 204: { description: 'Terminated', headers: tusResumable }, ...errorResponses(404), ...missingVersion },
})

export const tusRoutes: RouteConfig[] = [tusOptionsRoute, tusCreateRoute, tusHeadRoute, tusPatchRoute, tusDeleteRoute]
