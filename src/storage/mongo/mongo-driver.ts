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
import { type Db, ObjectId } from 'mongodb'
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
import { failpoint } from '../failpoints.js'
import { EVENT_STATE, EVENTS, type EventDoc, type EventStateDoc, MongoEventLog } from './event-log.js'
import { EventRecorder, type Intent } from '../events/recorder.js'
import type { Change } from '../events/changes.js'
import { type ChangeOrigin, intentsOf, type LogEntry, READY } from '../events/types.js'
import { uploadWitnessed } from '../events/witnesses.js'

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
  readonly events: EventRecorder
  readonly #eventLog: MongoEventLog

  private constructor(connection: MongoConnection, options: MongoDriverOptions) {
    this.kind = options.kind ?? 'mongo'
    this.#connection = connection
    this.#placement = placementOf(this.kind, options.inlineMaxBytes)
    this.db = connection.client.db(options.db)
    this.#catalog = new Catalog(this.db.collection<CatalogDoc>(CATALOG))
    this.#folders = new Folders(this.#catalog)
    this.#owners = new LeaseOwners(this.db.collection<OwnerDoc>(OWNERS), options.livenessWindowMs ?? DEFAULT_LIVENESS_WINDOW_MS)
    this.#eventLog = new MongoEventLog(
      this.db.collection<EventDoc>(EVENTS),
      this.db.collection<EventStateDoc>(EVENT_STATE),
      this.#owners,
      (entry) => this.#run(() => this.#settle(entry)),
    )
    this.events = new EventRecorder(this.#eventLog)
    const leases = new ByteLeases(this.db.collection<LeaseDoc>(LEASES), this.#owners)
    this.#gridfs = new GridFsBytes(this.db, leases)
    const uploads = this.db.collection<UploadDoc>(UPLOADS)
    this.staging = new MongoStaging(uploads, this.db.collection<PartDoc>(PARTS), this.#gridfs, {
      write: (source, request) => this.#write(source, request),
      commit: (path, bytes, attributes, conditions, rev, beforeVisible, announce) =>
        this.#commit(path, bytes, attributes, conditions, { rev, beforeVisible, ...(announce ? { origin: announce.origin, uploadId: announce.uploadId } : {}) }),
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
    this.events.checkRoom()
    return this.#run(async () => {
      await this.#precheck(path, options)
      const bytes = await this.#write(bodyChunks(body), {
        ...(options.expectedSize !== undefined ? { expectedSize: options.expectedSize } : {}),
        ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        ...(options.expectedSha256 !== undefined ? { expectedSha256: options.expectedSha256 } : {}),
        filename: path,
      })
      return this.#commit(path, bytes, options, options, {
        ...(options.revision !== undefined ? { rev: options.revision } : {}),
        ...(options.origin ? { origin: options.origin } : {}),
      })
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
          if (target) await this.#deleteFolder(target, options.origin)
          await this.#moveFolder(from, to, options.origin)
          await this.#folders.pruneAbove(from)
          const moved = await this.#catalog.entry(to)
          if (!moved) throw notFound(`"${from}"`) // it held nothing (an empty record a crash left)
          return toEntry(moved)
        }
        // The file it replaces (overwrite) goes first, as a delete of its own (with its own event);
        // when it changed meanwhile, everything is checked again.
        if (target?.type === 'file' && !(await this.#removeFile(target, { origin: options.origin }))) continue
        const moved = await this.#renameFile(source, to, options)
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
          if (!(await this.#removeFile(doc, { origin: options.origin }))) continue // replaced meanwhile: check If-Match again
        } else if (options.recursive) {
          await this.#deleteFolder(doc, options.origin)
        } else {
          const intent = await this.#intendFolder({ kind: 'deleted', entry: toEntry(doc), files: 0 }, { op: 'delete', path }, options.origin)
          if (!(await this.#folders.removeIfEmpty(path))) {
            await intent?.cancel()
            throw new StorageError('directory_not_empty', `the folder "${path}" is not empty; delete it with recursive`)
          }
          await intent?.confirm()
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
    this.events.disable()
    await this.events.settleOwn().catch(() => {}) // else settled by another process, once this one's registration is gone
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
    change: CommitChange = {},
  ): Promise<PutResult> {
    const attributes = { contentType: contentTypeFor(baseName(path), given.contentType), metadata: given.metadata ?? {} }
    let committed: { doc: FileDoc; replaced: FileDoc | null } | undefined
    try {
      committed = await this.#locks.run(path, async () => {
        for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
          if (attempt > 0) await backoff(attempt)
          const placed = await this.#place(path, bytes, attributes, conditions, change)
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

  /**
   * One attempt at a commit; undefined when the path changed meanwhile and it must be tried again.
   * With events, its intent is written just before the record, and confirmed or cancelled by the
   * outcome of the one write that decides (the insert, or the compare-and-swap).
   */
  async #place(path: string, bytes: WrittenBytes, attributes: FileAttributes, conditions: WritePreconditions, change: CommitChange) {
    const current = await this.#catalog.entry(path)
    checkWriteConditions(path, current && toEntry(current), conditions)
    if (current?.type === 'file') {
      await this.#forgetDeadDelete(current)
      await this.#settleBefore(current)
    }
    const now = new Date()
    const replacing = current?.type === 'file' ? current : null
    const doc = replacing
      ? fileDoc(path, bytes, attributes, { created: replacing.created, modified: now }, replacing._id, change.rev)
      : fileDoc(path, bytes, attributes, { created: now, modified: now }, undefined, change.rev)
    const result: PutResult = { file: toStoredFile(doc), created: replacing === null }
    const intent = await this.events.intend(
      { kind: 'written', file: result.file, created: result.created, ...(change.uploadId !== undefined ? { uploadId: change.uploadId } : {}) },
      { holds: { path, revision: String(doc.rev) } },
      { origin: change.origin, after: replacing?.event },
    )
    if (intent) Object.assign(doc, { event: intent.key, eventOwner: intent.owner })
    return this.#decided(intent, async () => {
      await change.beforeVisible?.(result)
      if (replacing) {
        // Its bytes are leased before the record lets go of them, so a crash cannot lose track of them.
        if (replacing.gridfsId) await this.#gridfs.leases.take(replacing.gridfsId)
        await this.#confirmOwners(bytes.owner, intent) // the sweeper has not counted this process dead
        if (!(await this.#catalog.swap(replacing, doc))) return undefined
        failpoint('mongo.put.swapped')
        await this.#settleAfter(replacing)
        return { doc, replaced: replacing }
      }
      await this.#folders.ensureAbove(path)
      await this.#confirmOwners(bytes.owner, intent) // the sweeper has not counted this process dead
      try {
        await this.#catalog.insert(doc)
      } catch (e) {
        if (!isDuplicateKey(e)) throw e
        await this.#folders.pruneAbove(path)
        return undefined // created meanwhile: the next attempt checks the conditions against it
      }
      await this.#confirmFolders(doc)
      return { doc, replaced: null }
    })
  }

  /**
   * Runs the write of a change announced by `intent`: a result confirms it, undefined (the record
   * changed meanwhile: nothing was written) or an error cancels it.
   */
  async #decided<T>(intent: Intent | null, write: () => Promise<T | undefined>): Promise<T | undefined> {
    let result: T | undefined
    try {
      result = await write()
    } catch (e) {
      await intent?.cancel()
      throw e
    }
    if (result !== undefined && intent) failpoint('events.change.visible')
    await (result === undefined ? intent?.cancel() : intent?.confirm())
    return result
  }

  /** Renews the registrations a write's bytes and its intent are under, just before its record is written. */
  async #confirmOwners(bytesOwner: string | undefined, intent: Intent | null): Promise<void> {
    await this.#owners.confirm(bytesOwner)
    if (intent && intent.owner !== bytesOwner) await this.#owners.confirm(intent.owner)
  }

  /**
   * Before a change of the version `doc` (events on): the entry that announced it stands, should
   * its writer have died before confirming it (this version is visible), and comes before this
   * change's.
   */
  async #settleBefore(doc: FileDoc): Promise<void> {
    if (!this.events.enabled || doc.eventOwner === undefined || doc.event === undefined) return
    if (doc.eventOwner !== (await this.#owners.current())) await this.#eventLog.move(intentsOf(doc.eventOwner), READY, doc.event)
  }

  /**
   * Before a change takes the version `doc`: a delete that marked it and whose writer is dead (or
   * silent long enough to be fenced off, so that it can no longer remove the version) never
   * happened, and its entry goes now rather than after (`#settleAfter`), or a settler could read
   * the absence this change makes as that delete's and announce it. A writer that lives may yet
   * remove the version itself: its entry waits, and the sweeper leaves it alone for at least a
   * third of a liveness window, time for this change to take the version and remove it after.
   */
  async #forgetDeadDelete(doc: FileDoc): Promise<void> {
    const mark = doc.deleting
    if (!mark || !(await this.#owners.fenceSilent(mark.owner))) return
    await this.#eventLog.remove(intentsOf(mark.owner), mark.key)
  }

  /**
   * After a change replaced, moved or removed the version `doc`: a delete that had marked it (and
   * whose writer died, or will find it changed) never happened, since this change took that very
   * version; its entry goes.
   */
  async #settleAfter(doc: FileDoc): Promise<void> {
    if (doc.deleting) await this.#eventLog.remove(intentsOf(doc.deleting.owner), doc.deleting.key).catch(() => false)
  }

  /** The intent of a folder's move or delete: finished by the settler should this process die part way. */
  #intendFolder(change: Change, finish: { op: 'move' | 'delete'; path: string; to?: string }, origin: ChangeOrigin | undefined): Promise<Intent | null> {
    return this.events.intend(change, { finish: { ...finish, at: Date.now() } }, { origin })
  }

  /** Moves a folder (its files one by one), announced as one change. */
  async #moveFolder(from: string, to: string, origin: ChangeOrigin | undefined): Promise<void> {
    const files = this.events.enabled ? await this.#catalog.countFilesUnder(from) : 0
    const intent = await this.#intendFolder({ kind: 'moved', from, to: { type: 'directory', path: to, name: baseName(to) }, files }, { op: 'move', path: from, to }, origin)
    await this.#folderChange(intent, () => this.#moveTree(from, to, intent?.key))
  }

  /** Deletes a folder with everything in it, announced as one change. */
  async #deleteFolder(folder: CatalogDoc, origin: ChangeOrigin | undefined): Promise<void> {
    const files = this.events.enabled ? await this.#catalog.countFilesUnder(folder.path) : 0
    const intent = await this.#intendFolder({ kind: 'deleted', entry: toEntry(folder), files }, { op: 'delete', path: folder.path }, origin)
    await this.#folderChange(intent, () => this.#deleteTree(folder.path))
  }

  /**
   * A folder's change, file by file: confirmed once done, and also when some files could not move
   * (the rest did); left to the settler, which finishes it, when it failed part way.
   */
  async #folderChange(intent: Intent | null, change: () => Promise<void>): Promise<void> {
    try {
      await change()
    } catch (e) {
      if (isStorageError(e, 'already_exists')) await intent?.confirm()
      else intent?.abandon()
      throw e
    }
    if (intent) failpoint('events.change.visible')
    await intent?.confirm()
  }

  /** Whether the change of an orphan intent is visible; a folder's move or delete cut part way is finished first. */
  async #settle(entry: LogEntry): Promise<boolean> {
    const { witness } = entry
    if ('holds' in witness) return (await this.lookupRevision(witness.holds.path, witness.holds.revision)) !== null
    if ('lacks' in witness) return (await this.lookupRevision(witness.lacks.path, witness.lacks.revision)) === null
    if ('upload' in witness) return uploadWitnessed(this.staging.records, witness.upload)
    if ('finish' in witness) {
      const { op, path, to, at } = witness.finish as { op: 'move' | 'delete'; path: string; to?: string; at: number }
      // What was written into the folder after the change began is not part of it (its own events follow).
      const until = new Date(at)
      if (op === 'move' && to !== undefined) await this.#moveTree(path, to, entry.key, until).catch((e: unknown) => {
        if (!isStorageError(e, 'already_exists')) throw e
      })
      else await this.#deleteTree(path, until)
      await this.#folders.pruneAbove(path)
      return true
    }
    return false
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

  /**
   * Removes a file record (unless it changed meanwhile), then its bytes. `announce`: a delete of its
   * own, with its event. Its settling reads an absence, which a later change of the same version
   * could also cause: so the record is first marked with the intent's key, before the intent is
   * written, and whichever change takes that version next cancels the intent (`#settleAfter`).
   */
  async #removeFile(doc: FileDoc, announce?: { origin: ChangeOrigin | undefined }): Promise<boolean> {
    await this.#forgetDeadDelete(doc)
    let intent: Intent | null = null
    if (announce && this.events.enabled) {
      this.events.checkRoom()
      await this.#settleBefore(doc)
      const reserved = await this.events.reserve(doc.event)
      if (!(await this.#catalog.markDeleting(doc, reserved))) return false // changed meanwhile
      failpoint('mongo.delete.marked')
      intent = await this.events.intend(
        { kind: 'deleted', entry: toStoredFile(doc) },
        { lacks: { path: doc.path, revision: String(doc.rev) } },
        { origin: announce.origin, reserved },
      )
    }
    const removed = await this.#decided(intent, async () => {
      if (doc.gridfsId) await this.#gridfs.leases.take(doc.gridfsId)
      if (intent) await this.#owners.confirm(intent.owner)
      if (!(await this.#catalog.remove(doc))) return undefined
      failpoint('mongo.delete.removed')
      await this.#settleAfter(doc)
      return true
    })
    if (!removed) return false
    if (doc.gridfsId) await this.#gridfs.retire(doc.gridfsId).catch(() => {}) // else its lease brings the sweeper
    return true
  }

  /** Moves one file record to `to` (as `options.revision`, with its event): null when the source changed meanwhile. */
  async #renameFile(source: FileDoc, to: string, options: MoveOptions = {}): Promise<FileDoc | null> {
    await this.#forgetDeadDelete(source)
    await this.#settleBefore(source)
    const rev = options.revision ?? new ObjectId()
    const intent = await this.events.intend(
      { kind: 'moved', from: source.path, to: { ...toStoredFile(source), path: to, name: baseName(to) } },
      { holds: { path: to, revision: String(rev) } },
      { origin: options.origin, after: source.event },
    )
    await this.#folders.ensureAbove(to)
    const moved = await this.#decided(intent, async () => {
      if (intent) await this.#owners.confirm(intent.owner)
      let renamed: FileDoc | null
      try {
        renamed = await this.#catalog.rename(source, to, { rev, ...(intent ? { event: intent.key, eventOwner: intent.owner } : {}) })
      } catch (e) {
        if (!isDuplicateKey(e)) throw e
        await this.#folders.pruneAbove(to)
        throw alreadyExists(`"${to}"`) // created meanwhile
      }
      if (!renamed) return undefined
      await this.#settleAfter(source)
      await this.#confirmFolders(renamed, async () => {
        await this.#catalog.rename(renamed, source.path)
      })
      return renamed
    })
    if (!moved) {
      await this.#folders.pruneAbove(to)
      return null
    }
    await this.#folders.pruneAbove(source.path)
    return moved
  }

  /**
   * Moves every file under `from` to the same place under `to`, a batch at a time, then removes the
   * emptied folder records. Not atomic as a whole (MongoDB-wire servers without transactions), but
   * every step is: a crash leaves each file in one place or the other, never lost.
   */
  async #moveTree(from: string, to: string, event?: string, until?: Date): Promise<void> {
    const conflicts: string[] = []
    for (let after: string | undefined; ; ) {
      const found = await this.#catalog.filesUnder(from, after, TREE_BATCH)
      if (found.length === 0) break
      after = found.at(-1)!.path
      const batch = until ? found.filter((doc) => doc.modified <= until) : found
      const targets = batch.map((doc) => `${to}${doc.path.slice(from.length)}`)
      const folders = [...new Set(targets.map(parentOf))]
      await this.#folders.ensure(folders)
      await forEachLimited(batch, TREE_CONCURRENCY, async (doc, i) => {
        try {
          await this.#forgetDeadDelete(doc)
          // Each file's record names the folder's entry, which the next change of the file's key follows.
          if (!(await this.#catalog.rename(doc, targets[i]!, event !== undefined ? { event } : {}))) conflicts.push(doc.path) // changed meanwhile: stays
          else await this.#settleAfter(doc)
          failpoint('mongo.tree.moved')
        } catch (e) {
          if (!isDuplicateKey(e)) throw e
          conflicts.push(doc.path)
        }
      })
      await this.#folders.ensure(folders) // a prune may have raced the renames
    }
    await this.#removeEmptyFolders(from)
    if (conflicts.length > 0) {
      throw new StorageError('already_exists', `some files could not be moved: something took their place`, {
        details: { paths: conflicts.slice(0, 100) },
      })
    }
  }

  /** Deletes every file under `dir` (modified `until`, when given), a batch at a time, then its folder records. */
  async #deleteTree(dir: string, until?: Date): Promise<void> {
    for (let after: string | undefined; ; ) {
      const found = await this.#catalog.filesUnder(dir, after, TREE_BATCH)
      if (found.length === 0) break
      after = found.at(-1)!.path
      const batch = until ? found.filter((doc) => doc.modified <= until) : found
      await forEachLimited(batch, TREE_CONCURRENCY, (doc) => this.#removeFile(doc))
    }
    await this.#removeEmptyFolders(dir)
  }

  async #removeEmptyFolders(dir: string): Promise<void> {
    for (const folder of await this.#catalog.foldersOf(dir)) await this.#folders.removeIfEmpty(folder.path)
  }
}

/** What a commit is besides its bytes: the revision to commit as, the journal's callback, and who asked. */
interface CommitChange {
  rev?: string
  beforeVisible?: (result: PutResult) => Promise<void>
  origin?: ChangeOrigin | undefined
  uploadId?: string
}

function placementOf(kind: MongoDriverKind, inlineMaxBytes = DEFAULT_INLINE_MAX_BYTES): Placement {
  if (kind === 'gridfs') return { inlineMaxBytes: -1, gridfs: true }
  if (kind === 'mongo-inline') return { inlineMaxBytes: MAX_INLINE_BYTES, gridfs: false }
  if (!Number.isInteger(inlineMaxBytes) || inlineMaxBytes < 0 || inlineMaxBytes > MAX_INLINE_BYTES) {
    throw new Error(`inlineMaxBytes must be an integer from 0 to ${MAX_INLINE_BYTES}`)
  }
  return { inlineMaxBytes, gridfs: true }
}
