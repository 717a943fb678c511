/**
 * The body of a request served by Bun.serve, with the body idle timeout: while a reader waits for
 * the next chunk and none comes for `idleTimeoutMs` (a client that stalls, a body shorter than its
 * Content-Length), the body errors with `request_timeout`, which the handler answers `408`. A body
 * that waits unread because the service is busy (backpressure: Bun stops reading the socket) is
 * never idle: only waiting on the client counts. Bun's own idle timer is off while the service
 * works on a request (server.ts), so this one decides.
 *
 * Bun's body stream has what the node adapter builds by hand (node/request-body.ts): chunks as the
 * socket delivers them, backpressure, and an error when the client cuts the connection, after the
 * chunks that came before it.
 */
import type { MiddlewareHandler } from 'hono'
import { StorageError } from '../../storage/index.js'

export interface BodyOptions {
  /** A reader waiting longer than this for the next chunk fails with `request_timeout`; 0: never. */
  idleTimeoutMs?: number
}

/** A request body behind the idle timeout, and whether it stalled (the idle timeout cut it). */
export function idleBody(body: ReadableStream<Uint8Array>, idleTimeoutMs: number): { stream: ReadableStream<Uint8Array>; stalled(): boolean } {
  const reader = body.getReader()
  let stalled = false
  const timedOut = () =>
    new StorageError('request_timeout', `the request body sent nothing for ${idleTimeoutMs / 1000} s`, {
      details: { idleTimeoutSeconds: idleTimeoutMs / 1000 },
    })
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let idle: NodeJS.Timeout | undefined
        const idleEnd = new Promise<'stalled'>((resolve) => (idle = setTimeout(() => resolve('stalled'), idleTimeoutMs)))
        let result: Awaited<ReturnType<typeof reader.read>> | 'stalled'
        try {
          result = await Promise.race([reader.read(), idleEnd])
        } catch (e) {
          return controller.error(e)
        } finally {
          clearTimeout(idle)
        }
        if (result === 'stalled') {
          stalled = true
          const error = timedOut()
          reader.cancel(error).catch(() => {})
          return controller.error(error)
        }
        if (result.done) controller.close()
        else controller.enqueue(result.value)
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  )
  return { stream, stalled: () => stalled }
}

/** Methods whose body the fetch `Request` refuses to carry; no route reads one. */
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD'])

/**
 * Middleware: a request with a body gets `idleBody` as its body (`c.req.raw.body`). The answer to a
 * body that stalled (408) closes the connection: Bun would keep it, waiting for the rest of that
 * body. Other answers given before the body's end (an early 413, a 401) leave the connection to Bun,
 * which reads the rest of the body, then serves the connection's next request; closing it at once
 * would reset a client still sending before it read the answer (node:http closes it after a linger
 * of 2 s, which Bun.serve cannot do).
 */
export function bunRequestBody(options: BodyOptions = {}): MiddlewareHandler {
  const idleTimeoutMs = options.idleTimeoutMs ?? 0
  return async (c, next) => {
    const raw = c.req.raw
    if (idleTimeoutMs <= 0 || METHODS_WITHOUT_BODY.has(raw.method) || raw.body === null) return next()
    const body = idleBody(raw.body, idleTimeoutMs)
    c.req.raw = new Request(raw.url, {
      method: raw.method,
      headers: raw.headers,
      body: body.stream,
      signal: raw.signal,
      duplex: 'half',
    } as RequestInit)
    await next()
    if (body.stalled()) c.res.headers.set('Connection', 'close')
  }
}
