/**
 * The disk driver's file reader: byte ranges of an open file as web streams in whole chunks, or as
 * bytes when they fit in one; the descriptor always closed, and a file that shrinks while read cuts
 * the stream (or fails the read) instead of ending it.
 */
import { randomBytes } from 'node:crypto'
import { fstatSync, openSync } from 'node:fs'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fileRange } from '../../src/storage/disk/file-stream.js'

let dir: string
let file: string
const content = randomBytes(10_000)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'filestorage-file-stream-'))
  file = join(dir, 'f.bin')
  await writeFile(file, content)
})
afterAll(() => rm(dir, { recursive: true, force: true }))

async function chunksOf(content: ReadableStream<Uint8Array> | Uint8Array): Promise<Uint8Array[]> {
  if (content instanceof Uint8Array) throw new Error('expected a stream, got bytes')
  const stream = content
  const chunks: Uint8Array[] = []
  for await (const chunk of stream) chunks.push(chunk)
  return chunks
}

const bytes = (chunks: Uint8Array[]) => Buffer.concat(chunks)

/** Whether `fd` is still an open descriptor (nothing else opens files while a test runs). */
function isOpen(fd: number): boolean {
  try {
    fstatSync(fd)
    return true
  } catch {
    return false
  }
}

describe('fileRange', () => {
  it('streams a range larger than a chunk in whole chunks, then closes the file', async () => {
    const fd = openSync(file, 'r')
    const chunks = await chunksOf(await fileRange(fd, 100, 9_099, 4096))
    expect(chunks.map((c) => c.length)).toEqual([4096, 4096, 808])
    expect(bytes(chunks).equals(content.subarray(100, 9_100))).toBe(true)
    expect(isOpen(fd)).toBe(false)
  })

  it('reads a range that fits in one chunk at once, as bytes, and closes the file before handing them out', async () => {
    const fd = openSync(file, 'r')
    const whole = await fileRange(fd, 0, 9_999, 1024 * 1024)
    expect(isOpen(fd)).toBe(false)
    expect(whole).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(whole as Uint8Array).equals(content)).toBe(true)
    const fd2 = openSync(file, 'r')
    const part = await fileRange(fd2, 10, 19, 4096)
    expect(Buffer.from(part as Uint8Array).equals(content.subarray(10, 20))).toBe(true)
    expect(isOpen(fd2)).toBe(false)
  })

  it('gives no bytes for an empty range (an empty file)', async () => {
    const fd = openSync(file, 'r')
    expect(await fileRange(fd, 0, -1, 4096)).toEqual(new Uint8Array(0))
    expect(isOpen(fd)).toBe(false)
  })

  it('fails the read of a small range, and closes the file, when the file is shorter', async () => {
    const short = join(dir, 'short-small.bin')
    await writeFile(short, content.subarray(0, 100))
    const fd = openSync(short, 'r')
    await expect(fileRange(fd, 0, 199, 4096)).rejects.toThrow(/shorter/)
    expect(isOpen(fd)).toBe(false)
  })

  it('closes the file when the reader cancels', async () => {
    const fd = openSync(file, 'r')
    const reader = ((await fileRange(fd, 0, 9_999, 1000)) as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    await reader.cancel()
    expect(isOpen(fd)).toBe(false)
  })

  it('errors, and closes the file, when the file is shorter than the range', async () => {
    const short = join(dir, 'short.bin')
    await writeFile(short, content)
    const fd = openSync(short, 'r')
    const stream = await fileRange(fd, 0, 9_999, 4096)
    await truncate(short, 5000)
    await expect(chunksOf(stream)).rejects.toThrow(/shorter/)
    expect(isOpen(fd)).toBe(false)
  })
})
