/**
 * Small files recently read whole, with their descriptions, so that reading or describing one
 * again costs one lstat made at once, instead of an open and a read through the thread pool. Each
 * thread-pool call is a hand-off to a pool thread and back (a futex wake-up and a context switch):
 * measured with perf on a 2-core VM, that was a fifth of what a 4 KiB download cost (docs/benchmarks.md).
 *
 * Keyed by absolute path. An entry is used only while the path still names the very file it was
 * read from: the same device and inode, size, mtime and ctime. Every write in the store makes a new
 * inode, and a rename or link of an inode changes its ctime, so an entry can never hand out the
 * bytes or attributes of another version, nor a file moved elsewhere since. A file edited in place
 * (by hand) changes its mtime and ctime; so that this holds where the file system keeps coarse
 * times, a file is held only once its last change is `SETTLED_MS` older than the read: an edit
 * after the read then always gives it another ctime.
 *
 * The lstat is made synchronously: an entry is dropped once unused for `IDLE_MS`, so the path was
 * used moments ago, its directory entries and inode are in the kernel's caches, and the call
 * returns in microseconds without waiting for the disk. Bounded by the bytes it holds, least
 * recently used first out.
 */
import { lstatSync, type Stats } from 'node:fs'
import { LRUCache } from 'lru-cache'
import type { StoredFile } from '../types.js'

/** Files up to this size are held (the size the download handler answers from memory). */
export const SMALL_FILE_BYTES = 64 * 1024

/** Longer than the coarsest timestamps of common file systems (FAT: 2 s; ext4 with small inodes: 1 s). */
export const SETTLED_MS = 2500

/** An entry unused this long is dropped (so its lstat never finds a path the kernel has forgotten). */
export const IDLE_MS = 60_000

/** What an entry costs beyond its bytes (its description, the map's own), as counted against the budget. */
const ENTRY_OVERHEAD_BYTES = 1024

export interface CachedFile {
  file: StoredFile
  bytes: Uint8Array
}

interface Entry extends CachedFile {
  dev: number
  ino: number
  size: number
  mtimeMs: number
  ctimeMs: number
}

export class SmallFileCache {
  readonly #entries: LRUCache<string, Entry> | undefined

  /** `maxBytes` 0 holds nothing. */
  constructor(maxBytes: number, idleMs = IDLE_MS) {
    this.#entries =
      maxBytes > 0
        ? new LRUCache<string, Entry>({
            maxSize: maxBytes,
            sizeCalculation: (entry) => entry.bytes.byteLength + ENTRY_OVERHEAD_BYTES + metadataSize(entry.file),
            ttl: idleMs,
            updateAgeOnGet: true,
          })
        : undefined
  }

  /** The file at `abs` with its bytes, if held and `abs` still names the file they were read from. */
  get(abs: string): CachedFile | undefined {
    const entry = this.#entries?.get(abs)
    if (!entry) return undefined
    let now: Stats | undefined
    try {
      now = lstatSync(abs, { throwIfNoEntry: false })
    } catch {
      // ENOTDIR, EACCES...: not the file any more; the caller's own way says what it is
    }
    if (now && isSameVersion(entry, now)) return entry
    this.#entries!.delete(abs)
    return undefined
  }

  /**
   * Holds `bytes`, the whole content of the file at `abs` (described as `file`), read after `stats`
   * were taken at or after `statsAt` (ms since the epoch). Too large, or changed too recently to be
   * told apart from an edit (see the top of this file): not held.
   */
  set(abs: string, stats: Stats, statsAt: number, file: StoredFile, bytes: Uint8Array): void {
    if (!this.#entries || bytes.byteLength > SMALL_FILE_BYTES || bytes.byteLength !== stats.size) return
    if (statsAt - Math.max(stats.ctimeMs, stats.mtimeMs) < SETTLED_MS) return
    const { dev, ino, size, mtimeMs, ctimeMs } = stats
    this.#entries.set(abs, { file, bytes, dev, ino, size, mtimeMs, ctimeMs })
  }

  /** Bytes held, as counted against the budget. */
  get size(): number {
    return this.#entries?.calculatedSize ?? 0
  }
}

const isSameVersion = (entry: Entry, now: Stats): boolean =>
  now.ino === entry.ino &&
  now.dev === entry.dev &&
  now.size === entry.size &&
  now.mtimeMs === entry.mtimeMs &&
  now.ctimeMs === entry.ctimeMs

/** The metadata's share of an entry: bounded by the metadata limits, but up to some KiB. */
const metadataSize = (file: StoredFile): number =>
  Object.keys(file.metadata).length === 0 ? 0 : JSON.stringify(file.metadata).length
