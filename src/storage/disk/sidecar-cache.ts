/**
 * Sidecars recently read, so that describing a file does not read its sidecar from disk again
 * while the file is unchanged: a download describes a file twice (to answer preconditions and
 * ranges, then from the opened file), and a busy file is downloaded again and again.
 *
 * An entry is used only while the data file has the very identity it had when the sidecar was
 * read: inode, size, mtime and ctime. Every write makes a new inode, and a rename (a move, from
 * this process or another one sharing the folder) changes the ctime, so an entry can never
 * describe another version of the file; anything else is read from disk as before.
 * Bounded by the bytes of the sidecars it holds; the least recently used go first.
 */
import type { Stats } from 'node:fs'
import type { Sidecar } from './sidecar.js'

interface Entry {
  sidecar: Sidecar
  ino: number
  size: number
  mtimeMs: number
  ctimeMs: number
  bytes: number
}

export class SidecarCache {
  readonly #entries = new Map<string, Entry>()
  readonly #maxBytes: number
  #bytes = 0

  constructor(maxBytes = 4 * 1024 * 1024) {
    this.#maxBytes = maxBytes
  }

  /** The sidecar read for `path` while its data file had exactly these `stats`, if still held. */
  get(path: string, stats: Stats): Sidecar | undefined {
    const entry = this.#entries.get(path)
    if (!entry) return undefined
    if (
      entry.ino !== stats.ino ||
      entry.size !== stats.size ||
      entry.mtimeMs !== stats.mtimeMs ||
      entry.ctimeMs !== stats.ctimeMs
    ) {
      this.#remove(path, entry)
      return undefined
    }
    // Most recently used last.
    this.#entries.delete(path)
    this.#entries.set(path, entry)
    return entry.sidecar
  }

  /** Holds `sidecar`, read from disk (`bytes` long) while the data file had these `stats`. */
  set(path: string, sidecar: Sidecar, stats: Stats, bytes: number): void {
    const previous = this.#entries.get(path)
    if (previous) this.#remove(path, previous)
    if (bytes > this.#maxBytes) return
    const { ino, size, mtimeMs, ctimeMs } = stats
    this.#entries.set(path, { sidecar, ino, size, mtimeMs, ctimeMs, bytes })
    this.#bytes += bytes
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break
      this.#remove(oldest, entry)
    }
  }

  get size(): number {
    return this.#entries.size
  }

  #remove(path: string, entry: Entry): void {
    this.#entries.delete(path)
    this.#bytes -= entry.bytes
  }
}
