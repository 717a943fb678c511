/**
 * A byte range of an open file as the web stream the driver interface hands out.
 *
 * Read with positional reads straight into fresh buffers that become the stream's chunks:
 * `Readable.toWeb` over an fs stream copies every chunk once more ("to detach it from the pool")
 * and adds a Node stream in between, which costs a third of the throughput of a large download.
 * A range that fits in one chunk is read at once, the file closed, and its bytes handed out as they
 * are (no stream at all), so that a small file is answered in one write.
 *
 * Takes a plain descriptor and closes it synchronously: closing a file opened for reading does not
 * wait for the disk, and a thread-pool round trip for it costs more than the call itself.
 */
import { closeSync, read } from 'node:fs'
import { promisify } from 'node:util'

const readAt = promisify(read)

/**
 * Bytes `start` to `end` (inclusive) of the file open as `fd`: read at once when they fit in one
 * chunk of `chunkSize`, else streamed in such chunks, each read when the reader asks for it. `fd`
 * is closed at the end, on cancel and on error. A file that turns out shorter than the range errors
 * the stream (or the read), so that a response is cut rather than silently short.
 */
export async function fileRange(
  fd: number,
  start: number,
  end: number,
  chunkSize: number,
): Promise<ReadableStream<Uint8Array> | Uint8Array> {
  let position = start
  let open = true
  let reading: Promise<unknown> | undefined
  const close = () => {
    if (open) closeSync(fd)
    open = false
  }
  // A descriptor closed under a read in flight could be reused by another file meanwhile.
  const closeWhenIdle = async () => {
    await reading?.catch(() => {})
    close()
  }

  const readChunk = async (): Promise<Uint8Array | null> => {
    const length = Math.min(chunkSize, end + 1 - position)
    if (length <= 0) return null
    const buffer = Buffer.allocUnsafeSlow(length)
    let filled = 0
    while (filled < length) {
      const pending = readAt(fd, buffer, filled, length - filled, position + filled)
      reading = pending
      const { bytesRead } = await pending
      if (bytesRead === 0) throw new Error('the file became shorter while it was being read')
      filled += bytesRead
    }
    position += length
    return buffer
  }

  if (end + 1 - start <= chunkSize) {
    try {
      return (await readChunk()) ?? new Uint8Array(0)
    } finally {
      close()
    }
  }

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const chunk = await readChunk()
          if (chunk) controller.enqueue(chunk)
          if (!chunk || position > end) {
            close()
            controller.close()
          }
        } catch (e) {
          close()
          throw e
        }
      },
      cancel: closeWhenIdle,
    },
    // Read when asked, not ahead: while the socket still holds the previous chunk (its kernel buffer
    // keeps the connection busy meanwhile), a chunk read ahead would only be one more MiB held per
    // slow download: 40 MiB for 40 of them, for no speed (1 GiB still goes at 1.5x nginx's rate).
    { highWaterMark: 0 },
  )
}
