/**
 * The body of a request served by @hono/node-server, read from Node's own IncomingMessage, and the
 * one reader of it: every body read (a handler's stream, Hono's c.req.json(), a validator's peek)
 * goes through `incomingBody`, so its idle timeout holds whoever reads.
 *
 * node-server hands the body out through `Readable.toWeb`, which copies every chunk, wrapped (for
 * methods with a body) in one more web stream; that was a quarter of the CPU of a large upload.
 * This stream hands out the chunks as the socket delivers them, with backpressure (the request is
 * paused while BUFFER_BYTES wait unread, 256 KiB). When the request breaks off (the client cut the
 * connection), the chunks that arrived before the break are still handed out, then the stream
 * errors: a tus append keeps exactly those bytes. Cancelled (an upload refused part way), it stops
 * reading and leaves the rest to the server, which closes or drains the connection as before.
 *
 * Idle timeout: while a reader waits for the next chunk and none comes for `idleTimeoutMs` (a client
 * that stalls, a body shorter than its Content-Length), the stream errors with `request_timeout`,
 * which the handler answers `408` (the connection is then closed, see server.ts). A body that waits
 * unread because the server is busy (backpressure) is never idle: only waiting on the client counts.
 */
import { IncomingMessage } from 'node:http'
import { finished } from 'node:stream'
import type { MiddlewareHandler } from 'hono'
import { StorageError } from '../../storage/index.js'
import type { BodyCounter } from '../service/service.js'

/**
 * Bytes received and not yet read, per request, before the socket is paused: with the upload
 * pipeline's own buffers (digest.ts), what a request may hold in memory. Four socket reads:
 * enough to keep receiving while a chunk is hashed or written. It used to be 1 MiB, which bought no
 * speed: 40 uploads to a busy disk held 40 MiB here for nothing.
 */
const BUFFER_BYTES = 256 * 1024

export interface IncomingBodyOptions {
  /** A reader waiting longer than this for the next chunk fails with `request_timeout`; 0: never. */
  idleTimeoutMs?: number
  /** Told the size of each chunk as it is read (the request's bytes in). */
  count?: ((bytes: number) => void) | undefined
}

/** The IncomingMessage behind a Hono context's request, when @hono/node-server serves it. */
export function nodeIncoming(env: unknown): IncomingMessage | undefined {
  const incoming = (env as { incoming?: unknown } | undefined)?.incoming
  return incoming instanceof IncomingMessage && !incoming.readableDidRead ? incoming : undefined
}

export function incomingBody(incoming: IncomingMessage, options: IncomingBodyOptions = {}): ReadableStream<Uint8Array> {
  const queue: Buffer[] = []
  let queued = 0
  let ended = false
  let failure: unknown
  let wake: (() => void) | undefined
  let idle: NodeJS.Timeout | undefined
  const idleTimeoutMs = options.idleTimeoutMs ?? 0
  const count = options.count

  const onData = (chunk: Buffer) => {
    queue.push(chunk)
    queued += chunk.length
    if (queued >= BUFFER_BYTES) incoming.pause()
    wake?.()
  }
  incoming.on('data', onData)
  const cleanup = finished(incoming, (error) => end(error))
  const end = (error?: unknown) => {
    if (ended) return
    ended = true
    failure = error
    stop()
    wake?.()
  }
  const stop = () => {
    clearTimeout(idle)
    incoming.off('data', onData)
    cleanup()
  }
  const timedOut = () =>
    end(
      new StorageError('request_timeout', `the request body sent nothing for ${idleTimeoutMs / 1000} s`, {
        details: { idleTimeoutSeconds: idleTimeoutMs / 1000 },
      }),
    )

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        while (queue.length === 0 && !ended) {
          if (idleTimeoutMs > 0) idle = setTimeout(timedOut, idleTimeoutMs)
          await new Promise<void>((resolve) => (wake = resolve))
          clearTimeout(idle)
        }
        wake = undefined
        const chunk = queue.shift()
        if (chunk) {
          queued -= chunk.length
          // Resumed once half has been read: not paused and resumed again with every chunk.
          if (queued <= BUFFER_BYTES / 2 && !ended) incoming.resume()
          count?.(chunk.length)
          controller.enqueue(chunk)
        } else if (failure) {
          controller.error(failure)
        } else {
          controller.close()
        }
      },
      cancel() {
        stop()
        queue.length = 0
      },
    },
    // Chunks wait in `queue`, not in the stream's own queue: erroring a web stream drops what its
    // queue holds, and the bytes that arrived before a cut must still be read.
    { highWaterMark: 0 },
  )
}

/** True when the request announces a body (a length above 0, or chunked). */
const hasBody = (incoming: IncomingMessage) =>
  incoming.headers['transfer-encoding'] !== undefined || Number(incoming.headers['content-length'] ?? 0) > 0

/**
 * Methods whose body the fetch `Request` refuses to carry (it throws: CONNECT, TRACE and TRACK
 * always, GET and HEAD with a body). No route reads a body of these: it is left as node-server has
 * it, and the route answers (405 where it does not serve the method).
 */
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'CONNECT', 'TRACE', 'TRACK'])

/**
 * Middleware: a request with a body gets `incomingBody` as its body (`c.req.raw.body`), in place of
 * node-server's own reader, so that every read of it is cheap and bounded by the idle timeout.
 */
export function nodeRequestBody(options: Omit<IncomingBodyOptions, 'count'> & { counter?: BodyCounter } = {}): MiddlewareHandler {
  return async (c, next) => {
    const incoming = nodeIncoming(c.env)
    if (incoming && hasBody(incoming) && !METHODS_WITHOUT_BODY.has(c.req.method)) {
      const raw = c.req.raw
      c.req.raw = new Request(raw.url, {
        method: raw.method,
        headers: raw.headers,
        body: incomingBody(incoming, { ...options, count: options.counter?.(c) }),
        duplex: 'half',
      } as RequestInit)
    }
    await next()
  }
}
