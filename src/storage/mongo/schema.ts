/**
 * What the MongoDB store keeps in its database, and the indexes it needs:
 *
 *   catalog        one record per file (with its bytes inline, or the id of its GridFS file) and one
 *                  per folder that holds something (see folders.ts)
 *   fs.files/.chunks  the GridFS bucket of larger files and of the parts of uploads in parts
 *   uploads        uploads in parts and tus uploads: where the file goes, with what, until when, and
 *                  how far its completion went (upload-records.ts)
 *   upload_parts   one record per received part (sent by number, or appended), naming its GridFS file
 *   byte_leases    GridFS files that may have lost their last reference (see byte-leases.ts)
 *   lease_owners   the processes writing to the store, with their heartbeats (see lease-owners.ts)
 *   health         one record every health check rewrites: proof that the server takes writes
 *   events         the events of changes, to deliver (event-log.ts); event_state: shared values
 *
 * Only plain and unique indexes: the subset MongoDB and FerretDB v1 both build. Index creation is
 * idempotent and runs at start-up; while MongoDB is down it is retried until it succeeds.
 */
import type { Binary, CreateIndexesOptions, Db, IndexSpecification, ObjectId } from 'mongodb'
import { EVENTS } from './event-log.js'

export const CATALOG = 'catalog'
export const UPLOADS = 'uploads'
export const PARTS = 'upload_parts'
export const LEASES = 'byte_leases'
export const OWNERS = 'lease_owners'
export const BUCKET = 'fs'
export const HEALTH = 'health'

/** The write of a health check: one small upsert, refused by a server that cannot write (FerretDB on a full disk). */
export async function writeProbe(db: Db): Promise<void> {
  await db.collection<{ _id: string; at: Date }>(HEALTH).updateOne({ _id: 'write-probe' }, { $set: { at: new Date() } }, { upsert: true })
}

/** A file's record. */
export interface FileDoc {
  _id: ObjectId
  type: 'file'
  path: string
  /** The folder it is in (`''` for the root), for one-level listings. */
  parent: string
  name: string
  /**
   * Changes with every write and move of the record: what compare-and-swap updates compare. A
   * completed upload's is the revision the upload engine chose (a string, see driver.ts).
   */
  rev: ObjectId | string
  size: number
  sha256: string
  contentType: string
  /** The client's metadata as JSON text: servers differ on keys with `.` or `$` (FerretDB refuses them). */
  metadataJson: string
  created: Date
  modified: Date
  /** The bytes, for a file stored inline. */
  data?: Binary
  /** The GridFS file holding the bytes, for a file stored in GridFS. */
  gridfsId?: ObjectId
  /** With events: the key of the entry announcing this version, which the next change's key follows. */
  event?: string
  /** The registration that wrote that entry: a later change settles it should that process have died. */
  eventOwner?: string
  /** A delete under way, with its entry: a later change that finds the record still here cancels it. */
  deleting?: { key: string; owner: string }
}

/** A folder's record: it exists while something is in the folder (see folders.ts). */
export interface FolderDoc {
  _id: ObjectId
  type: 'directory'
  path: string
  parent: string
  name: string
}

export type CatalogDoc = FileDoc | FolderDoc

export interface UploadDoc {
  _id: string
  /** What a compare-and-set compares; incremented by every change (absent on records of earlier versions: 0). */
  version?: number
  path: string
  partSizeLimit: number
  createdAt: Date
  expiresAt: Date
  contentType?: string
  metadataJson: string
  mustNotExist?: boolean
  ifMatch?: string[]
  maxBytes?: number
  /** The size of the whole, once known (given at creation, or declared later). */
  totalSize?: number
  /** A protocol layer's strings (tus `Upload-Metadata`), as JSON text: keys may hold `.` or `$`. */
  attributesJson?: string
  /** Who created the upload (an access-control principal's id). */
  owner?: string
  /**
   * Set while a completion assembles the parts, so that two completions do not run at once: a lease
   * its completion renews while it works, so one that died holds it only briefly.
   */
  completingUntil?: Date
  /** Which completion holds that lease. */
  completingBy?: string
  /** The journal of a completion (driver.ts `CompletionJournal`), as JSON, written just before its commit. */
  journalJson?: string
  /** Completed or aborted: its parts are being removed. */
  finished?: boolean
  /**
   * What a completion stored, kept with the finished upload until it expires, so that completing
   * again (a retry whose answer was lost) answers the same file.
   */
  result?: { rev: ObjectId | string; fileJson: string; created: boolean }
}

export interface PartDoc {
  /**
   * `<uploadId>:<part>`: one record per part number, found by `_id`. An append inserts the next
   * number, so two appends at one offset collide on this key and only one is stored.
   */
  _id: string
  uploadId: string
  part: number
  size: number
  sha256: string
  gridfsId: ObjectId
  received: Date
}

export interface LeaseDoc {
  /** The GridFS file. */
  _id: ObjectId
  /** When the lease was taken or last renewed. */
  since: Date
  /** The registration (lease_owners) of the process that took it; absent on leases of older versions. */
  owner?: string
}

export interface OwnerDoc {
  /** A fresh id per registration: a process that lost its registration registers under a new one. */
  _id: string
  /** Renewed every third of the liveness window, with the writer's clock. */
  heartbeat: Date
  /** One liveness window after the heartbeat: silent past this, the process counts as dead. */
  silentAfter: Date
  started: Date
  /** Informative: where the process runs. */
  host: string
  pid: number
}

const INDEXES: [collection: string, key: IndexSpecification, options: CreateIndexesOptions][] = [
  [CATALOG, { path: 1 }, { name: 'path', unique: true }],
  // One-level listings: a folder's children of one type, in name order.
  [CATALOG, { parent: 1, type: 1, name: 1 }, { name: 'listing' }],
  [CATALOG, { gridfsId: 1 }, { name: 'gridfs', sparse: true }],
  [UPLOADS, { expiresAt: 1 }, { name: 'expiry' }],
  [PARTS, { uploadId: 1, part: 1 }, { name: 'upload' }],
  [PARTS, { gridfsId: 1 }, { name: 'gridfs' }],
  [LEASES, { since: 1 }, { name: 'since' }],
  [LEASES, { owner: 1 }, { name: 'owner', sparse: true }],
  [EVENTS, { q: 1, k: 1 }, { name: 'queue' }],
  // The ones GridFSBucket creates itself, under the same names and options, so that either may come first.
  [`${BUCKET}.files`, { filename: 1, uploadDate: 1 }, { name: 'filename_1_uploadDate_1' }],
  [`${BUCKET}.chunks`, { files_id: 1, n: 1 }, { name: 'files_id_1_n_1', unique: true }],
]

export async function createIndexes(db: Db): Promise<void> {
  for (const [collection, key, options] of INDEXES) await db.collection(collection).createIndex(key, options)
}

/**
 * Runs a set-up step (index creation) once it succeeds: every operation waits for it, a failure
 * is retried by the next operation and in the background, with backoff, until it succeeds.
 */
export class SetupOnce {
  #done = false
  #running: Promise<void> | null = null
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(
    private readonly step: () => Promise<void>,
    private readonly onFailure: (e: unknown) => void = () => {},
  ) {}

  /** Resolves once the step has succeeded; throws its error when this attempt fails. */
  ready(): Promise<void> {
    if (this.#done) return Promise.resolve()
    this.#running ??= this.step().then(
      () => {
        this.#done = true
        this.#running = null
      },
      (e: unknown) => {
        this.#running = null
        throw e
      },
    )
    return this.#running
  }

  /** Starts trying in the background now, again after each failure (1 s, 2 s, ... up to 30 s). */
  start(attempt = 0): void {
    if (this.#done || this.#stopped) return
    this.ready().catch((e: unknown) => {
      if (this.#stopped) return // closed meanwhile: nothing to report or retry
      this.onFailure(e)
      this.#timer = setTimeout(() => this.start(attempt + 1), Math.min(30_000, 1000 * 2 ** attempt))
      this.#timer.unref()
    })
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
