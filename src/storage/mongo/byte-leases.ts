/**
 * Leases on GridFS files: how the store finds bytes that a crash (or a lost race) left without a
 * record pointing at them, without ever scanning the chunks.
 *
 * Whatever may leave a GridFS file unreferenced takes a lease on it first: an upload before its
 * first chunk (renewed while it writes), a replace or delete before it lets go of the old bytes.
 * The sweeper looks at leases older than an hour: bytes that no file record or part record names
 * are deleted, and the leases of referenced bytes are dropped.
 *
 * A write keeps the lease of its new bytes after it commits, for the sweeper to check: on a server
 * whose conditional updates are not atomic (FerretDB v1), two replaces of one file can both see
 * their compare-and-swap succeed, and the bytes of the one overwritten must still be found.
 * Deleted bytes lose their lease at once.
 */
import type { Collection, ObjectId } from 'mongodb'
import { isDuplicateKey } from './connection.js'
import type { LeaseDoc } from './schema.js'

/** A lease this old belongs to no live write (a live upload renews its lease as it goes). */
export const LEASE_GRACE_MS = 60 * 60 * 1000
/** How often a running upload renews its lease. */
export const LEASE_RENEW_MS = 5 * 60 * 1000

export class ByteLeases {
  constructor(readonly leases: Collection<LeaseDoc>) {}

  /** Takes (or renews) the lease on a GridFS file. */
  async take(id: ObjectId, now = new Date()): Promise<void> {
    try {
      await this.leases.updateOne({ _id: id }, { $set: { since: now } }, { upsert: true })
    } catch (e) {
      if (!isDuplicateKey(e)) throw e // two takers at once: the lease exists, which is all that matters
    }
  }

  async release(id: ObjectId): Promise<void> {
    await this.leases.deleteOne({ _id: id })
  }

  async releaseAll(ids: ObjectId[]): Promise<void> {
    await this.leases.deleteMany({ _id: { $in: ids } })
  }

  /** Leases taken before `before`, oldest first. */
  stale(before: Date, limit: number): Promise<LeaseDoc[]> {
    return this.leases.find({ since: { $lt: before } }).sort({ since: 1 }).limit(limit).toArray()
  }
}
