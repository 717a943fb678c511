/**
 * Stream helpers shared by the drivers.
 */
import { Readable } from 'node:stream'
import { StorageError } from './errors.js'
import type { ReadResult, StoredFile } from './types.js'

/**
 * Iterates an upload body. A body that fails mid-way (the client went away, a proxy cut it) is a
 * client-side failure, reported as `invalid_request`, not as an error of the store.
 */
export async function* bodyChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader()
  try {
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>
      try {
        result = await reader.read()
      } catch (e) {
        if (e instanceof StorageError) throw e
        throw new StorageError('invalid_request', 'the request body ended before it was complete', { cause: e })
      }
      if (result.done) return
      yield result.value
    }
  } finally {
    // Stopped early (a limit or a checksum failed): let go of the body so the connection can be reused or closed.
    reader.cancel().catch(() => {})
    reader.releaseLock()
  }
}

/** A Node readable as the web stream the driver interface hands out. */
export const toWebStream = (readable: Readable): ReadableStream<Uint8Array> =>
  Readable.toWeb(readable) as unknown as ReadableStream<Uint8Array>

/** Bytes in memory as a web stream of one chunk. */
export function streamOfBytes(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(bytes)
      controller.close()
    },
  })
}

/** A read whose bytes are all in memory: `bytes`, and a stream of them made only if asked for. */
export function readOfBytes(file: StoredFile, bytes: Uint8Array): ReadResult {
  return {
    file,
    bytes,
    get body() {
      return streamOfBytes(bytes)
    },
  }
}
