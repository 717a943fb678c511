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

/**
 * Reads `chunks` until more than `limit` bytes came or they ended: what came, and whether that was
 * all. The rest, if any, is still to be read from `chunks` (see `resumed`).
 */
export async function gatherUpTo(chunks: AsyncIterator<Uint8Array>, limit: number): Promise<{ gathered: Uint8Array[]; ended: boolean }> {
  const gathered: Uint8Array[] = []
  let size = 0
  while (size <= limit) {
    const next = await chunks.next()
    if (next.done) return { gathered, ended: true }
    gathered.push(next.value)
    size += next.value.length
  }
  return { gathered, ended: false }
}

/**
 * `gathered`, then the rest of `chunks`: a body that `gatherUpTo` read the start of, whole again.
 * Not a generator: one closed before its first chunk would not pass the close on to `chunks`,
 * which would then never let go of the body it reads.
 */
export function resumed(gathered: Uint8Array[], chunks: AsyncGenerator<Uint8Array>): AsyncIterableIterator<Uint8Array> {
  let next = 0
  return {
    [Symbol.asyncIterator]() {
      return this
    },
    next: () => (next < gathered.length ? Promise.resolve({ done: false, value: gathered[next++]! }) : chunks.next()),
    return: () => chunks.return(undefined),
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
