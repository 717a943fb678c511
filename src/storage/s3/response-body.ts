/**
 * An S3 response body (the SDK's Node stream of the socket's chunks) as the web stream the driver
 * interface hands out, chunk for chunk: `Readable.toWeb` would copy every chunk once more (to
 * detach it from a pool these chunks are not in), a third of a large download's CPU. A chunk is
 * read only when the reader asks for one, so a slow client holds the S3 connection back, not memory;
 * cancelling the web stream destroys the response (its connection is not reused).
 */
import type { Readable } from 'node:stream'

export function responseBody(body: Readable): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next()
        if (next.done) controller.close()
        else controller.enqueue(next.value)
      },
      async cancel() {
        body.destroy()
        await chunks.return?.()
      },
    },
    { highWaterMark: 0 },
  )
}
