/** Byte streams for tests: known content, generated content of any size, bodies that fail. */
import { createHash } from 'node:crypto'

export const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex')

export function streamOf(...chunks: (Uint8Array | string)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === 'string' ? encoder.encode(c) : c)
      controller.close()
    },
  })
}

/**
 * Deterministic pseudo-random bytes, generated as they are read: `size` bytes never sit in memory.
 * The same seed and size always give the same bytes; `digest()` gives their sha256 once read.
 */
export function generated(size: number, seed = 1, chunkSize = 1024 * 1024) {
  const hash = createHash('sha256')
  let sent = 0
  let state = seed >>> 0 || 1
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) {
        controller.close()
        return
      }
      const n = Math.min(chunkSize, size - sent)
      const chunk = new Uint8Array(n)
      const words = new Uint32Array(chunk.buffer, 0, n >>> 2)
      for (let i = 0; i < words.length; i++) {
        state ^= state << 13
        state ^= state >>> 17
        state ^= state << 5
        words[i] = state >>> 0
      }
      for (let i = words.length * 4; i < n; i++) chunk[i] = i & 0xff
      hash.update(chunk)
      sent += n
      controller.enqueue(chunk)
    },
  })
  return { stream, digest: () => hash.digest('hex') }
}

/** The sha256 of `generated(size, seed)` without keeping the bytes. */
export async function generatedSha256(size: number, seed = 1): Promise<string> {
  const g = generated(size, seed)
  const reader = g.stream.getReader()
  while (!(await reader.read()).done);
  return g.digest()
}

/** A body that sends `bytes` bytes, then fails as a cut connection would. */
export function failingAfter(bytes: number): ReadableStream<Uint8Array> {
  let sent = false
  return new ReadableStream({
    pull(controller) {
      if (!sent) {
        sent = true
        controller.enqueue(new Uint8Array(bytes).fill(7))
        return
      }
      controller.error(new Error('connection reset by test'))
    },
  })
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return Buffer.concat(chunks)
}

export const text = async (stream: ReadableStream<Uint8Array>) => (await readAll(stream)).toString('utf8')

/**
 * A body that sends `content` only once `gate` settles. `reading` resolves when its reader first
 * asks for bytes (not before: the stream does not read ahead), so a test knows the receiver got
 * past everything it checks before reading the body.
 */
export function heldUntil(gate: Promise<void>, content: Uint8Array): { stream: ReadableStream<Uint8Array>; reading: Promise<void> } {
  let started!: () => void
  const reading = new Promise<void>((resolve) => (started = resolve))
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        started()
        await gate
        controller.enqueue(content)
        controller.close()
      },
    },
    { highWaterMark: 0 },
  )
  return { stream, reading }
}
