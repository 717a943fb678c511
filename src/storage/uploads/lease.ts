/**
 * The lock of a completion on a driver without one of its own (`UploadStaging.exclusive`): a lease
 * in the upload's record, taken by compare-and-set, renewed every third of its length while the
 * completion works, and let go when it ends. A completion that died holds the upload until its
 * lease runs out; one that waits gives up after two lease lengths.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { StorageError } from '../errors.js'
import { type UploadBook, without } from './records.js'
import { isExpired, uploadNotFound } from './rules.js'

/** How often a waiting completion looks whether the lease is free. */
const POLL_MS = 250

export class CompletionLease {
  constructor(
    private readonly book: UploadBook,
    private readonly leaseMs: number,
  ) {}

  /** Runs `fn` holding the upload's lease; at once, without one, when the upload has ended (`fn` answers that). */
  async hold<T>(uploadId: string, fn: () => Promise<T>): Promise<T> {
    const by = randomBytes(8).toString('hex')
    if (!(await this.#take(uploadId, by))) return fn()
    const renewing = setInterval(() => void this.#renew(uploadId, by), this.leaseMs / 3)
    try {
      return await fn()
    } finally {
      clearInterval(renewing)
      await this.book.change(uploadId, (state) => (state.completing?.by === by ? without(state, 'completing') : null)).catch(() => {})
    }
  }

  /** Takes the lease as `by`, waiting while another holder keeps it; false when the upload has ended. */
  async #take(uploadId: string, by: string): Promise<boolean> {
    const deadline = Date.now() + 2 * this.leaseMs
    for (;;) {
      const found = await this.book.records.read(uploadId)
      if (!found || isExpired(found.state.expiresAt)) throw uploadNotFound(uploadId)
      const { state, version } = found
      if (state.finished) return false
      const now = Date.now()
      if (!state.completing || Date.parse(state.completing.until) < now) {
        const completing = { until: new Date(now + this.leaseMs).toISOString(), by }
        if (await this.book.records.update(uploadId, version, { ...state, completing })) return true
        continue // changed meanwhile: look again
      }
      if (now > deadline) throw new StorageError('upload_incomplete', 'the upload is being completed by another request')
      await sleep(POLL_MS)
    }
  }

  async #renew(uploadId: string, by: string): Promise<void> {
    const until = () => new Date(Date.now() + this.leaseMs).toISOString()
    await this.book
      .change(uploadId, (state) => (state.completing?.by === by && !state.finished ? { ...state, completing: { until: until(), by } } : null))
      .catch(() => {}) // a lease not renewed runs out: another completion may then go on
  }
}
