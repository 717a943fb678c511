/**
 * One write at a time per upload in this process, the newest request winning, as tus servers do
 * (tusd, tus-node-server): a client that resumes has given up on its earlier request, which may
 * still be open on a half-dead connection. A new HEAD, PATCH or DELETE for the upload stops the write
 * in flight (its body ends there, and what arrived is kept), waits until it has settled, and only
 * then reads the offset, so the offset it reports is never overtaken by a write still committing.
 * Completions run inside these steps too, so one upload is never assembled twice at once here.
 *
 * Across instances the storage core keeps appends consistent (an append commits only at the offset
 * it was sent for); this only spares a resuming client a needless 409 on the same instance.
 */
import { StorageError } from '../../storage/index.js'
import { stoppableBody } from '../stoppable-body.js'

const tookOver = () => new StorageError('invalid_request', 'a newer request for this upload took over')

interface Write {
  stop(): void
  settled: Promise<void>
}

export class UploadWrites {
  readonly #current = new Map<string, Write>()

  /**
   * Runs `step` alone on the upload (in this process): any step still running on it is stopped
   * first and waited for. `step` gets the signal that a later request sets off to stop it.
   */
  async exclusive<T>(uploadId: string, step: (stop: AbortSignal) => Promise<T>): Promise<T> {
    for (let earlier = this.#current.get(uploadId); earlier; earlier = this.#current.get(uploadId)) {
      earlier.stop()
      await earlier.settled
    }
    const stopper = new AbortController()
    let settle!: () => void
    const entry: Write = { stop: () => stopper.abort(), settled: new Promise((resolve) => (settle = resolve)) }
    this.#current.set(uploadId, entry)
    try {
      return await step(stopper.signal)
    } finally {
      if (this.#current.get(uploadId) === entry) this.#current.delete(uploadId)
      settle()
    }
  }

  /** `exclusive`, for a step that writes `body`: a later request stops it by ending the body there. */
  run<T>(uploadId: string, body: ReadableStream<Uint8Array>, write: (body: ReadableStream<Uint8Array>) => Promise<T>): Promise<T> {
    return this.exclusive(uploadId, (stop) => write(stoppableBody(body, stop, tookOver)))
  }
}
