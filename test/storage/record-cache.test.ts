/**
 * The disk driver's record cache: an entry serves only the exact file it was read for (inode, size,
 * mtime, birth time), and the cache stays within its byte budget, dropping the least recently used first.
 */
import type { Stats } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { FileRecord } from '../../src/storage/disk/file-records.js'
import { RecordCache } from '../../src/storage/disk/record-cache.js'

const stats = (over: Partial<Stats> = {}) => ({ ino: 7, size: 10, mtimeMs: 1000.5, birthtimeMs: 900.25, ...over }) as Stats
const record = (sha256: string): FileRecord => ({
  v: 2,
  sha256,
  size: 10,
  mtimeMs: 1000.5,
  contentType: 'text/plain',
  metadata: {},
  created: '2024-01-01T00:00:00.000Z',
})

describe('RecordCache', () => {
  it('serves an entry only while inode, size, mtime and birth time are all unchanged', () => {
    const cache = new RecordCache()
    cache.set(stats(), record('x'), 100)
    expect(cache.get(stats())?.sha256).toBe('x')
    expect(cache.get(stats({ ctimeMs: 5 }))?.sha256).toBe('x') // a move changes the ctime, not the file
    for (const changed of [{ size: 11 }, { mtimeMs: 1000.6 }, { birthtimeMs: 901 }]) {
      cache.set(stats(), record('x'), 100)
      expect(cache.get(stats(changed))).toBeUndefined()
      expect(cache.get(stats())).toBeUndefined() // a mismatch drops the entry
    }
    expect(cache.get(stats({ ino: 8 }))).toBeUndefined()
  })

  it('keeps within its byte budget, dropping the least recently used first', () => {
    const cache = new RecordCache(300)
    const of = (ino: number) => stats({ ino })
    cache.set(of(1), record('a'), 100)
    cache.set(of(2), record('b'), 100)
    cache.set(of(3), record('c'), 100)
    cache.get(of(1)) // 1 is now the most recently used
    cache.set(of(4), record('d'), 100)
    expect(cache.get(of(2))).toBeUndefined()
    expect([1, 3, 4].map((i) => cache.get(of(i))?.sha256)).toEqual(['a', 'c', 'd'])
    cache.set(of(5), record('h'), 301)
    expect(cache.get(of(5))).toBeUndefined()
    expect(cache.size).toBe(3)
  })
})
