/**
 * The sha256 of the part each upload's last append left, kept running so the next append can extend
 * that part in place and its digest still covers the whole part without reading it again. Node
 * cannot save a hash's state anywhere but in memory, so this is per process: after a restart, or when
 * another instance took the last append, there is no state and the append writes a new part.
 */
import type { Hash } from 'node:crypto'
import type { PartInfo } from '../types.js'

interface Tail {
  info: PartInfo
  hash: Hash
}

/** Bounds the states kept (a few hundred bytes each); the oldest upload's goes first. */
const MAX_TAILS = 1024

export class AppendTails {
  readonly #tails = new Map<string, Tail>()

  /**
   * A copy of the running hash of `last`, if it is the part this process's last append left for the
   * upload (same number, size and sha256); the kept state stays as it is until `remember` replaces it.
   */
  hashOf(uploadId: string, last: PartInfo | undefined): Hash | undefined {
    const tail = this.#tails.get(uploadId)
    if (!tail || !last) return undefined
    const same = tail.info.part === last.part && tail.info.size === last.size && tail.info.sha256 === last.sha256
    return same ? tail.hash.copy() : undefined
  }

  /** Keeps `hash` (which has hashed exactly the bytes of `info`) for the upload's next append. */
  remember(uploadId: string, info: PartInfo, hash: Hash): void {
    this.#tails.delete(uploadId) // re-inserted last: the Map's order is the eviction order
    this.#tails.set(uploadId, { info, hash })
    if (this.#tails.size > MAX_TAILS) this.#tails.delete(this.#tails.keys().next().value!)
  }

  forget(uploadId: string): void {
    this.#tails.delete(uploadId)
  }
}
