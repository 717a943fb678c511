/**
 * download: `GET` and `HEAD /{store}/download/{path}`, with Range, ETag and If-None-Match /
 * If-Modified-Since, and `?disposition=attachment` for a save-as name (RFC 6266 / 5987).
 *
 * Served content is inert (SPEC 6): every answer carries a sandboxing Content-Security-Policy, and
 * active types (HTML, SVG, XML, JavaScript) go as attachments unless a caller with the read right
 * asks for `disposition=inline` (a signed URL cannot). A stored type that is not a valid media type
 * is served as `application/octet-stream`.
 *
 * On a store whose backing service can send the bytes itself (`Store.redirectUrl`: the s3 store with
 * S3_REDIRECT_DOWNLOADS), an authorized GET without conditional headers is answered `302` to a
 * short-lived URL of the object, which carries the content type and disposition the service would
 * have sent; HEAD and conditional GETs are answered here.
 *
 * Behind nginx with `accelRedirect` (ACCEL_REDIRECT_LOCATION), a GET that the service has authorized
 * and resolved is answered with its headers and `X-Accel-Redirect` naming the very version it
 * described, and nginx sends the file (sendfile). Only where nginx would answer as the service does:
 * no If-Match, If-Unmodified-Since or If-Range (nginx would judge them by its own validators), and
 * at most one plain range (nginx applies the Range header itself, as the service would). nginx asks
 * again with `X-Filestorage-Accel: off` when that version is gone by the time it opens it; the
 * service then sends the bytes itself.
 *
 * With `localFiles` (the bun adapter), a large file the store names on the local file system is sent
 * by the runtime itself, the same version with the same headers and range.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { create as contentDisposition } from 'content-disposition'
import { combineRanges, parse as parseRange } from 'range-parser'
import { type ByteRange, keepsChanging, StorageError, type Store, type StoredFile } from '../storage/index.js'
import { authorize } from './access.js'
import { requestPath } from './request-path.js'
import { createHandlerApp, type HandlerDeps, type LocalFileSender } from './handler-app.js'
import { errorResponse, errorResponses } from './http-errors.js'
import { DOWNLOAD_CSP, isActiveType, servedMediaType } from './media-type.js'
import { parseEtagList } from './request-options.js'
import { EtagListHeader, PathParam, StoreParam } from './schemas.js'

export const downloadRoute = createRoute({
  method: 'get',
  path: '/{store}/download/{path{[\\s\\S]*}}',
  operationId: 'download',
  tags: ['files'],
  summary: 'Download a file (also HEAD)',
  description:
    'Streams the file. A single `Range` gives `206`; several ranges are answered with the whole file. ' +
    '`If-None-Match` (or `If-Modified-Since`) gives `304` when the client has it already. HEAD sends the same headers without opening the file.',
  request: {
    params: z.object({ store: StoreParam, path: PathParam }),
    query: z.object({
      disposition: z.enum(['attachment', 'inline']).optional().openapi({
        description:
          'Send `Content-Disposition` with the file name, to save (`attachment`) or show (`inline`). HTML, SVG, XML ' +
          'and JavaScript are always sent as attachments unless `inline` is asked for (not possible with a signed URL).',
      }),
    }),
    headers: z.object({
      range: z.string().optional().openapi({ example: 'bytes=0-1023' }),
      'if-none-match': EtagListHeader('`304` when the file still has one of these ETags (or for `*`).').optional(),
      'if-modified-since': z.string().optional(),
      'if-range': z.string().optional(),
    }),
  },
  responses: {
    200: { description: 'The file', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
    302: { description: 'On a store that redirects downloads (the s3 store with S3_REDIRECT_DOWNLOADS): the file at a short-lived URL of the object store' },
    206: { description: 'The requested range', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
    304: { description: 'Not modified' },
    ...errorResponses(400, 403, 404, 416, 503),
  },
})

/** Headers that make a GET depend on the file's description before it is opened. */
const CONDITIONS = ['range', 'if-none-match', 'if-modified-since']

/** Files up to this size are answered from memory (a driver that read them at once hands them out as bytes). */
const SMALL_BODY_BYTES = 64 * 1024

/** A file replaced between describing and opening it is described again, a bounded number of times. */
const OPEN_ATTEMPTS = 3

/** Conditional headers: a GET with one is answered by the service, never redirected to the backing service. */
const VALIDATORS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range']

/** Headers by which nginx would judge a request on its own, so the service sends such answers itself. */
const NGINX_JUDGES = ['if-match', 'if-unmodified-since', 'if-range']
/** One range that nginx and the service read alike. */
const PLAIN_RANGE = /^bytes=(\d+-\d*|-\d+)$/

export function createDownloadHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [downloadRoute])

  app.openapi(downloadRoute, async (c) => {
    const { store, path: rawPath } = c.req.valid('param')
    const { disposition: asked } = c.req.valid('query')
    const driver = deps.stores.get(store)
    const path = requestPath(c, rawPath)
    const grant = await authorize(c, { operation: 'download', action: 'read', store, path })
    const disposition = grant.signed && asked === 'inline' ? undefined : asked
    const accel =
      deps.accelRedirect !== undefined &&
      driver.localVersion !== undefined &&
      c.req.method === 'GET' &&
      c.req.header('x-filestorage-accel') !== 'off' &&
      !NGINX_JUDGES.some((h) => c.req.header(h) !== undefined)

    if (c.req.method === 'GET' && driver.redirectUrl !== undefined && !VALIDATORS.some((h) => c.req.header(h) !== undefined)) {
      // The store's backing service sends the bytes itself (the s3 store's presigned URLs); a Range
      // goes along with the client's request. What the service would have answered with: type and
      // disposition, so active content stays an attachment.
      const file = await driver.stat(path)
      const headers = representationHeaders(file, disposition)
      const location = await driver.redirectUrl(file, {
        contentType: headers['Content-Type']!,
        ...(headers['Content-Disposition'] !== undefined ? { contentDisposition: headers['Content-Disposition'] } : {}),
      })
      if (location !== undefined) {
        return new Response(null, { status: 302, headers: { Location: location, 'Cache-Control': 'no-store', ETag: file.etag, 'X-Content-SHA256': file.sha256 } })
      }
    }

    if (c.req.method === 'GET' && !accel && !CONDITIONS.some((h) => c.req.header(h) !== undefined)) {
      // A plain GET opens the file once and describes it from what it opened.
      const read = await driver.read(path) // not destructured: `body` may be made only when asked for
      const { file } = read
      const headers = representationHeaders(file, disposition)
      headers['Content-Length'] = String(file.size)
      if (read.bytes || !sendsLocally(deps.localFiles, store, file.size)) {
        // A small file goes as bytes: node:http then writes headers and body at once, not as a stream.
        return respond(read.bytes ?? (file.size <= SMALL_BODY_BYTES ? await readAll(read.body) : read.body), 200, headers)
      }
      const local = await driver.localVersion?.(file)
      await read.body.cancel()
      if (local !== undefined) return deps.localFiles.send({ store, name: local, status: 200, headers })
      // Replaced meanwhile: the loop below sends the current version, which the runtime sends too.
    }

    for (let attempt = 1; ; attempt++) {
      // HEAD (which Hono serves with this GET handler) never opens the file.
      const file = await driver.stat(path)
      const headers = representationHeaders(file, disposition)
      if (notModified(c.req.header('if-none-match'), c.req.header('if-modified-since'), file)) {
        return respond(null, 304, headers)
      }
      const range = requestedRange(c.req.header('range'), c.req.header('if-range'), file)
      if (range === 'unsatisfiable') {
        return errorResponse(
          c,
          new StorageError('range_not_satisfiable', `the range is outside the file (${file.size} bytes)`),
          { 'Content-Range': `bytes */${file.size}` },
        )
      }
      const status = range ? 206 : 200
      if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${file.size}`
      headers['Content-Length'] = String(range ? range.end - range.start + 1 : file.size)
      if (c.req.method === 'HEAD') return respond(null, status, headers)

      const rangeHeader = c.req.header('range')
      const nginxSends = accel && (rangeHeader === undefined || (range && PLAIN_RANGE.test(rangeHeader)))
      const runtime = !accel && sendsLocally(deps.localFiles, store, Number(headers['Content-Length'])) ? deps.localFiles : undefined
      const local = nginxSends || runtime ? await driver.localVersion?.(file) : undefined
      if (local !== undefined && runtime) return runtime.send({ store, name: local, ...(range ? { range } : {}), status, headers })
      // The runtime sends files by name, keeping their Content-Length (Bun drops it from a stream):
      // a version replaced before it was named is looked up again rather than streamed.
      if (runtime && local === undefined && attempt < OPEN_ATTEMPTS) continue
      if (local !== undefined) {
        // nginx sends the file, its length and range, and Accept-Ranges with a whole file; the rest is
        // ours. These two go under other names, which deploy/nginx/nginx.conf turns back: nginx would
        // keep the headers themselves through its fallback (see there) and send them twice.
        const contentDisposition = headers['Content-Disposition']
        for (const name of ['Content-Length', 'Content-Range', 'Accept-Ranges', 'Content-Disposition']) delete headers[name]
        if (contentDisposition !== undefined) headers['X-Accel-Content-Disposition'] = contentDisposition
        if (range) headers['X-Accel-Accept-Ranges'] = 'bytes'
        headers['X-Accel-Redirect'] = deps.accelRedirect + local.split('/').map(encodeURIComponent).join('/')
        return respond(null, 200, headers)
      }

      const opened = await open(driver, path, range, file)
      if (opened) return respond(opened, status, headers)
      if (attempt >= OPEN_ATTEMPTS) throw keepsChanging('the file')
    }
  })

  return app
}

/** Whether the runtime sends `bytes` of `store` itself (`HandlerDeps.localFiles`). */
function sendsLocally(sender: LocalFileSender | undefined, store: string, bytes: number): sender is LocalFileSender {
  return sender !== undefined && bytes >= sender.minBytes && sender.stores.includes(store)
}

/**
 * The answer, made directly: `c.body` copies more than one header into a `Headers` object, which
 * the node adapter turns back into a plain object for node:http; a plain object goes as it is.
 */
function respond(body: ReadableStream<Uint8Array> | Uint8Array | null, status: 200 | 206 | 304, headers: Record<string, string>): Response {
  return new Response(body, { status, headers })
}

/** The whole of a small body (one chunk, for the disk store's read of a small file). */
async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of body) chunks.push(chunk)
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
}

/** Opens the file, or returns null when it is no longer the version `expected` describes. */
async function open(driver: Store, path: string, range: ByteRange | undefined, expected: StoredFile) {
  const read = await driver.read(path, range)
  if (read.file.etag === expected.etag) return read.bytes ?? read.body
  if (!read.bytes) await read.body.cancel()
  return null
}

/**
 * The headers that describe `file`, made once per description (a driver that keeps a file's
 * description, as the disk store's cache of small files does, hands out the same object each time)
 * and copied per response, which adds to them.
 */
const describedHeaders = new WeakMap<StoredFile, Readonly<Record<string, string>>>()

function representationHeaders(file: StoredFile, asked?: 'attachment' | 'inline'): Record<string, string> {
  if (asked !== undefined) return headersOf(file, asked)
  let headers = describedHeaders.get(file)
  if (!headers) describedHeaders.set(file, (headers = headersOf(file)))
  return { ...headers }
}

function headersOf(file: StoredFile, asked?: 'attachment' | 'inline'): Record<string, string> {
  const contentType = servedMediaType(file.contentType)
  const disposition = asked ?? (isActiveType(contentType) ? 'attachment' : undefined)
  const headers: Record<string, string> = {
    'Content-Type': contentType,
    'Content-Security-Policy': DOWNLOAD_CSP,
    ETag: file.etag,
    'Last-Modified': new Date(file.modified).toUTCString(),
    'Accept-Ranges': 'bytes',
    'X-Content-Type-Options': 'nosniff',
    'X-Content-SHA256': file.sha256,
  }
  if (disposition) headers['Content-Disposition'] = contentDisposition(file.name, { type: disposition })
  return headers
}

/** RFC 9110 13.1.2 and 13.1.3: If-None-Match wins over If-Modified-Since; weak comparison. */
function notModified(ifNoneMatch: string | undefined, ifModifiedSince: string | undefined, file: StoredFile): boolean {
  if (ifNoneMatch !== undefined) {
    const tags = parseEtagList(ifNoneMatch) ?? []
    const weak = (t: string) => t.replace(/^W\//, '')
    return tags.some((t) => t === '*' || weak(t) === file.etag)
  }
  if (ifModifiedSince !== undefined) {
    const since = Date.parse(ifModifiedSince)
    return !Number.isNaN(since) && Math.floor(Date.parse(file.modified) / 1000) * 1000 <= since
  }
  return false
}

/**
 * The one range to send (RFC 9110 14), `undefined` for the whole file, or 'unsatisfiable'.
 * - A suffix longer than the file selects all of it (`bytes=-5000` of 1000 bytes: 0-999), and an
 *   end beyond the file is cut to its last byte.
 * - Overlapping or adjacent ranges are merged; ranges that still remain several are answered with
 *   the whole file (RFC 9110 allows it; no multipart/byteranges), as are a malformed or invalid
 *   header (`bytes=5-2`, `bytes=x`), a unit other than bytes, and a stale `If-Range`.
 * - Unsatisfiable (416) only when no range overlaps the file (`bytes=1000-` of 1000 bytes,
 *   `bytes=-0`). An empty file has no byte to range over: it is always sent whole (200), as nginx
 *   does, so clients that send a Range with every request still get it.
 */
function requestedRange(
  header: string | undefined,
  ifRange: string | undefined,
  file: StoredFile,
): ByteRange | undefined | 'unsatisfiable' {
  if (header === undefined || file.size === 0) return undefined
  if (ifRange !== undefined) {
    const current = ifRange.startsWith('"') ? ifRange === file.etag : ifRange === new Date(file.modified).toUTCString()
    if (!current) return undefined
  }
  const parsed = parseRange(file.size, header)
  if (parsed.type !== 'bytes' || parsed.code & 1) return undefined // malformed or invalid: ignored
  if (parsed.ranges.length === 0) return 'unsatisfiable'
  const ranges = combineRanges(parsed.ranges)
  return ranges.length === 1 ? { start: ranges[0]!.start, end: ranges[0]!.end } : undefined
}
