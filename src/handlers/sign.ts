/**
 * sign: `POST /{store}/sign/{path}` with `{ operation, expiresIn?, maxBytes?, contentType? }` answers
 * a URL that grants that one operation on that path to whoever holds it, until it expires (SPEC 6):
 * `download` (GET or HEAD), `upload` (PUT of the raw body) or `tus` (a tus creation whose file is
 * that path; its Location is signed too). The caller needs the right the operation needs on the path.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { DEFAULT_EXPIRY_SECONDS, type SignedOperation } from '../auth/index.js'
import { StorageError } from '../storage/index.js'
import { authorize, signerOf } from './access.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { withBoundedJsonBody } from './json-body.js'
import { parseMediaType } from './media-type.js'
import { requestPath } from './request-path.js'
import { MediaTypeField, PathParam, StoreParam } from './schemas.js'
import { publicUrl } from './tus/location.js'

const OPERATIONS = {
  download: { signed: 'download', method: 'GET', action: 'read', verb: 'download' },
  upload: { signed: 'upload', method: 'PUT', action: 'write', verb: 'upload' },
  tus: { signed: 'tusCreate', method: 'POST', action: 'write', verb: 'tus' },
} as const satisfies Record<string, { signed: SignedOperation; method: string; action: 'read' | 'write'; verb: string }>

const expiresIn = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional().openapi({
  description: `Seconds the URL lives (default ${DEFAULT_EXPIRY_SECONDS}); more than the service's AUTH_URL_MAX_EXPIRY is cut to it (see expiresAt).`,
})
/** An upload URL's limits; a download URL takes none. */
const uploadRequest = (operation: 'upload' | 'tus') =>
  z
    .object({
      operation: z.literal(operation),
      expiresIn,
      maxBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().openapi({ description: 'The largest body accepted.' }),
      contentType: MediaTypeField('The only content type accepted, and stored.').optional(),
    })
    .strict()

const SignBody = z
  .discriminatedUnion('operation', [
    z.object({ operation: z.literal('download'), expiresIn }).strict(),
    uploadRequest('upload'),
    uploadRequest('tus'),
  ])
  .openapi('SignRequest', { description: 'What the URL grants: a download, an upload (PUT), or a tus creation.' })

const SignedUrlSchema = z
  .object({
    url: z.string().openapi({ description: 'Absolute URL; the signature is in its query.' }),
    method: z.enum(['GET', 'PUT', 'POST']).openapi({ description: 'The method to use it with (a download URL takes HEAD too).' }),
    expiresAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('SignedUrl')

export const signRoute = createRoute({
  method: 'post',
  path: '/{store}/sign/{path{[\\s\\S]*}}',
  operationId: 'sign',
  tags: ['signed URLs'],
  summary: 'Get a signed URL for one operation on one path',
  description:
    'The URL works without any other credential (a browser `<img src>`, a direct upload from a page) until it ' +
    'expires; any change to its path, store or signed query parameters gives `403`. Query parameters: `exp` ' +
    '(Unix seconds), `kid` (key id), `sig` (HMAC), and when signed `max`, `type`, and `path` (tus).',
  request: {
    params: z.object({ store: StoreParam, path: PathParam }),
    body: { content: { 'application/json': { schema: SignBody } }, required: true },
  },
  responses: {
    200: { description: 'The signed URL', content: { 'application/json': { schema: SignedUrlSchema } } },
    ...errorResponses(400, 401, 403, 404, 408, 413),
  },
})

export function createSignHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [signRoute])
  app.openapi(withBoundedJsonBody(signRoute, deps), async (c) => {
    const { store, path: rawPath } = c.req.valid('param')
    const body = c.req.valid('json')
    deps.stores.get(store)
    const path = requestPath(c, rawPath)
    const operation = OPERATIONS[body.operation]
    await authorize(c, { operation: 'sign', action: operation.action, store, path })
    const signer = signerOf(c)
    if (!signer) throw new StorageError('invalid_request', 'signed URLs are not enabled on this service (AUTH_URL_SIGNING_KEYS)')
    // Never longer than the service allows: the answer's expiresAt says what was granted.
    const expiresIn = Math.min(body.expiresIn ?? DEFAULT_EXPIRY_SECONDS, signer.maxExpirySeconds)
    const expires = Math.floor(Date.now() / 1000) + expiresIn
    const limits: { maxBytes?: number; contentType?: string } = body.operation === 'download' ? {} : body
    const query = signer.sign({
      operation: operation.signed,
      store,
      path,
      expires,
      ...(limits.maxBytes !== undefined ? { maxBytes: limits.maxBytes } : {}),
      ...(limits.contentType !== undefined ? { contentType: parseMediaType(limits.contentType, 'contentType') } : {}),
    })
    const target = body.operation === 'tus' ? '' : path.split('/').map(encodeURIComponent).join('/')
    const pathname = `${mountPrefix(c)}/${encodeURIComponent(store)}/${operation.verb}/${target}`
    return c.json(
      { url: `${publicUrl(c, pathname, deps.urls)}?${query}`, method: operation.method, expiresAt: new Date(expires * 1000).toISOString() },
      200,
    )
  })
  return app
}

/** Where the API is mounted: the request's path up to the route's own (`/filestorage/v1`), wherever a host app put it. */
function mountPrefix(c: Context): string {
  const pattern = c.req.routePath
  const depth = pattern.slice(0, pattern.lastIndexOf('/:store/sign/')).split('/').length - 1
  return new URL(c.req.url).pathname.split('/').slice(0, depth + 1).join('/')
}
