/**
 * The disk driver's sidecar cache: an entry serves only the exact file identity it was read for,
 * and the cache stays within its byte budget, dropping the least recently used first.
 */
import type { Stats } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Sidecar } from '../../src/storage/disk/sidecar.js'
import { SidecarCache } from '../../src/storage/disk/sidecar-cache.js'

const stats = (over: Partial<Stats> = {}) => ({ ino: 7, size: 10, mtimeMs: 1000.5, ctimeMs: 1000.5, ...over }) as Stats
const sidecar = (sha256: string): Sidecar => ({
  v: 1,
  sha256,
  size: 10,
  mtimeMs: 1000.5,
  ino: 7,
  contentType: 'text/plain',
  metadata: {},
  created: '2024-01-01T00:00:00.000Z',
})

describe('SidecarCache', () => {
  it('serves an entry only while inode, size, mtime and ctime are all unchanged', () => {
    const cache = new SidecarCache()
    cache.set('a.txt', sidecar('x'), stats(), 100)
    expect(cache.get('a.txt', stats())?.sha256).toBe('x')
    for (const changed of [{ ino: 8 }, { size: 11 }, { mtimeMs: 1000.6 }, { ctimeMs: 2000 }]) {
      cache.set('a.txt', sidecar('x'), stats(), 100)
      expect(cache.get('a.txt', stats(changed))).toBeUndefined()
      expect(cache.get('a.txt', stats())).toBeUndefined() // a mismatch drops the entry
    }
    expect(cache.get('b.txt', stats())).toBeUndefined()
  })

  it('keeps within its byte budget, dropping the least recently used first', () => {
    const cache = new SidecarCache(300)
    cache.set('a', sidecar('a'), stats(), 100)
    cache.set('b', sidecar('b'), stats(), 100)
    cache.set('c', sidecar('c'), stats(), 100)
    cache.get('a', stats()) // a is now the most recently used
    cache.set('d', sidecar('d'), stats(), 100)
    expect(cache.get('b', stats())).toBeUndefined()
    expect(['a', 'c', 'd'].map((p) => cache.get(p, stats())?.sha256)).toEqual(['a', 'c', 'd'])
    cache.set('huge', sidecar('h'), stats(), 301)
    expect(cache.get('huge', stats())).toBeUndefined()
    expect(cache.size).toBe(3)
  })
})
