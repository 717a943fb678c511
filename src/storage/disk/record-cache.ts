/**
 * File records recently read, so that describing a file does not read its record from disk again:
 * a download describes a file twice (to answer preconditions and ranges, then from the opened
 * file), and a busy file is downloaded again and again.
 *
 * Keyed by inode. A record never changes while its file keeps the same bytes (file-records.ts), so
 * an entry is used only while the file still has the size, mtime and birth time it had when the
 * record was read: a file edited in place, or a new file that got a reused inode number, misses.
 * Bounded by the bytes of the records it holds; the least recently used go first.
 */
import type { Stats } from 'node:fs'
import { LRUCache } from 'lru-cache'
import type { FileRecord } from './file-records.js'

interface Entry {
  record: FileRecord
  size: number
  mtimeMs: number
  birthtimeMs: number
  bytes: number
}

export class RecordCache {
  readonly #entries: LRUCache<number, Entry>

  constructor(maxBytes = 4 * 1024 * 1024) {
    this.#entries = new LRUCache({ maxSize: maxBytes, sizeCalculation: (entry) => entry.bytes })
  }

  /** The record read for the file with these `stats`, if still held. */
  get(stats: Stats): FileRecord | undefined {
    const entry = this.#entries.get(stats.ino)
    if (!entry) return undefined
    if (entry.size !== stats.size || entry.mtimeMs !== stats.mtimeMs || entry.birthtimeMs !== stats.birthtimeMs) {
      this.#entries.delete(stats.ino)
      return undefined
    }
    return entry.record
  }

  /** Holds `record`, read from disk (`bytes` long) for the file with these `stats`. */
  set(stats: Stats, record: FileRecord, bytes: number): void {
    const { size, mtimeMs, birthtimeMs } = stats
    // An entry larger than the whole budget is not held (and drops what the key held before).
    this.#entries.set(stats.ino, { record, size, mtimeMs, birthtimeMs, bytes: Math.max(bytes, 1) })
  }

  get size(): number {
    return this.#entries.size
  }
}
