/**
 * The disk driver's file reader: byte ranges of an open file as web streams, whole chunks, the
 * descriptor always closed, and a file that shrinks while read cuts the stream instead of ending it.
 */
import { randomBytes } from 'node:crypto'
import { fstatSync, openSync } from 'node:fs'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fileRangeStream } from '../../src/storage/disk/file-stream.js'

let dir: string
let file: string
const content = randomBytes(10_000)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'filestorage-file-stream-'))
  file = join(dir, 'f.bin')
  await writeFile(file, content)
})
afterAll(() => rm(dir, { recursive: true, force: true }))

async function chunksOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
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

describe('fileRangeStream', () => {
  it('streams a range larger than a chunk in whole chunks, then closes the file', async () => {
    const fd = openSync(file, 'r')
    const chunks = await chunksOf(await fileRangeStream(fd, 100, 9_099, 4096))
    expect(chunks.map((c) => c.length)).toEqual([4096, 4096, 808])
    expect(bytes(chunks).equals(content.subarray(100, 9_100))).toBe(true)
    expect(isOpen(fd)).toBe(false)
  })

  it('reads a range that fits in one chunk at once and closes the file before handing it out', async () => {
    const fd = openSync(file, 'r')
    const stream = await fileRangeStream(fd, 0, 9_999, 1024 * 1024)
    expect(isOpen(fd)).toBe(false)
    const chunks = await chunksOf(stream)
    expect(chunks).toHaveLength(1)
    expect(bytes(chunks).equals(content)).toBe(true)
  })

  it('gives an empty stream for an empty range (an empty file)', async () => {
    const fd = openSync(file, 'r')
    expect(await chunksOf(await fileRangeStream(fd, 0, -1, 4096))).toEqual([])
    expect(isOpen(fd)).toBe(false)
  })

  it('closes the file when the reader cancels', async () => {
    const fd = openSync(file, 'r')
    const reader = (await fileRangeStream(fd, 0, 9_999, 1000)).getReader()
    await reader.read()
    await reader.cancel()
    expect(isOpen(fd)).toBe(false)
  })

  it('errors, and closes the file, when the file is shorter than the range', async () => {
    const short = join(dir, 'short.bin')
    await writeFile(short, content)
    const fd = openSync(short, 'r')
    const stream = await fileRangeStream(fd, 0, 9_999, 4096)
    await truncate(short, 5000)
    await expect(chunksOf(stream)).rejects.toThrow(/shorter/)
    expect(isOpen(fd)).toBe(false)
  })
})
