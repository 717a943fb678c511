/**
 * A body that streams no faster than a budget allows: each chunk is read, then passed on once
 * `take` has its bytes from the budget. One chunk waits at a time; nothing is buffered beyond it,
 * and a reader that stops reading stops the source (backpressure holds end to end).
 */
export function throttled(body: ReadableStream<Uint8Array>, take: (bytes: number) => Promise<void>): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await reader.read()
        if (done) {
          controller.close()
          return
        }
        await take(value.byteLength)
        controller.enqueue(value)
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  )
}
