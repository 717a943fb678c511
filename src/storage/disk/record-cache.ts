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
import type { FileRecord } from './file-records.js'

interface Entry {
  record: FileRecord
  size: number
  mtimeMs: number
  birthtimeMs: number
  bytes: number
}

export class RecordCache {
  readonly #entries = new Map<number, Entry>()
  readonly #maxBytes: number
  #bytes = 0

  constructor(maxBytes = 4 * 1024 * 1024) {
    this.#maxBytes = maxBytes
  }

  /** The record read for the file with these `stats`, if still held. */
  get(stats: Stats): FileRecord | undefined {
    const entry = this.#entries.get(stats.ino)
    if (!entry) return undefined
    if (entry.size !== stats.size || entry.mtimeMs !== stats.mtimeMs || entry.birthtimeMs !== stats.birthtimeMs) {
      this.#remove(stats.ino, entry)
      return undefined
    }
    // Most recently used last.
    this.#entries.delete(stats.ino)
    this.#entries.set(stats.ino, entry)
    return entry.record
  }

  /** Holds `record`, read from disk (`bytes` long) for the file with these `stats`. */
  set(stats: Stats, record: FileRecord, bytes: number): void {
    const previous = this.#entries.get(stats.ino)
    if (previous) this.#remove(stats.ino, previous)
    if (bytes > this.#maxBytes) return
    const { size, mtimeMs, birthtimeMs } = stats
    this.#entries.set(stats.ino, { record, size, mtimeMs, birthtimeMs, bytes })
    this.#bytes += bytes
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break
      this.#remove(oldest, entry)
    }
  }

  get size(): number {
    return this.#entries.size
  }

  #remove(ino: number, entry: Entry): void {
    this.#entries.delete(ino)
    this.#bytes -= entry.bytes
  }
}
