/**
 * A file fed one chunk at a time, for a writer that must know each chunk is taken before it reads
 * the next (a tus append: when the body breaks off, the file must hold exactly the bytes that were
 * counted and hashed). `write` resolves as soon as the chunk is taken into a 1 MiB buffer, which is
 * written out in batches (writev) while the next chunks arrive; `close` writes out everything taken,
 * then closes the file. Awaiting every write before reading on, as before, capped a tus upload at
 * half the rate of a plain one.
 */
import { once } from 'node:events'
import { createWriteStream, type WriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import { STREAM_BUFFER_BYTES } from '../digest.js'
import { tmpFileWriter } from './layout.js'

export class FileSink {
  readonly #stream: WriteStream
  #error: Error | undefined

  /** A new temporary file at `tmp`. */
  static create(tmp: string): FileSink {
    return new FileSink(tmpFileWriter(tmp))
  }

  /** The existing file at `path`, written from byte `start` on (what lies past it is overwritten). */
  static continuing(path: string, start: number): FileSink {
    return new FileSink(createWriteStream(path, { flags: 'r+', start, highWaterMark: STREAM_BUFFER_BYTES }))
  }

  private constructor(stream: WriteStream) {
    this.#stream = stream
    // Kept for the next write or close to throw; an unheard 'error' would end the process.
    this.#stream.on('error', (e) => {
      this.#error ??= e
    })
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#error) throw this.#error
    // once() rejects if the stream fails while we wait.
    if (!this.#stream.write(chunk)) await once(this.#stream, 'drain')
  }

  /** Writes out every chunk taken, then closes the file; throws if any write failed. */
  async close(): Promise<void> {
    if (this.#error) {
      this.#stream.destroy()
      throw this.#error
    }
    await finished(this.#stream.end())
  }
}
