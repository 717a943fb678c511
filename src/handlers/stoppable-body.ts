/**
 * A request body that can be stopped from outside: once `signal` aborts, the body fails with the
 * error `reason` makes, as if the connection had been cut there; a read waiting on the client ends
 * at once. What arrived before is still handed out. Used by tus (a newer request for the upload
 * takes over) and by JSON bodies (a total deadline).
 */
export function stoppableBody(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  reason: () => Error,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  // A pending read resolves (done) when the body is cancelled; `pull` then reports the stop.
  signal.addEventListener('abort', () => reader.cancel(reason()).catch(() => {}), { once: true })
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (signal.aborted) return controller.error(reason())
      let result: Awaited<ReturnType<typeof reader.read>>
      try {
        result = await reader.read()
      } catch (e) {
        return controller.error(e)
      }
      if (signal.aborted) return controller.error(reason())
      if (result.done) controller.close()
      else controller.enqueue(result.value)
    },
    cancel: (why) => reader.cancel(why),
  })
}
