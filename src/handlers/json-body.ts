/**
 * JSON request bodies (move, createupload, completeupload, sign), read before the route's validator
 * parses them: at most MAX_JSON_BODY_BYTES (else `413`, and the rest is never read), whole within
 * the deadline `jsonBodyTimeoutMs` (else `408`: a small body has no reason to trickle), and nested
 * at most MAX_JSON_BODY_DEPTH deep (else `400`), checked in one linear pass before anything
 * recursive touches them. Hono would read any size for any time, and a few KB nested thousands deep
 * overflow the stack of JSON.stringify or a validator (a 500).
 */
import type { RouteConfig } from '@hono/zod-openapi'
import type { MiddlewareHandler } from 'hono'
import { bodyChunks, jsonTextDepth, payloadTooLarge, StorageError } from '../storage/index.js'
import type { HandlerDeps } from './handler-app.js'
import { requestBody } from './request-options.js'
import { stoppableBody } from './stoppable-body.js'

/** Room for the largest legitimate body: a completeupload listing 10,000 parts is about 60 KB. */
export const MAX_JSON_BODY_BYTES = 256 * 1024
/** Far deeper than any body of this API (metadata itself may nest 32 deep). */
export const MAX_JSON_BODY_DEPTH = 64

/** Any JSON media type (`application/json`, `…+json`), parameters aside. */
const isJson = (contentType: string) => /json/i.test(contentType.split(';')[0]!)

export function boundedJsonBody(deps: Pick<HandlerDeps, 'jsonBodyTimeoutMs'>): MiddlewareHandler {
  const timeoutMs = deps.jsonBodyTimeoutMs
  const late = () =>
    new StorageError('request_timeout', `the JSON body did not arrive within ${timeoutMs! / 1000} s`, {
      details: { timeoutSeconds: timeoutMs! / 1000 },
    })
  return async (c, next) => {
    const contentType = c.req.header('content-type')
    if (contentType !== undefined && isJson(contentType)) {
      const body = timeoutMs ? stoppableBody(requestBody(c), AbortSignal.timeout(timeoutMs), late) : requestBody(c)
      const text = await readText(body, MAX_JSON_BODY_BYTES)
      if (jsonTextDepth(text, MAX_JSON_BODY_DEPTH) > MAX_JSON_BODY_DEPTH) {
        throw new StorageError('invalid_request', `the JSON body nests deeper than ${MAX_JSON_BODY_DEPTH} levels`, {
          details: { limit: MAX_JSON_BODY_DEPTH },
        })
      }
      // The validator parses the request's body: hand it the text already read.
      c.req.raw = new Request(c.req.raw.url, { method: c.req.method, headers: c.req.raw.headers, body: text })
    }
    await next()
  }
}

async function readText(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of bodyChunks(body)) {
    size += chunk.length
    if (size > maxBytes) throw payloadTooLarge(maxBytes) // bodyChunks lets go of the rest
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** `route` with its JSON body read by `boundedJsonBody` before validation. */
export const withBoundedJsonBody = <R extends RouteConfig>(route: R, deps: Pick<HandlerDeps, 'jsonBodyTimeoutMs'>): R => ({
  ...route,
  middleware: [boundedJsonBody(deps)],
})
