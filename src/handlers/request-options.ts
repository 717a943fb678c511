/**
 * Reading what a request asks for from its headers: preconditions, content type, client metadata,
 * expected checksum and size. Shared by every handler that writes.
 */
import type { Context } from 'hono'
import {
  parseMetadata,
  parseSha256,
  payloadTooLarge,
  StorageError,
  type PutOptions,
  type WritePreconditions,
} from '../storage/index.js'
import { parseMediaType } from './media-type.js'
import { ETAG_LIST } from './schemas.js'

/** Entity tags of an `If-Match`/`If-None-Match` header: `*` or a list of quoted tags. */
export function parseEtagList(header: string | undefined): string[] | undefined {
  if (header === undefined) return undefined
  const value = header.trim()
  if (value === '*') return ['*']
  if (!ETAG_LIST.test(value)) throw new StorageError('invalid_request', 'an entity tag must be quoted, e.g. "abc", or be *')
  return value.match(/(?:W\/)?"[^"]*"/g)!
}

/** `If-None-Match: *` (create only) and `If-Match` (replace only that version) on a write. */
export function writePreconditions(c: Context): WritePreconditions {
  const conditions: WritePreconditions = {}
  const noneMatch = parseEtagList(c.req.header('if-none-match'))
  if (noneMatch) {
    if (noneMatch[0] !== '*') {
      throw new StorageError('invalid_request', 'on a write, If-None-Match only takes * (create, never replace)')
    }
    conditions.mustNotExist = true
  }
  const ifMatch = parseEtagList(c.req.header('if-match'))
  if (ifMatch) conditions.ifMatch = ifMatch
  return conditions
}

/** `If-Match` alone, for move and delete. */
export function ifMatchOf(c: Context): { ifMatch?: string[] } {
  const ifMatch = parseEtagList(c.req.header('if-match'))
  return ifMatch ? { ifMatch } : {}
}

/**
 * Header values arrive as Latin-1; a client that sent raw UTF-8 (curl does) gets its text back.
 * Pure ASCII, or text that is not valid UTF-8 that way, is returned unchanged.
 */
function utf8FromLatin1(value: string): string {
  // eslint-disable-next-line no-control-regex -- the Latin-1 range test is the point
  if (!/[\u0080-\u00ff]/.test(value) || /[^\u0000-\u00ff]/.test(value)) return value
  const decoded = Buffer.from(value, 'latin1').toString('utf8')
  return decoded.includes('\ufffd') ? value : decoded
}

export function metadataHeader(c: Context): Record<string, unknown> | undefined {
  const raw = c.req.header('x-file-metadata')
  return raw === undefined ? undefined : parseMetadata(utf8FromLatin1(raw))
}

export function sha256Header(c: Context): string | undefined {
  const raw = c.req.header('x-content-sha256')
  return raw === undefined ? undefined : parseSha256(raw)
}

/** The announced body size, refused at once when over the limit. */
export function contentLength(c: Context, maxBytes: number | undefined): number | undefined {
  const raw = c.req.header('content-length')
  if (raw === undefined) return undefined
  const size = Number(raw)
  if (!Number.isSafeInteger(size) || size < 0) throw new StorageError('invalid_request', 'Content-Length is not a number')
  if (maxBytes !== undefined && size > maxBytes) throw payloadTooLarge(maxBytes)
  return size
}

/** Everything a raw-body upload (PUT) carries in its headers. */
export function putOptions(c: Context, maxBytes: number | undefined): PutOptions {
  const options: PutOptions = { ...writePreconditions(c) }
  const contentType = c.req.header('content-type')
  if (contentType?.trim()) options.contentType = parseMediaType(contentType, 'Content-Type')
  const metadata = metadataHeader(c)
  if (metadata) options.metadata = metadata
  const sha256 = sha256Header(c)
  if (sha256) options.expectedSha256 = sha256
  const size = contentLength(c, maxBytes)
  if (size !== undefined) options.expectedSize = size
  if (maxBytes !== undefined) options.maxBytes = maxBytes
  return options
}

const EMPTY = new Uint8Array(0)

/**
 * The request body as a stream; an absent body is an empty one. An adapter may have put its own
 * reader there (the node adapter reads Node's request itself, with an idle timeout: see
 * src/adapters/node/request-body.ts); handlers stay web-standard.
 */
export function requestBody(c: Context): ReadableStream<Uint8Array> {
  return (
    c.req.raw.body ??
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(EMPTY)
        controller.close()
      },
    })
  )
}
