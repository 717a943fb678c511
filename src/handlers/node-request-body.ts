/**
 * The body of a request served by @hono/node-server, read from Node's own IncomingMessage.
 *
 * node-server hands the body out through `Readable.toWeb`, which copies every chunk, wrapped (for
 * methods with a body) in one more web stream; that was a quarter of the CPU of a large upload.
 * This stream hands out the chunks as the socket delivers them, with the same backpressure (the
 * request is paused while 1 MiB waits unread), end and errors. Cancelled (an upload refused part
 * way), it stops reading and leaves the rest to the server, which closes or drains the connection
 * as before.
 */
import { IncomingMessage } from 'node:http'
import { finished } from 'node:stream'

const BUFFER_BYTES = 1024 * 1024

/** The IncomingMessage behind a Hono context's request, when @hono/node-server serves it. */
export function nodeIncoming(env: unknown): IncomingMessage | undefined {
  const incoming = (env as { incoming?: unknown } | undefined)?.incoming
  return incoming instanceof IncomingMessage && !incoming.readableDidRead ? incoming : undefined
}

export function incomingBody(incoming: IncomingMessage): ReadableStream<Uint8Array> {
  let stop = () => {}
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const onData = (chunk: Buffer) => {
          controller.enqueue(chunk)
          if ((controller.desiredSize ?? 0) <= 0) incoming.pause()
        }
        // Paused first, so that listening does not start the flow: pull() does.
        incoming.pause()
        incoming.on('data', onData)
        const cleanup = finished(incoming, (error) => {
          stop()
          if (error) controller.error(error)
          else controller.close()
        })
        stop = () => {
          incoming.off('data', onData)
          cleanup()
        }
      },
      pull() {
        incoming.resume()
      },
      cancel() {
        stop()
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: BUFFER_BYTES }),
  )
}
