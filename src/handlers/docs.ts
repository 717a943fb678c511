/**
 * docs: `GET /openapi.json` (OpenAPI 3.1, generated from the same route definitions the handlers
 * validate with) and `GET /docs`, an interactive page (Swagger UI) over it, whose script and styles
 * this handler serves too (swagger-ui-assets.ts). Every URL in the page is relative to the page, so
 * it works wherever the handler is mounted, also behind a proxy that strips a prefix.
 *
 * With access control on, the document declares the authorizer's security schemes and puts them,
 * with the `401` and `403` answers, on every operation but the public ones, so the page's
 * "Authorize" button sends the token with every "Try it out".
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { html } from 'hono/html'
import { createHandlerApp } from './handler-app.js'
import { openApiPath } from './openapi-paths.js'
import { mountSwaggerUiAssets, SWAGGER_UI_FOLDER, swaggerUiAssetRoutes } from './swagger-ui-assets.js'

export interface DocsOptions {
  /** The composed app whose routes are documented. */
  app: OpenAPIHono
  /** Where the API is mounted, e.g. `/filestorage/v1`. */
  basePath: string
  service?: { name: string; version: string }
  /** The stores served: the `store` parameter takes only these (others answer `404 unknown_store`). */
  storeNames?: string[]
  /** The events' consumers (endpoints, the Redis stream): the admin routes' `consumer` takes only these. */
  consumerNames?: string[]
  /** The authorizer's OpenAPI security schemes (none: anonymous access, nothing to declare). */
  securitySchemes?: Record<string, Record<string, unknown>>
  /** The service limits request rates: every operation but the health check can answer `429`. */
  rateLimited?: boolean
}

type Operation = { parameters?: { name: string; in: string; schema?: Record<string, unknown>; content?: unknown }[] }

/**
 * What the route definitions cannot say themselves: which stores exist (known when the app is
 * composed), and that `X-File-Metadata` carries JSON (a header whose content is
 * `application/json`, so that generators send JSON objects, not arbitrary strings).
 */
function refineParameters(operation: Operation, storeNames: string[] | undefined, consumerNames: string[] | undefined): void {
  for (const p of operation.parameters ?? []) {
    if (p.in === 'path' && p.name === 'store' && storeNames?.length) p.schema = { ...p.schema, enum: storeNames }
    if (p.name === 'consumer' && consumerNames?.length) p.schema = { ...p.schema, enum: consumerNames }
    if (p.in === 'header' && p.name === 'x-file-metadata') {
      const { schema: _text, ...rest } = p
      Object.assign(p, rest)
      delete p.schema
      p.content = { 'application/json': { schema: { type: 'object' } } }
    }
  }
}

/** Operations anyone may call, credentials or not. */
const PUBLIC_OPERATIONS = new Set(['check', 'help', 'tusOptions'])

type Document = ReturnType<OpenAPIHono['getOpenAPI31Document']>

export function buildOpenApiDocument(options: DocsOptions): Document {
  const document = options.app.getOpenAPI31Document({
    openapi: '3.1.0',
    // The paths are absolute (the base path included), so the server is the document's own origin.
    servers: [{ url: '/', description: 'the service that serves this document' }],
    info: {
      title: 'filestorage',
      version: options.service?.version ?? '1',
      license: { name: 'MIT', url: 'https://opensource.org/license/mit' },
      description:
        'Stores files and hands them back over HTTP: upload, download, list, move, delete, and large uploads in parts. ' +
        'Paths are UTF-8, NFC, segments joined by `/` (percent-encode as usual). Every error is JSON: ' +
        '`{ "error": { "code", "message", "details"? } }`.',
    },
    tags: [
      { name: 'files', description: 'Upload, download, list, move and delete' },
      { name: 'uploads in parts', description: 'Large uploads: create, send parts (any order), complete' },
      {
        name: 'resumable uploads (tus)',
        description: 'The tus 1.0 protocol (https://tus.io/protocols/resumable-upload), for tus-js-client, Uppy and other tus clients',
      },
      { name: 'signed URLs', description: 'URLs that grant one operation on one path to whoever holds them, until they expire' },
      {
        name: 'events',
        description: 'Changes announced to other services: the webhooks endpoints receive (Standard Webhooks 1.0), and the operator\'s routes for dead letters',
      },
      { name: 'service', description: 'Health, help and these docs' },
    ],
  })
  // Paths in full (the API is mounted under basePath), and in plain OpenAPI template syntax.
  document.paths = Object.fromEntries(
    Object.entries(document.paths ?? {}).map(([p, item]) => [options.basePath + openApiPath(p), item]),
  )
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item as Record<string, Operation>)) refineParameters(operation, options.storeNames, options.consumerNames)
  }
  // A move's `toStore` names a store too (another one answers `404 unknown_store`).
  const toStore = (document.components?.schemas?.MoveRequest as { properties?: Record<string, Record<string, unknown>> } | undefined)?.properties?.toStore
  if (toStore && options.storeNames?.length) toStore.enum = options.storeNames
  const selection = document.components?.schemas?.DeadLetterSelection as { properties?: { consumer?: Record<string, unknown> } } | undefined
  if (options.consumerNames?.length && selection?.properties?.consumer) selection.properties.consumer.enum = options.consumerNames
  declareSecurity(document, options.securitySchemes ?? {})
  // The webhooks are requests the service sends: signed per Standard Webhooks (their headers say
  // how), with no scheme of the API's own.
  for (const item of Object.values(document.webhooks ?? {})) {
    for (const method of HTTP_METHODS) if (item[method]) item[method].security = []
  }
  if (options.rateLimited) declareRateLimits(document)
  return document
}

/** Operations a rate limit never refuses: the health check, and OPTIONS (not counted). */
const UNLIMITED_OPERATIONS = new Set(['check', 'tusOptions'])

/** `429 rate_limited`, with its `Retry-After` and the RateLimit fields, on every operation that can be refused. */
function declareRateLimits(document: Document): void {
  const header = (description: string) => ({ description, schema: { type: 'string' } })
  const response = {
    description: '`rate_limited`: too many requests for the principal (or the client address without one); try again after `Retry-After` seconds',
    headers: {
      'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer', minimum: 1 } },
      'RateLimit-Policy': header('The limits that hold (draft-ietf-httpapi-ratelimit-headers), e.g. `"requests";q=50;w=1`.'),
      RateLimit: header('What remains of the requests budget and when it is renewed, e.g. `"requests";r=0;t=1`.'),
    },
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  }
  for (const item of Object.values(document.paths ?? {})) {
    for (const method of HTTP_METHODS) {
      const operation = item[method]
      if (!operation || UNLIMITED_OPERATIONS.has(operation.operationId ?? '')) continue
      operation.responses = { ...operation.responses, 429: response }
    }
  }
}

/** The page at `/docs`: its URLs resolve to `/openapi.json` and `/docs/swagger-ui-dist@…/…` beside it. */
const assets = `docs/${SWAGGER_UI_FOLDER}`
const docsPage = html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>filestorage API</title>
    <link rel="icon" type="image/png" href="${assets}/favicon-32x32.png" />
    <link rel="stylesheet" href="${assets}/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${assets}/swagger-ui-bundle.js"></script>
    <script>
      // validatorUrl 'none': Swagger UI would otherwise send the document's URL to validator.swagger.io.
      window.ui = SwaggerUIBundle({ url: 'openapi.json', dom_id: '#swagger-ui', validatorUrl: 'none', persistAuthorization: true })
    </script>
  </body>
</html>
`

/** The routes this handler serves (they are not OpenAPI routes themselves). */
export const DOCS_ROUTES = [
  { method: 'get', path: '/openapi.json' },
  { method: 'get', path: '/docs' },
  ...swaggerUiAssetRoutes('/docs'),
]

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const

function declareSecurity(document: Document, schemes: Record<string, Record<string, unknown>>): void {
  const names = Object.keys(schemes)
  if (names.length === 0) {
    // No authorizer (anonymous mode, or a host app that authenticates on its own): say so.
    for (const item of Object.values(document.paths ?? {})) {
      for (const method of HTTP_METHODS) if (item[method]) item[method].security = []
    }
    return
  }
  document.components = { ...document.components, securitySchemes: schemes as never }
  const error = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } })
  for (const item of Object.values(document.paths ?? {})) {
    for (const method of HTTP_METHODS) {
      const operation = item[method]
      if (!operation) continue
      if (PUBLIC_OPERATIONS.has(operation.operationId ?? '')) {
        operation.security = [] // says "no credentials needed" where a tool would assume a scheme is missing
        continue
      }
      operation.security = names.map((name) => ({ [name]: [] }))
      operation.responses = {
        ...operation.responses,
        401: operation.responses?.[401] ?? error('`unauthorized`: no token, or one that is not accepted (`WWW-Authenticate: Bearer`)'),
        403: operation.responses?.[403] ?? error('`forbidden`: the token has no right for this, or a signed URL does not grant it'),
      }
    }
  }
}

export function createDocsHandler(options: DocsOptions) {
  const app = createHandlerApp()
  let document: Document | undefined // built on first request: every route is registered by then
  app.get('/openapi.json', (c) => c.json((document ??= buildOpenApiDocument(options))))
  // no-cache: the page names the assets' version, so a browser must not keep an old page.
  app.get('/docs', (c) => c.html(docsPage, 200, { 'Cache-Control': 'no-cache' }))
  mountSwaggerUiAssets(app, '/docs')
  return app
}
