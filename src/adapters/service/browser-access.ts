/**
 * CORS for browser clients on other origins (CORS_ORIGINS), with hono/cors: the headers the API
 * reads and the ones a client needs to see, uploads in parts and tus included.
 */
import type { MiddlewareHandler } from 'hono'
import { cors } from 'hono/cors'

const REQUEST_HEADERS = [
  'Authorization',
  'Content-Type',
  'If-Match',
  'If-None-Match',
  'If-Modified-Since',
  'If-Range',
  'Range',
  'X-File-Metadata',
  'X-Content-SHA256',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Checksum',
  'X-HTTP-Method-Override',
  'X-Request-Id',
]

const RESPONSE_HEADERS = [
  'WWW-Authenticate',
  'ETag',
  'Last-Modified',
  'Content-Length',
  'Content-Range',
  'Content-Disposition',
  'Accept-Ranges',
  'X-Content-SHA256',
  'X-File-Path',
  'Location',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Expires',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'X-Request-Id',
]

export function browserAccess(origins: string[]): MiddlewareHandler {
  const handler = cors({
    origin: origins.includes('*') ? '*' : origins,
    allowMethods: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
    allowHeaders: REQUEST_HEADERS,
    exposeHeaders: RESPONSE_HEADERS,
    maxAge: 600,
  })
  // hono/cors answers every OPTIONS as a preflight; a tus client's own OPTIONS (no
  // Access-Control-Request-Method) must reach the tus handler for Tus-Version and its extensions.
  return (c, next) =>
    c.req.method === 'OPTIONS' && !c.req.header('access-control-request-method') ? next() : handler(c, next)
}
