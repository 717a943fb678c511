/**
 * Reading the start of a body and going on with it: `gatherUpTo` reads whole chunks until past its
 * limit or the end, `resumed` hands the body out whole again, and closing it early, even before its
 * first chunk, lets go of the body underneath.
 */
import { describe, expect, it } from 'vitest'
import { bodyChunks, gatherUpTo, resumed } from '../../src/storage/streams.js'

/** A body of `chunks`, recording whether it was cancelled. */
function body(chunks: string[]) {
  const state = { cancelled: false }
  let next = 0
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(Buffer.from(chunks[next++]!))
      else controller.close()
    },
    cancel() {
      state.cancelled = true
    },
  })
  return { stream, state }
}

const text = (chunks: Uint8Array[]) => Buffer.concat(chunks).toString()

describe('gatherUpTo and resumed', () => {
  it('gathers a body that ends within the limit, and says it ended', async () => {
    const { gathered, ended } = await gatherUpTo(bodyChunks(body(['ab', 'cd', 'ef']).stream), 6)
    expect(ended).toBe(true)
    expect(text(gathered)).toBe('abcdef')
  })

  it('stops past the limit, and resumed hands out the whole body in order', async () => {
    const chunks = bodyChunks(body(['ab', 'cd', 'ef', 'gh']).stream)
    const head = await gatherUpTo(chunks, 3)
    expect(head.ended).toBe(false)
    expect(text(head.gathered)).toBe('abcd')
    const all: Uint8Array[] = []
    for await (const chunk of resumed(head.gathered, chunks)) all.push(chunk)
    expect(text(all)).toBe('abcdefgh')
  })

  it('closed before its first chunk, resumed lets go of the body', async () => {
    const { stream, state } = body(['ab', 'cd', 'ef'])
    const chunks = bodyChunks(stream)
    const head = await gatherUpTo(chunks, 1)
    await resumed(head.gathered, chunks).return?.(undefined)
    expect(state.cancelled).toBe(true)
    expect(stream.locked).toBe(false)
  })
})
