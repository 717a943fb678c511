/**
 * A body that passes bytes on only as far as a change holds room for them: the reservation grows
 * ahead of the bytes, by steps that double (1 MiB, 2 MiB, ... up to 64 MiB, never more than the
 * room left), so a body of unknown length costs a few updates of the ledger, not one per chunk.
 * When the quota has no room for the next chunk, the body fails with `quota_exceeded` before that
 * chunk is passed on: the store discards what it received, and nothing over the limit is kept.
 *
 * Nothing is buffered: one chunk is read when the store asks for one.
 */
import type { StorageError } from '../errors.js'

const MIN_STEP = 1024 * 1024
const MAX_STEP = 64 * 1024 * 1024

export interface Room {
  /** Reserves up to `want` more bytes and at least `need` (`quota_exceeded` otherwise); resolves to the bytes granted. */
  grow(need: number, want: number): Promise<number>
}

export interface MeteredBody {
  body: ReadableStream<Uint8Array>
  /** Bytes reserved so far (with what was granted before: `granted` of the options). */
  granted(): number
  /** Bytes passed on. */
  passed(): number
  /** The refusal that stopped the body, if one did. */
  refusal(): StorageError | undefined
}

/**
 * `body` metered against `room`. `granted`: bytes reserved already. `announced`: the size the body
 * says it has (Content-Length), reserved whole before the first byte is read.
 */
export function meteredBody(body: ReadableStream<Uint8Array>, room: Room, options: { granted?: number; announced?: number } = {}): MeteredBody {
  let granted = options.granted ?? 0
  let passed = 0
  let refusal: StorageError | undefined
  const reader = body.getReader()
  const reserve = async (need: number) => {
    const step = Math.min(MAX_STEP, Math.max(MIN_STEP, granted))
    granted += await room.grow(need, Math.max(need, step))
  }
  const metered = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (passed === 0 && options.announced !== undefined && options.announced > granted) {
            granted += await room.grow(options.announced - granted, options.announced - granted)
          }
          const { done, value } = await reader.read()
          if (done) {
            controller.close()
            return
          }
          if (passed + value.byteLength > granted) await reserve(passed + value.byteLength - granted)
          passed += value.byteLength
          controller.enqueue(value)
        } catch (e) {
          if ((e as StorageError).code === 'quota_exceeded') {
            refusal = e as StorageError
            reader.cancel(e).catch(() => {})
          }
          controller.error(e)
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  )
  return { body: metered, granted: () => granted, passed: () => passed, refusal: () => refusal }
}
