/**
 * Leases on GridFS files: how the store finds bytes that a crash (or a lost race) left without a
 * record pointing at them, without ever scanning the chunks.
 *
 * Whatever may leave a GridFS file unreferenced takes a lease on it first: an upload before its
 * first chunk (renewed while it writes), a replace or delete before it lets go of the old bytes.
 * Each lease names its owner, the registration of the process that took it (lease-owners.ts). The
 * sweeper decides a lease (bytes that no file record or part record names are deleted, the lease of
 * referenced bytes is dropped):
 *
 * - at once when its owner is gone (dead: silent for the liveness window, or closed);
 * - an hour after it was taken or renewed otherwise (a live owner's, or one without an owner,
 *   taken by an older version): a live upload renews its lease as it goes.
 *
 * A write keeps the lease of its new bytes after it commits, for the sweeper to check: on a server
 * whose conditional updates are not atomic (FerretDB v1), two replaces of one file can both see
 * their compare-and-swap succeed, and the bytes of the one overwritten must still be found.
 * Deleted bytes lose their lease at once.
 */
import type { Collection, ObjectId } from 'mongodb'
import { isDuplicateKey } from './connection.js'
import type { LeaseOwners } from './lease-owners.js'
import type { LeaseDoc } from './schema.js'

/** A lease this old belongs to no live write (a live upload renews its lease as it goes). */
export const LEASE_GRACE_MS = 60 * 60 * 1000
/** How often a running upload renews its lease. */
export const LEASE_RENEW_MS = 5 * 60 * 1000

export class ByteLeases {
  constructor(
    readonly leases: Collection<LeaseDoc>,
    readonly owners: LeaseOwners,
  ) {}

  /** Takes (or renews) the lease on a GridFS file, under `owner` (this process's registration by default); returns the owner. */
  async take(id: ObjectId, owner?: string): Promise<string> {
    const by = owner ?? (await this.owners.current())
    try {
      await this.leases.updateOne({ _id: id }, { $set: { since: new Date(), owner: by } }, { upsert: true })
    } catch (e) {
      if (!isDuplicateKey(e)) throw e // two takers at once: the lease exists, which is all that matters
    }
    return by
  }

  async release(id: ObjectId): Promise<void> {
    await this.leases.deleteOne({ _id: id })
  }

  async releaseAll(ids: ObjectId[]): Promise<void> {
    await this.leases.deleteMany({ _id: { $in: ids } })
  }

  /**
   * Leases the sweeper may decide now, at most `limit`: those taken before `before`, and those
   * whose owner is none of `live` (the caller checks these owners again: one may have registered
   * after `live` was read).
   */
  decidable(before: Date, live: string[], limit: number): Promise<LeaseDoc[]> {
    return this.leases
      .find({ $or: [{ since: { $lt: before } }, { owner: { $exists: true, $nin: live } }] })
      .limit(limit)
      .toArray()
  }
}
