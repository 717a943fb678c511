/**
 * The MongoDB drivers: one class, three ways of keeping the bytes (SPEC 1):
 *
 *   mongo-inline  every file inside its catalog record, as BSON Binary (at most 15 MiB)
 *   gridfs        every file in a GridFS bucket, streamed both ways
 *   mongo         the `mongo` store: inline up to `inlineMaxBytes`, GridFS above, chosen per file
 *
 * The catalog (catalog.ts) holds a record per file and per non-empty folder (folders.ts). Writes
 * are atomic for readers: new bytes are written completely (inline in the record to be, or a
 * leased GridFS file) before the catalog points at them, and old bytes are deleted after. The
 * preconditions of a write are checked against the record it replaces, and the replace is a
 * compare-and-swap on that record's `rev`; creation relies on the unique path index. A move is a
 * catalog update, never a copy of bytes. MongoDB connectivity errors are `store_unavailable`.
 * Uploads in parts and tus uploads are staged in MongoDB too (staging.ts).
 */
import type { Db } from 'mongodb'
import { backoff } from '../backoff.js'
import { checkAnnouncedSize } from '../digest.js'
import type { StorageDriver } from '../driver.js'
import { alreadyExists, fileInTheWay, isStorageError, keepsChanging, notFound, StorageError } from '../errors.js'
import { checkEntryIfMatch, checkMoveTarget, checkWriteConditions, contentTypeFor } from '../file-attributes.js'
import { InFlight } from '../in-flight.js'
import { KeyedLock } from '../keyed-lock.js'
import { listLimit } from '../ordering.js'
import { ancestorsOf, baseName, checkMovePaths, invalidPathIfRoot, parentOf, ROOT } from '../paths.js'
import { bodyChunks, readOfBytes, toWebStream } from '../streams.js'
import type {
  ByteRange,
  DeleteOptions,
  HealthReport,
  ListOptions,
  ListPage,
  MoveOptions,
  PutOptions,
  PutResult,
  ReadResult,
  StoredEntry,
  StoredFile,
  WritePreconditions,
} from '../types.js'
import { ByteLeases } from './byte-leases.js'
import { Catalog, type FileAttributes, fileDoc, toEntry, toStoredFile } from './catalog.js'
import { isDuplicateKey, MongoConnection, type MongoConnectionOptions } from './connection.js'
import { Folders } from './folders.js'
import { GridFsBytes } from './gridfs-bytes.js'
import { inlineBytes, MAX_INLINE_BYTES } from './inline-bytes.js'
import { LeaseOwners } from './lease-owners.js'
import { listFolder } from './listing.js'
import { discardBytes, type Placement, type WriteRequest, writeBytes, type WrittenBytes } from './placement.js'
import {
  type CatalogDoc,
  CATALOG,
  createIndexes,
  type FileDoc,
  LEASES,
  type LeaseDoc,
  OWNERS,
  type OwnerDoc,
  PARTS,
  type PartDoc,
  SetupOnce,
  UPLOADS,
  type UploadDoc,
} from './schema.js'
import { writeProbe } from './schema.js'
import { MongoStaging } from './staging.js'
import type { SharedRecords } from '../shared-records.js'
import { MongoSharedRecords, SHARED_RECORDS, type SharedRecordDoc } from './shared-records.js'
import { MongoSweeper } from './sweeper.js'
import { forEachLimited } from '../for-each-limited.js'

export type MongoDriverKind = 'mongo' | 'mongo-inline' | 'gridfs'

export const DEFAULT_INLINE_MAX_BYTES = 1024 * 1024

export interface MongoDriverOptions {
  /** A connection string; the driver then owns its client. */
  uri?: string
  /** Or a connection shared with others (closed by whoever made it). */
  connection?: MongoConnection
  /** Client options for a connection made from `uri` (e.g. `monitorCommands`). */
  clientOptions?: MongoConnectionOptions
  /** The database holding this store. */
  db: string
  /** Where the bytes go; `mongo` by default. */
  kind?: MongoDriverKind
  /** For `mongo`: files up to this size are stored inline (default 1 MiB, at most 15 MiB). */
  inlineMaxBytes?: number
  /**
   * How long a process may stay silent before its unfinished writes count as abandoned (lease-owners.ts).
   * Default 30 s, the upload engine's completion lease.
   */
  livenessWindowMs?: number
  /** Told what background work (index creation) could not do, e.g. while MongoDB is down. */
  log?: (line: string) => void
}

/** Attempts of a read whose file keeps being replaced under it before giving up. */
const ATTEMPTS = 5
/**
 * Attempts of a write (commit, move, delete) that loses its compare-and-swap to other processes
 * (writes of one path in this process wait their turn instead), with a jittered backoff between them.
 */
const WRITE_ATTEMPTS = 10
/** Files handled at once when a folder is moved or deleted. */
const TREE_BATCH = 200
const TREE_CONCURRENCY = 8
/** `/check` must answer quickly even when MongoDB does not. */
const HEALTH_TIMEOUT_MS = 1500
const HEALTH_LATE = 'MongoDB did not answer in time'
/** How long a close waits for the operations still running before it lets go of its registration. */
const CLOSE_WAIT_MS = 5_000
const DEFAULT_LIVENESS_WINDOW_MS = 30_000

export class MongoDriver implements StorageDriver {
  readonly kind: MongoDriverKind
  readonly db: Db
  readonly #connection: MongoConnection
  readonly #placement: Placement
  readonly #setup: SetupOnce
  readonly #catalog: Catalog
  readonly #folders: Folders
  readonly #gridfs: GridFsBytes
  readonly staging: MongoStaging
  readonly #sweeper: MongoSweeper
  /**
   * Writes of one path in this process take turns, so that their compare-and-swaps only ever race
   * other processes' (the turns of a 32-writer burst would otherwise exhaust the attempts).
   */
  readonly #locks = new KeyedLock()
  readonly #owners: LeaseOwners
  /** Operations running, which a close lets end before it removes this process's registration. */
  readonly #running = new InFlight()

  private constructor(connection: MongoConnection, options: MongoDriverOptions) {
    this.kind = options.kind ?? 'mongo'
    this.#connection = connection
    this.#placement = placementOf(this.kind, options.inlineMaxBytes)
    this.db = connection.client.db(options.db)
    this.#catalog = new Catalog(this.db.collection<CatalogDoc>(CATALOG))
    this.#folders = new Folders(this.#catalog)
    this.#owners = new LeaseOwners(this.db.collection<OwnerDoc>(OWNERS), options.livenessWindowMs ?? DEFAULT_LIVENESS_WINDOW_MS)
    const leases = new ByteLeases(this.db.collection<LeaseDoc>(LEASES), this.#owners)
    this.#gridfs = new GridFsBytes(this.db, leases)
    const uploads = this.db.collection<UploadDoc>(UPLOADS)
    this.staging = new MongoStaging(uploads, this.db.collection<PartDoc>(PARTS), this.#gridfs, {
      write: (source, request) => this.#write(source, request),
      commit: (path, bytes, attributes, conditions, rev, beforeVisible) => this.#commit(path, bytes, attributes, conditions, rev, beforeVisible),
      discard: (bytes) => this.#discard(bytes),
    })
    this.#sweeper = new MongoSweeper({
      catalog: this.#catalog,
      folders: this.#folders,
      uploads,
      staging: this.staging,
      gridfs: this.#gridfs,
      leases,
      owners: this.#owners,
    })
    const log = options.log ?? (() => {})
    this.#setup = new SetupOnce(
      () => connection.run(() => createIndexes(this.db)),
      (e) => log(`[filestorage] mongo store (database "${options.db}"): indexes not created yet, retrying: ${(e as Error).message}`),
    )
    this.#setup.start() // at start-up, without waiting: the service starts even when MongoDB is down
  }

  /** Records every process using the database shares (shared-records.ts), in `shared_records`. */
  sharedRecords(namespace: string): SharedRecords {
    return new MongoSharedRecords(this.db.collection<SharedRecordDoc>(SHARED_RECORDS), namespace, this.#owners, (step) => this.#run(step))
  }

  /** Opens a store without waiting for MongoDB: it connects on first use and after every outage. */
  static open(options: MongoDriverOptions): MongoDriver {
    const connection =
      options.connection ??
      (options.uri !== undefined ? MongoConnection.fromUri(options.uri, options.clientOptions) : undefined)
    if (!connection) throw new Error('the MongoDB driver needs a uri or a connection')
    return new MongoDriver(connection, options)
  }

  async put(path: string, body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    invalidPathIfRoot(path)
    checkAnnouncedSize(options.expectedSize, options.maxBytes)
    return this.#run(async () => {
      await this.#precheck(path, options)
      const bytes = await this.#write(bodyChunks(body), {
        ...(options.expectedSize !== undefined ? { expectedSize: options.expectedSize } : {}),
        ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        ...(options.expectedSha256 !== undefined ? { expectedSha256: options.expectedSha256 } : {}),
        filename: path,
      })
      return this.#commit(path, bytes, options, options)
    })
  }

  async read(path: string, range?: ByteRange): Promise<ReadResult> {
    invalidPathIfRoot(path)
    return this.#run(async () => {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const doc = await this.#catalog.fileWithBytes(path)
        if (!doc) throw notFound(`a file at "${path}"`)
        const file = toStoredFile(doc)
        if (!doc.gridfsId) return readOfBytes(file, inlineBytes(doc.data, range))
        const stream = await this.#gridfs.open(doc.gridfsId, doc.size, range)
        if (stream) return { file, body: toWebStream(stream) }
        // Replaced, and its old bytes deleted, between the two reads: read the new version.
      }
      throw keepsChanging(`"${path}"`)
    })
  }

  async stat(path: string): Promise<StoredFile> {
    const entry = await this.lookup(path)
    if (entry?.type !== 'file') throw notFound(`a file at "${path}"`)
    return entry
  }

  async lookup(path: string): Promise<StoredEntry | null> {
    if (path === ROOT) return { type: 'directory', path: ROOT, name: '' }
    return this.#run(async () => {
      const doc = await this.#catalog.entry(path)
      return doc && toEntry(doc)
    })
  }

  list(dir: string, options: ListOptions = {}): Promise<ListPage> {
    return this.#run(() =>
      listFolder(this.#catalog, dir, {
        recursive: options.recursive ?? false,
        limit: listLimit(options.limit),
        cursor: options.cursor,
      }),
    )
  }

  async move(from: string, to: string, options: MoveOptions = {}): Promise<StoredEntry> {
    checkMovePaths(from, to)
    return this.#run(() => this.#locks.run([from, to], async () => {
      for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
        if (attempt > 0) await backoff(attempt)
        const source = await this.#catalog.entry(from)
        if (!source) throw notFound(`"${from}"`)
        checkEntryIfMatch(options.ifMatch, toEntry(source))
        if (from === to) return toEntry(source)
        const target = await this.#catalog.entry(to)
        checkMoveTarget(toEntry(source), target && toEntry(target), to, options.overwrite)
        if (source.type === 'directory') {
          if (target) await this.#deleteTree(to)
          await this.#moveTree(from, to)
          await this.#folders.pruneAbove(from)
          const moved = await this.#catalog.entry(to)
          if (!moved) throw notFound(`"${from}"`) // it held nothing (an empty record a crash left)
          return toEntry(moved)
        }
        // The file it replaces (overwrite) goes first; when it changed meanwhile, everything is checked again.
        if (target?.type === 'file' && !(await this.#removeFile(target))) continue
        const moved = await this.#renameFile(source, to)
        if (moved) return toStoredFile(moved)
      }
      throw keepsChanging(`"${from}" or "${to}"`)
    }))
  }

  async delete(path: string, options: DeleteOptions = {}): Promise<void> {
    invalidPathIfRoot(path)
    await this.#run(() => this.#locks.run(path, async () => {
      for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
        if (attempt > 0) await backoff(attempt)
        const doc = await this.#catalog.entry(path)
        if (!doc) throw notFound(`"${path}"`)
        checkEntryIfMatch(options.ifMatch, toEntry(doc))
        if (doc.type === 'file') {
          if (!(await this.#removeFile(doc))) continue // replaced meanwhile: check If-Match again
        } else if (options.recursive) {
          await this.#deleteTree(path)
        } else if (!(await this.#folders.removeIfEmpty(path))) {
          throw new StorageError('directory_not_empty', `the folder "${path}" is not empty; delete it with recursive`)
        }
        await this.#folders.pruneAbove(path)
        return
      }
      throw keepsChanging(`"${path}"`)
    }))
  }

  async checkWrite(path: string, conditions: WritePreconditions): Promise<void> {
    await this.#run(() => this.#precheck(path, conditions))
  }

  lookupRevision(path: string, revision: string): Promise<StoredFile | null> {
    return this.#run(async () => {
      const doc = await this.#catalog.entry(path)
      return doc?.type === 'file' && String(doc.rev) === revision ? toStoredFile(doc) : null
    })
  }

  run<T>(_subject: string, operation: () => Promise<T>): Promise<T> {
    return this.#run(operation)
  }

  /** Reclaims what crashes left: unreferenced GridFS bytes, orphaned parts, empty folder records (sweeper.ts). */
  sweep(now = new Date()): Promise<number> {
    return this.#run(() => this.#sweeper.sweep(now))
  }

  async health(): Promise<HealthReport> {
    const started = performance.now()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(HEALTH_LATE)), HEALTH_TIMEOUT_MS)
    })
    try {
      // A ping proves the server answers; the indexes must exist before the store takes writes.
      await Promise.race([this.#run(() => this.db.command({ ping: 1 })), timeout])
    } catch (e) {
      clearTimeout(timer)
      return { ok: false, latencyMs: performance.now() - started, message: (e as Error).message }
    }
    try {
      // A server can answer and still refuse writes (a full disk under it, a read-only user or node).
      await Promise.race([this.#run(() => writeProbe(this.db)), timeout])
      return { ok: true, writable: true, latencyMs: performance.now() - started }
    } catch (e) {
      const down = isStorageError(e, 'store_unavailable') || !(e instanceof Error) || e.message === HEALTH_LATE
      return { ok: !down, writable: false, latencyMs: performance.now() - started, message: (e as Error).message }
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    this.#setup.stop()
    // Its writes end first (bounded): the sweeper decides the leases of a removed registration at once.
    await this.#running.settled(CLOSE_WAIT_MS)
    await this.#owners.close()
    await this.#connection.close()
  }

  /** Runs an operation once the indexes exist, with MongoDB errors mapped to storage errors. */
  #run<T>(operation: () => Promise<T>): Promise<T> {
    return this.#running.track(
      this.#connection.run(async () => {
        await this.#setup.ready()
        return operation()
      }),
    )
  }

  /**
   * The checks a write makes before reading its body (they are made again, atomically, when it
   * commits): no file above the path, no folder at it, and its preconditions.
   */
  async #precheck(path: string, conditions: WritePreconditions): Promise<FileDoc | null> {
    const found = await this.#catalog.entries([...ancestorsOf(path), path])
    const fileAbove = found.find((d) => d.path !== path && d.type === 'file')
    if (fileAbove) throw fileInTheWay(fileAbove.path)
    const current = found.find((d) => d.path === path) ?? null
    checkWriteConditions(path, current && toEntry(current), conditions)
    return current as FileDoc | null
  }

  #write(source: AsyncIterable<Uint8Array>, request: Omit<WriteRequest, 'placement'>) {
    return writeBytes(source, this.#gridfs, { placement: this.#placement, ...request })
  }

  #discard(bytes: WrittenBytes): Promise<void> {
    return discardBytes(this.#gridfs, bytes)
  }

  /**
   * Points the catalog at new bytes, atomically with the write's preconditions: a create is an
   * insert (the unique path index refuses a second one), a replace a compare-and-swap on the
   * record it checked. Commits of one path in this process take turns; a swap lost to another
   * process is tried again after a jittered backoff. The new bytes are deleted when the write
   * fails; the old ones once replaced. `rev`: the revision to commit as (a completed upload's);
   * `beforeVisible` runs just before each attempt's write, with what it will answer.
   */
  async #commit(
    path: string,
    bytes: WrittenBytes,
    given: Partial<FileAttributes>,
    conditions: WritePreconditions,
    rev?: string,
    beforeVisible?: (result: PutResult) => Promise<void>,
  ): Promise<PutResult> {
    const attributes = { contentType: contentTypeFor(baseName(path), given.contentType), metadata: given.metadata ?? {} }
    let committed: { doc: FileDoc; replaced: FileDoc | null } | undefined
    try {
      committed = await this.#locks.run(path, async () => {
        for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
          if (attempt > 0) await backoff(attempt)
          const placed = await this.#place(path, bytes, attributes, conditions, rev, beforeVisible)
          if (placed) return placed
        }
        return undefined
      })
    } catch (e) {
      await this.#discard(bytes)
      throw e
    }
    if (!committed) {
      await this.#discard(bytes)
      throw keepsChanging(`"${path}"`)
    }
    // From here on the catalog points at the new bytes: they stay whatever happens next. Their lease
    // stays too, until the sweeper sees them referenced (see byte-leases.ts).
    if (committed.replaced?.gridfsId) await this.#gridfs.retire(committed.replaced.gridfsId).catch(() => {})
    return { file: toStoredFile(committed.doc), created: committed.replaced === null }
  }

  /** One attempt at a commit; undefined when the path changed meanwhile and it must be tried again. */
  async #place(
    path: string,
    bytes: WrittenBytes,
    attributes: FileAttributes,
    conditions: WritePreconditions,
    rev?: string,
    beforeVisible?: (result: PutResult) => Promise<void>,
  ) {
    const current = await this.#catalog.entry(path)
    checkWriteConditions(path, current && toEntry(current), conditions)
    const now = new Date()
    if (current?.type === 'file') {
      const doc = fileDoc(path, bytes, attributes, { created: current.created, modified: now }, current._id, rev)
      await beforeVisible?.({ file: toStoredFile(doc), created: false })
      // Its bytes are leased before the record lets go of them, so a crash cannot lose track of them.
      if (current.gridfsId) await this.#gridfs.leases.take(current.gridfsId)
      await this.#owners.confirm(bytes.owner) // the sweeper has not counted this process dead
      return (await this.#catalog.swap(current, doc)) ? { doc, replaced: current } : undefined
    }
    const doc = fileDoc(path, bytes, attributes, { created: now, modified: now }, undefined, rev)
    await beforeVisible?.({ file: toStoredFile(doc), created: true })
    await this.#folders.ensureAbove(path)
    await this.#owners.confirm(bytes.owner) // the sweeper has not counted this process dead
    try {
      await this.#catalog.insert(doc)
    } catch (e) {
      if (!isDuplicateKey(e)) throw e
      await this.#folders.pruneAbove(path)
      return undefined // created meanwhile: the next attempt checks the conditions against it
    }
    await this.#confirmFolders(doc)
    return { doc, replaced: null }
  }

  /**
   * After a record got its path: its folders still have their records (a prune may have removed one
   * meanwhile; it is made again). When a file now stands where a folder must be, the record goes.
   */
  async #confirmFolders(doc: FileDoc, undo: () => Promise<unknown> = () => this.#catalog.remove(doc)): Promise<void> {
    try {
      await this.#folders.ensureAbove(doc.path)
    } catch (e) {
      // Any other failure (MongoDB went away) leaves the record in place: its folders were made just before.
      if (!isStorageError(e, 'already_exists')) return
      await undo()
      throw e
    }
  }

  /** Removes a file record (unless it changed meanwhile), then its bytes. */
  async #removeFile(doc: FileDoc): Promise<boolean> {
    if (doc.gridfsId) await this.#gridfs.leases.take(doc.gridfsId)
    if (!(await this.#catalog.remove(doc))) return false
    if (doc.gridfsId) await this.#gridfs.retire(doc.gridfsId).catch(() => {}) // else its lease brings the sweeper
    return true
  }

  /** Moves one file record to `to`: null when the source changed meanwhile. */
  async #renameFile(source: FileDoc, to: string): Promise<FileDoc | null> {
    await this.#folders.ensureAbove(to)
    let moved: FileDoc | null
    try {
      moved = await this.#catalog.rename(source, to)
    } catch (e) {
      if (!isDuplicateKey(e)) throw e
      await this.#folders.pruneAbove(to)
      throw alreadyExists(`"${to}"`) // created meanwhile
    }
    if (!moved) {
      await this.#folders.pruneAbove(to)
      return null
    }
    await this.#confirmFolders(moved, async () => {
      await this.#catalog.rename(moved, source.path)
    })
    await this.#folders.pruneAbove(source.path)
    return moved
  }

  /**
   * Moves every file under `from` to the same place under `to`, a batch at a time, then removes the
   * emptied folder records. Not atomic as a whole (MongoDB-wire servers without transactions), but
   * every step is: a crash leaves each file in one place or the other, never lost.
   */
  async #moveTree(from: string, to: string): Promise<void> {
    const conflicts: string[] = []
    for (let after: string | undefined; ; ) {
      const batch = await this.#catalog.filesUnder(from, after, TREE_BATCH)
      if (batch.length === 0) break
      const targets = batch.map((doc) => `${to}${doc.path.slice(from.length)}`)
      const folders = [...new Set(targets.map(parentOf))]
      await this.#folders.ensure(folders)
      await forEachLimited(batch, TREE_CONCURRENCY, async (doc, i) => {
        try {
          if (!(await this.#catalog.rename(doc, targets[i]!))) conflicts.push(doc.path) // changed meanwhile: stays
        } catch (e) {
          if (!isDuplicateKey(e)) throw e
          conflicts.push(doc.path)
        }
      })
      await this.#folders.ensure(folders) // a prune may have raced the renames
      after = batch.at(-1)!.path
    }
    await this.#removeEmptyFolders(from)
    if (conflicts.length > 0) {
      throw new StorageError('already_exists', `some files could not be moved: something took their place`, {
        details: { paths: conflicts.slice(0, 100) },
      })
    }
  }

  /** Deletes every file under `dir`, a batch at a time, then its folder records. */
  async #deleteTree(dir: string): Promise<void> {
    for (let after: string | undefined; ; ) {
      const batch = await this.#catalog.filesUnder(dir, after, TREE_BATCH)
      if (batch.length === 0) break
      await forEachLimited(batch, TREE_CONCURRENCY, (doc) => this.#removeFile(doc))
      after = batch.at(-1)!.path
    }
    await this.#removeEmptyFolders(dir)
  }

  async #removeEmptyFolders(dir: string): Promise<void> {
    for (const folder of await this.#catalog.foldersOf(dir)) await this.#folders.removeIfEmpty(folder.path)
  }
}

function placementOf(kind: MongoDriverKind, inlineMaxBytes = DEFAULT_INLINE_MAX_BYTES): Placement {
  if (kind === 'gridfs') return { inlineMaxBytes: -1, gridfs: true }
  if (kind === 'mongo-inline') return { inlineMaxBytes: MAX_INLINE_BYTES, gridfs: false }
  if (!Number.isInteger(inlineMaxBytes) || inlineMaxBytes < 0 || inlineMaxBytes > MAX_INLINE_BYTES) {
    throw new Error(`inlineMaxBytes must be an integer from 0 to ${MAX_INLINE_BYTES}`)
  }
  return { inlineMaxBytes, gridfs: true }
}
