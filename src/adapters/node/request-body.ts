/**
 * The body of a request served by @hono/node-server, read from Node's own IncomingMessage.
 *
 * node-server hands the body out through `Readable.toWeb`, which copies every chunk, wrapped (for
 * methods with a body) in one more web stream; that was a quarter of the CPU of a large upload.
 * This stream hands out the chunks as the socket delivers them, with backpressure (the request is
 * paused while 1 MiB waits unread). When the request breaks off (the client cut the connection),
 * the chunks that arrived before the break are still handed out, then the stream errors: a tus
 * append keeps exactly those bytes. Cancelled (an upload refused part way), it stops reading and
 * leaves the rest to the server, which closes or drains the connection as before.
 */
import { IncomingMessage } from 'node:http'
import { finished } from 'node:stream'
import type { MiddlewareHandler } from 'hono'

const BUFFER_BYTES = 1024 * 1024

/** The IncomingMessage behind a Hono context's request, when @hono/node-server serves it. */
export function nodeIncoming(env: unknown): IncomingMessage | undefined {
  const incoming = (env as { incoming?: unknown } | undefined)?.incoming
  return incoming instanceof IncomingMessage && !incoming.readableDidRead ? incoming : undefined
}

export function incomingBody(incoming: IncomingMessage): ReadableStream<Uint8Array> {
  const queue: Buffer[] = []
  let queued = 0
  let ended = false
  let failure: unknown
  let wake: (() => void) | undefined

  const onData = (chunk: Buffer) => {
    queue.push(chunk)
    queued += chunk.length
    if (queued >= BUFFER_BYTES) incoming.pause()
    wake?.()
  }
  incoming.on('data', onData)
  const cleanup = finished(incoming, (error) => {
    ended = true
    failure = error
    stop()
    wake?.()
  })
  const stop = () => {
    incoming.off('data', onData)
    cleanup()
  }

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        while (queue.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
        const chunk = queue.shift()
        if (chunk) {
          queued -= chunk.length
          if (queued < BUFFER_BYTES && !ended) incoming.resume()
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

/** Middleware: handlers read request bodies through `incomingBody` when node-server serves the request. */
export function nodeRequestBody(): MiddlewareHandler {
  return async (c, next) => {
    const incoming = nodeIncoming(c.env)
    if (incoming) c.set('requestBody', () => incomingBody(incoming))
    await next()
  }
}
