/**
 * Files the store did not write itself (dropped into the folder by hand, or edited in place) have
 * no record for their bytes, so a read describes them from the bytes, hashing them. To do that once
 * rather than on every read, the record such a read derived is written afterwards, in the
 * background, one file at a time: the read itself never writes.
 *
 * This never races a writer: writers give every new file its record before it gets a name, and
 * never change a file in place, so a file without a matching record is one no writer is recording.
 * FileRecords.adopt checks the path still holds those very bytes before recording them.
 */
import type { Stats } from 'node:fs'
import type { FileRecord, FileRecords } from './file-records.js'

/** At most this many files wait; more are left for a later read to queue again. */
const MAX_PENDING = 1000

interface Pending {
  path: string
  stats: Stats
  record: FileRecord
}

export class Adoptions {
  readonly #pending = new Map<number, Pending>()
  #running: Promise<void> | undefined

  constructor(private readonly records: FileRecords) {}

  /** Queues recording `record` for the file at `path` (absolute), which had `stats` when it was hashed. */
  add(path: string, stats: Stats, record: FileRecord): void {
    if (this.#pending.size >= MAX_PENDING || this.#pending.has(stats.ino)) return
    this.#pending.set(stats.ino, { path, stats, record })
    this.#running ??= this.#drain().finally(() => (this.#running = undefined))
  }

  /** Settles when every queued adoption has been tried. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running
  }

  async #drain(): Promise<void> {
    for (const [ino, { path, stats, record }] of this.#pending) {
      // Only a cache of the bytes' description: a failure leaves the next read to hash them again.
      await this.records.adopt(path, stats, record).catch(() => false)
      this.#pending.delete(ino)
    }
  }
}
