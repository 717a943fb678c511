/**
 * The MongoDB store's sweeper: reclaims what a crash left behind (the upload engine has removed
 * expired uploads first). Run at start-up and periodically by the node adapter (the store's `sweep()`).
 *
 * - parts older than an hour whose upload is gone (an append that crashed as its upload ended);
 * - GridFS files under a lease that no file or part record names (writes that never committed, old
 *   bytes a replace or delete did not get to delete): at once when the lease's owner is gone (its
 *   registration silent for the liveness window is removed first, see lease-owners.ts), else once
 *   the lease is an hour old; the leases of referenced bytes are dropped;
 * - folder records left empty (a crash between making a folder and storing its file), a bounded
 *   batch per run, resuming where the previous run stopped.
 */
import type { Collection, ObjectId } from 'mongodb'
import { type ByteLeases, LEASE_GRACE_MS } from './byte-leases.js'
import type { Catalog } from './catalog.js'
import type { Folders } from './folders.js'
import type { GridFsBytes } from './gridfs-bytes.js'
import type { LeaseOwners } from './lease-owners.js'
import type { UploadDoc } from './schema.js'
import type { MongoStaging } from './staging.js'

const LEASE_BATCH = 500
const FOLDER_BATCH = 500
/** Part records looked at per sweep for an upload that is gone. */
const ORPHAN_BATCH = 500

export interface SweeperParts {
  catalog: Catalog
  folders: Folders
  uploads: Collection<UploadDoc>
  staging: MongoStaging
  gridfs: GridFsBytes
  leases: ByteLeases
  owners: LeaseOwners
}

export class MongoSweeper {
  /** Where the last run's pass over folder records stopped. */
  #folderCursor = ''
  /** Where the last run's pass over part records stopped. */
  #orphanCursor = ''

  constructor(private readonly store: SweeperParts) {}

  async sweep(now: Date): Promise<number> {
    let removed = await this.#sweepOrphanParts(new Date(now.getTime() - LEASE_GRACE_MS))
    removed += await this.#sweepLeases(now)
    removed += await this.#sweepEmptyFolders()
    return removed
  }

  /**
   * Removes parts whose upload is gone: an append commits its part, finds the upload ended meanwhile
   * and takes the part back, unless the process dies in between. Parts older than `before` only (a
   * live append's are younger), a bounded batch per run, resuming where the last run stopped.
   */
  async #sweepOrphanParts(before: Date): Promise<number> {
    const batch = await this.store.staging.parts
      .find({ _id: { $gt: this.#orphanCursor }, received: { $lt: before } })
      .sort({ _id: 1 })
      .limit(ORPHAN_BATCH)
      .toArray()
    this.#orphanCursor = batch.length < ORPHAN_BATCH ? '' : batch.at(-1)!._id
    const uploadIds = [...new Set(batch.map((p) => p.uploadId))]
    const live = await this.store.uploads.find({ _id: { $in: uploadIds } }, { projection: { _id: 1 } }).toArray()
    const liveIds = new Set(live.map((u) => u._id))
    const orphans = batch.filter((p) => !liveIds.has(p.uploadId))
    await this.store.staging.removeParts(orphans)
    return orphans.length
  }

  async #sweepLeases(now: Date): Promise<number> {
    let removed = 0
    const before = new Date(now.getTime() - LEASE_GRACE_MS)
    // Liveness by the clock, whatever `now` says: registrations silent for the window go first, so a
    // stalled process that wakes up finds its registration gone and commits nothing (lease-owners.ts).
    await this.store.owners.reapSilent()
    const live = await this.store.owners.all()
    for (let round = 0; round < 100; round++) {
      const batch = await this.store.leases.decidable(before, live, LEASE_BATCH)
      // An owner registered after `live` was read is alive (a process registers before its first lease).
      const unknown = [...new Set(batch.flatMap((l) => (l.owner && !live.includes(l.owner) ? [l.owner] : [])))]
      live.push(...(await this.store.owners.registered(unknown)))
      const decided = batch.filter((l) => l.since < before || (l.owner !== undefined && !live.includes(l.owner)))
      const referenced = await this.#referenced(decided.map((l) => l._id))
      for (const { _id: id } of decided) {
        if (referenced.has(id.toHexString())) {
          await this.store.leases.release(id)
        } else {
          await this.store.gridfs.retire(id)
          removed++
        }
      }
      if (batch.length < LEASE_BATCH) break
    }
    return removed
  }

  /** Which of these GridFS files a file record or a part record names. */
  async #referenced(ids: ObjectId[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set()
    const files = await this.store.catalog.records
      .find({ gridfsId: { $in: ids } }, { projection: { gridfsId: 1 } })
      .toArray()
    const parts = await this.store.staging.parts.find({ gridfsId: { $in: ids } }, { projection: { gridfsId: 1 } }).toArray()
    return new Set([...files, ...parts].map((d) => (d as { gridfsId: ObjectId }).gridfsId.toHexString()))
  }

  async #sweepEmptyFolders(): Promise<number> {
    let removed = 0
    const batch = await this.store.catalog.records
      .find({ type: 'directory', path: { $gt: this.#folderCursor } }, { projection: { path: 1 } })
      .sort({ path: 1 })
      .limit(FOLDER_BATCH)
      .toArray()
    // Deepest first, so that a chain of empty folders goes in one run.
    for (const { path } of [...batch].reverse()) {
      if (await this.store.folders.removeIfEmpty(path)) removed++
    }
    this.#folderCursor = batch.length < FOLDER_BATCH ? '' : batch.at(-1)!.path
    return removed
  }
}
