/**
 * The `disk` driver: files are plain files under a root folder; what a plain file cannot carry is
 * kept in a record by inode under the reserved `.filestorage/` folder (see layout.ts).
 *
 * The commit protocol (how a write becomes visible, and what a crash at each step leaves):
 *
 *   1. the body streams into a temporary file in this process's own `tmp/<instance>/` folder, is
 *      checked (size, sha256) and closed;                    crash: the temporary file, reclaimed
 *                                                             as soon as the instance is known dead
 *   2. under the path's lock (across processes, store-locks.ts) the preconditions are checked
 *      against what is at the path now;
 *   3. the temporary file gets its record (holder link, then record; file-records.ts);
 *                                                             crash: a record of a file with no name,
 *                                                             reclaimed by the sweeper (link count 1)
 *   4. one rename (or link, for If-None-Match: *) gives it its path: bytes and attributes become
 *      visible together, atomically, to every reader in every process;
 *   5. the record of the file it replaced is released.       crash: that record, reclaimed by the
 *                                                             sweeper (its holder is its last link)
 *
 * Readers never write: they open the file, then read the record of the inode they opened, which
 * can only describe those bytes. A reader that finds no record for its inode and sees the path now
 * names another file was overtaken by a write, and simply reads again. A small file read recently
 * is answered from memory once an lstat shows the path still names that very inode, unchanged
 * (small-file-cache.ts): a write always makes a new inode, so this never mixes versions either.
 *
 * A completed upload commits through the same steps (staging.ts; the upload engine journals it,
 * so a completion interrupted at any point is either finished or still to be done).
 */
import type { Stats } from 'node:fs'
import { closeSync, constants, createReadStream, fstatSync } from 'node:fs'
import { open, readdir, rm, rmdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { checkAnnouncedSize, Digest, DigestStream, verifySha256 } from '../digest.js'
import { fileInTheWay, keepsChanging, notFound, preconditionFailed, StorageError } from '../errors.js'
import { failpoint } from '../failpoints.js'
import { checkEntryIfMatch, checkMoveTarget, checkWriteConditions, contentTypeFor, etagOf } from '../file-attributes.js'
import { listLimit } from '../ordering.js'
import { ancestorsOf, baseName, checkMovePaths, invalidPathIfRoot, ROOT } from '../paths.js'
import { bodyChunks, gatherUpTo, readOfBytes, resumed } from '../streams.js'
import type { StorageDriver } from '../driver.js'
import type { Change } from '../events/changes.js'
import { EventRecorder, type Intent } from '../events/recorder.js'
import { type ChangeOrigin, intentsOf, type LogEntry } from '../events/types.js'
import { uploadWitnessed } from '../events/witnesses.js'
import { newRevision } from '../revision.js'
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
import { Adoptions } from './adoptions.js'
import { checkWritable } from './disk-health.js'
import { type FileRecord, FileRecords, isSameFile, recordMatches } from './file-records.js'
import { fileRange } from './file-stream.js'
import { Instances } from './instances.js'
import { link, lstat, openDescriptor, rename, stat, unlink } from './fs-calls.js'
import { DiskLayout, fromFsError, isErrno, placeMakingFolders, tmpFileWriter, writeSmallFile } from './layout.js'
import { migrateLegacySidecars } from './legacy-sidecars.js'
import { DiskLister } from './listing.js'
import { RecordCache } from './record-cache.js'
import { RecordWalks } from './record-walks.js'
import { SmallFileCache } from './small-file-cache.js'
import { DiskEventLog } from './event-log.js'
import { DiskStaging } from './staging.js'
import { StoreLocks } from './store-locks.js'
import type { SharedRecords } from '../shared-records.js'
import { DiskSharedRecords } from './shared-records.js'

/** How long a closing store waits for operations that hold locks before it lets go of them. */
const CLOSE_LOCK_WAIT_MS = 5000

export interface DiskDriverOptions {
  /** Root folder of the store; created when missing. */
  dir: string
  /** Bytes of small files kept in memory after a read (small-file-cache.ts); 0 keeps none. Default 32 MiB. */
  cacheBytes?: number
  /** The longest a sweep goes without walking every record when no crash asked for it (record-walks.ts). Default a day. */
  recordWalkIntervalMs?: number
}

/** What a finished file (temporary, or an upload's) becomes when it is committed to a path. */
export interface CommitRequest extends WritePreconditions {
  /** The file to commit; only the caller can reach it. Left in place if the commit fails. */
  tmp: string
  sha256: string
  contentType?: string
  metadata?: Record<string, unknown>
  /** Kept in the record, for `lookupRevision` (driver.ts `CommitTarget.revision`). */
  revision?: string
  /** Runs once the file has its record, just before it gets its path (an upload's journal). */
  beforePlace?: (result: PutResult) => Promise<void>
  /** Who asked, for the event. */
  origin?: ChangeOrigin
  /** The upload a completion finishes (its event rides along). */
  uploadId?: string
  /** The stats of `tmp` as its writer closed it, if it kept them (else it is stat()ed). */
  tmpStats?: Stats
}

const READ_CHUNK = 1024 * 1024
const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024
/**
 * An upload announced at most this long is checked against the path once, at the commit; one that
 * turns out at most this long is written with one call instead of streamed.
 */
const SMALL_BODY_BYTES = 64 * 1024
/** How long a name given by `localVersion` lasts: ample for a web server to open it. */
export const LOCAL_VERSION_HOLD_MS = 60_000
/** Reads overtaken by writes this many times in a row give up (`store_unavailable`). */
const READ_ATTEMPTS = 5

const pathLock = (path: string) => `path:${path}`

export class DiskDriver implements StorageDriver {
  readonly kind = 'disk'
  readonly #cache = new RecordCache()
  readonly #smallFiles: SmallFileCache
  /** The file each description returned was made from, for `localVersion`. */
  readonly #versions = new WeakMap<StoredFile, Stats>()
  readonly #adoptions: Adoptions
  readonly #lister: DiskLister
  readonly staging: DiskStaging
  readonly events: EventRecorder
  readonly #eventLog: DiskEventLog
  readonly #locks: StoreLocks
  readonly #walks: RecordWalks
  /** The names `localVersion` gave out, with the inode each holds and the timer that removes it. */
  readonly #pins = new Map<string, { ino: number; timer: NodeJS.Timeout }>()

  private constructor(
    readonly layout: DiskLayout,
    private readonly instances: Instances,
    private readonly records: FileRecords,
    /** Whether records carry birth times (see FileRecord.birthtimeMs). */
    private readonly birthTimes: boolean,
    cacheBytes: number,
    walks: RecordWalks,
  ) {
    this.#walks = walks
    this.#smallFiles = new SmallFileCache(cacheBytes)
    this.#locks = new StoreLocks(layout.locksDir, instances, (id) => this.#reap(id).then(() => {}))
    this.#adoptions = new Adoptions(records)
    this.#lister = new DiskLister(layout, (path) => this.#describe(path))
    this.#eventLog = new DiskEventLog(layout.eventsDir, instances, this.#locks, () => layout.tmpFile(), (entry) => this.#settle(entry))
    this.events = new EventRecorder(this.#eventLog)
    this.staging = new DiskStaging(layout, this.#locks, instances, {
      commit: (path, request) => this.#commit(path, request),
      lookupRevision: (path, revision) => this.lookupRevision(path, revision),
      discardTree: (abs) => this.#discardTree(abs),
      removeUncommitted: (file) => this.#removeUncommitted(file),
    })
  }

  static async open(options: DiskDriverOptions): Promise<DiskDriver> {
    const layout = await DiskLayout.open(options.dir)
    const instances = await Instances.register(layout.instancesDir)
    await layout.useInstance(instances.id)
    const records = new FileRecords(layout.inodesDir, () => layout.tmpFile())
    await migrateLegacySidecars(layout, records)
    if (await layout.isRestoredCopy()) {
      await records.rekey(layout.rekeyDir) // records keyed by the inode numbers the files had before
      await layout.markOpened()
    }
    const birthTimes = await layout.keepsBirthTimes()
    const walks = await RecordWalks.open(layout.recordWalksFile, options.recordWalkIntervalMs)
    const driver = new DiskDriver(layout, instances, records, birthTimes, options.cacheBytes ?? DEFAULT_CACHE_BYTES, walks)
    await driver.#reapDead() // what a crashed process left goes at once, its locks first
    return driver
  }

  /** This driver's instance id among the processes sharing the folder (instances.ts). */
  get instanceId(): string {
    return this.instances.id
  }

  /** Records every process on the folder shares (shared-records.ts), under `.filestorage/records/<namespace>/`. */
  sharedRecords(namespace: string): SharedRecords {
    return new DiskSharedRecords(this.layout, namespace, this.#locks, this.instances)
  }

  async put(path: string, body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    invalidPathIfRoot(path)
    checkAnnouncedSize(options.expectedSize, options.maxBytes)
    this.events.checkRoom()
    const small = options.expectedSize !== undefined && options.expectedSize <= SMALL_BODY_BYTES
    // Checked before reading a byte, so that a body refused anyway is not received for nothing, and
    // again at the commit. A body announced small is cheaper to receive than to check twice for.
    if (!small) await this.#guard(path, () => this.#precheck(path, options))
    const tmp = this.layout.tmpFile()
    let committed = false
    try {
      const { sha256, stats: tmpStats } = await this.#writeTemporary(tmp, body, options.maxBytes)
      verifySha256(options.expectedSha256, sha256)
      failpoint('disk.put.written')
      const result = await this.#commit(path, { ...options, tmp, sha256, ...(tmpStats ? { tmpStats } : {}) })
      committed = true
      return result
    } catch (e) {
      throw await this.#storageError(e, path)
    } finally {
      if (!committed) await this.#removeUncommitted(tmp)
    }
  }

  /**
   * Step 1 of the commit protocol: `body` into a new temporary file, hashed and counted on the way.
   * A body that ends within SMALL_BODY_BYTES is gathered and written with one call; for a few KiB,
   * the stream pipeline (three streams, an AbortController, the DOMException it makes at the end)
   * cost more than the write itself. A longer one streams, its chunks batched into writes.
   */
  async #writeTemporary(tmp: string, body: ReadableStream<Uint8Array>, maxBytes?: number): Promise<{ sha256: string; stats?: Stats }> {
    const chunks = bodyChunks(body)
    const head = await gatherUpTo(chunks, SMALL_BODY_BYTES)
    if (head.ended) {
      const digest = new Digest(maxBytes)
      for (const chunk of head.gathered) digest.update(chunk)
      const stats = await writeSmallFile(tmp, head.gathered.length === 1 ? head.gathered[0]! : Buffer.concat(head.gathered))
      return { sha256: digest.digest(), stats }
    }
    const digest = new DigestStream(maxBytes)
    let stats: Stats | undefined
    await pipeline(resumed(head.gathered, chunks), digest, tmpFileWriter(tmp, (closed) => (stats = closed)))
    return { sha256: digest.digest(), ...(stats ? { stats } : {}) }
  }

  async read(path: string, range?: ByteRange): Promise<ReadResult> {
    invalidPathIfRoot(path)
    const abs = this.layout.data(path)
    const cached = this.#smallFiles.get(abs)
    if (cached) {
      const { start, end } = cutToSize(range, cached.bytes.byteLength)
      return readOfBytes(cached.file, range ? cached.bytes.subarray(start, end + 1) : cached.bytes)
    }
    return this.#guard(path, async () => {
      for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        const statsFrom = Date.now() // the stats below are at least this recent
        const fd = await this.#openConfined(path)
        let owned = true // until the stream takes the descriptor over
        try {
          // Calls on an open descriptor do not wait for the disk: made at once, not through the thread pool.
          const stats = fstatSync(fd)
          if (!stats.isFile()) throw notFound(`a file at "${path}"`)
          await this.layout.confineOpened(fd, path)
          const file = await this.#describeOpen(path, fd, stats)
          if (!file) {
            closeSync(fd)
            continue // overtaken by a write: read the new file
          }
          // The stream reads the inode opened above, so it matches `file` even if the path is replaced meanwhile.
          const { start, end } = cutToSize(range, stats.size)
          owned = false
          const content = await fileRange(fd, start, end, READ_CHUNK)
          if (!(content instanceof Uint8Array)) return { file, body: content }
          if (start === 0) this.#smallFiles.set(abs, stats, statsFrom, file, content)
          return readOfBytes(file, content)
        } catch (e) {
          if (owned) closeSync(fd)
          throw e
        }
      }
      throw keepsChanging(`"${path}"`)
    })
  }

  /** Opens the file at `path` for reading; a path that leads outside the store is `forbidden`, not missing. */
  async #openConfined(path: string): Promise<number> {
    try {
      // Non-blocking: a FIFO put in the store answers at once instead of holding a thread until a writer comes.
      return await openDescriptor(this.layout.data(path), constants.O_RDONLY | constants.O_NONBLOCK)
    } catch (e) {
      await this.layout.confine(path)
      // A path under a file names no file: missing, as `stat` says, not a conflict as for a write.
      if (isErrno(e, 'ENOTDIR')) throw notFound(`"${path}"`)
      throw e
    }
  }

  async stat(path: string): Promise<StoredFile> {
    const entry = await this.lookup(path)
    // The messages of `read`, so that a GET says the same whichever way it is answered.
    if (!entry) throw notFound(`"${path}"`)
    if (entry.type !== 'file') throw notFound(`a file at "${path}"`)
    return entry
  }

  async lookup(path: string): Promise<StoredEntry | null> {
    if (path === ROOT) return { type: 'directory', path: ROOT, name: '' }
    const cached = this.#smallFiles.get(this.layout.data(path))
    if (cached) return cached.file
    return this.#guard(path, async () => {
      await this.layout.confine(path)
      return this.#lookupConfined(path)
    })
  }

  /** `lookup` of a path already confined to the root. */
  async #lookupConfined(path: string): Promise<StoredEntry | null> {
    return (await this.#lookupLinked(path)).entry
  }

  /**
   * `lookup` of a confined path, with the path's own stats (`lstat`: what a rename onto it would
   * replace, a symbolic link itself rather than what it points to). One call unless it is a link.
   */
  async #lookupLinked(path: string): Promise<{ entry: StoredEntry | null; own: Stats | null; underFile?: boolean }> {
    const abs = this.layout.data(path)
    let own: Stats
    let stats: Stats
    try {
      own = await lstat(abs)
      stats = own.isSymbolicLink() ? await stat(abs) : own
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return { entry: null, own: null }
      // A path resolves through folders only: ENOTDIR, and nothing else, says a file stands above it.
      if (isErrno(e, 'ENOTDIR')) return { entry: null, own: null, underFile: true }
      throw e
    }
    if (stats.isDirectory()) return { entry: { type: 'directory', path, name: baseName(path) }, own }
    if (!stats.isFile()) return { entry: null, own }
    return { entry: await this.#describe(path, stats), own }
  }

  /**
   * A link of its own to the version `file` was described from, in this process's temporary folder
   * (reclaimed with it should the process die), removed after `LOCAL_VERSION_HOLD_MS`. Made from the
   * holder (file-records.ts), then checked to be that very version: once the version is released
   * its inode number, and so its holder's name, can be taken by a new file.
   */
  async localVersion(file: StoredFile): Promise<string | undefined> {
    const version = this.#versions.get(file)
    if (!version) return undefined
    const pin = this.layout.tmpFile()
    try {
      await link(this.records.holder(version.ino), pin)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined // released already
      throw e
    }
    const pinned = await lstat(pin)
    const same =
      pinned.ino === version.ino &&
      pinned.size === version.size &&
      pinned.mtimeMs === version.mtimeMs &&
      pinned.birthtimeMs === version.birthtimeMs
    if (!same) {
      await unlink(pin)
      return undefined
    }
    const timer = setTimeout(() => void this.#unpin(pin), LOCAL_VERSION_HOLD_MS).unref()
    this.#pins.set(pin, { ino: version.ino, timer })
    return relative(this.layout.root, pin)
  }

  /**
   * Removes a name `localVersion` gave out (or waits for `removing`, which removes it), then releases
   * the version's record if that name was all that kept it (the version was replaced or deleted
   * meanwhile, and its release skipped it).
   */
  async #unpin(pin: string, removing?: Promise<unknown>): Promise<void> {
    const held = this.#pins.get(pin)
    if (!held) return
    this.#pins.delete(pin)
    clearTimeout(held.timer)
    await (removing ?? unlink(pin)).catch(() => {})
    await this.records.release(held.ino).catch(() => false)
  }

  async list(dir: string, options: ListOptions = {}): Promise<ListPage> {
    const limit = listLimit(options.limit)
    return this.#guard(dir, () =>
      this.#lister.list(dir, { recursive: options.recursive ?? false, limit, cursor: options.cursor }),
    )
  }

  async move(from: string, to: string, options: MoveOptions = {}): Promise<StoredEntry> {
    checkMovePaths(from, to)
    return this.#guard(from, () =>
      this.#locks.run([pathLock(from), pathLock(to)], async () => {
        await this.layout.confine(from)
        await this.layout.confine(to)
        const source = await this.#lookupConfined(from)
        if (!source) throw notFound(`"${from}"`)
        checkEntryIfMatch(options.ifMatch, source)
        if (from === to) return source
        await this.#assertNoFileAbove(to)
        const target = await this.#lookupConfined(to)
        checkMoveTarget(source, target, to, options.overwrite)
        if (options.revision !== undefined && source.type === 'file') await this.#revise(from, options.revision)
        // A folder it replaces goes first, as a delete of its own (with its own event).
        if (target?.type === 'directory') {
          const deleting = await this.#intendGone(to, options.origin, (files) => ({ kind: 'deleted', entry: target, ...(files !== undefined ? { files } : {}) }))
          await this.#discardTree(this.layout.data(to), deleting)
        }
        const replaced = target?.type === 'file' ? await lstat(this.layout.data(to)).catch(() => null) : null
        const intent = await this.#intendGone(from, options.origin, (files) => ({
          kind: 'moved',
          from,
          to: source.type === 'file' ? { ...source, path: to, name: baseName(to) } : { type: 'directory', path: to, name: baseName(to) },
          ...(files !== undefined ? { files } : {}),
        }))
        // Records go by inode: the one rename moves a file, or a whole folder, with its attributes.
        await this.events.around(intent, () => this.#renameInto(this.layout.data(from), this.layout.data(to)))
        if (replaced) await this.records.release(replaced.ino)
        await this.layout.pruneEmptyParents(from)
        const moved = await this.#lookupConfined(to)
        if (!moved) throw notFound(`"${to}"`)
        return moved
      }),
    )
  }

  async delete(path: string, options: DeleteOptions = {}): Promise<void> {
    invalidPathIfRoot(path)
    await this.#guard(path, () =>
      this.#locks.run(pathLock(path), async () => {
        await this.layout.confine(path)
        const entry = await this.#lookupConfined(path)
        if (!entry) throw notFound(`"${path}"`)
        checkEntryIfMatch(options.ifMatch, entry)
        const intent = await this.#intendGone(path, options.origin, (files) => ({ kind: 'deleted', entry, ...(files !== undefined ? { files } : {}) }))
        if (entry.type === 'file') {
          const { ino } = await lstat(this.layout.data(path))
          await this.events.around(intent, () => unlink(this.layout.data(path)))
          failpoint('disk.delete.unlinked')
          await this.records.release(ino)
        } else if (options.recursive) {
          await this.#discardTree(this.layout.data(path), intent)
        } else {
          await this.events.around(intent, async () => {
            try {
              await rmdir(this.layout.data(path))
            } catch (e) {
              if (isErrno(e, 'ENOTEMPTY', 'EEXIST')) {
                throw new StorageError('directory_not_empty', `the folder "${path}" is not empty; delete it with recursive`)
              }
              throw e
            }
          })
        }
        await this.layout.pruneEmptyParents(path)
      }),
    )
  }

  checkWrite(path: string, conditions: WritePreconditions): Promise<void> {
    return this.#guard(path, async () => {
      await this.#precheck(path, conditions)
    })
  }

  /** The file at `path` if its record carries `revision` (a completed upload's). */
  lookupRevision(path: string, revision: string): Promise<StoredFile | null> {
    return this.#guard(path, async () => {
      await this.layout.confine(path)
      const stats = await stat(this.layout.data(path)).catch(() => null)
      if (!stats?.isFile()) return null
      const record = await this.#recordOf(stats)
      return record?.revision === revision ? this.#described(path, record, stats) : null
    })
  }

  run<T>(subject: string, operation: () => Promise<T>): Promise<T> {
    return this.#guard(subject, operation)
  }

  /**
   * Reclaims what is provably abandoned: everything of processes known dead (temporary files,
   * trash, locks), appends cut by a crash (their bytes kept), upload folders a crash left without a
   * record, and the records of files that have no name any more (by walking them all: after a
   * crash, else once a day, see record-walks.ts). Expired uploads are the engine's, swept before.
   */
  async sweep(now = new Date()): Promise<number> {
    const reaped = await this.#reapDead()
    const uploads = await this.staging.sweep(now)
    const records = (await this.#walks.claim()) ? await this.records.sweep() : 0
    return reaped + uploads + records
  }

  async health(): Promise<HealthReport> {
    const started = performance.now()
    try {
      // The temporary folder takes writes (space, inodes, a probe block): what every upload needs.
      const { writable, message } = await checkWritable(this.layout.tmpDir, this.layout.tmpFile())
      return { ok: true, writable, latencyMs: performance.now() - started, ...(message ? { message } : {}) }
    } catch (e) {
      return { ok: false, latencyMs: performance.now() - started, message: (e as Error).message }
    }
  }

  /** Waits for background work (adoptions of files put there by hand); for tests and shutdown. */
  async idle(): Promise<void> {
    await this.#adoptions.idle()
  }

  async close(): Promise<void> {
    await this.#adoptions.idle()
    this.events.disable()
    await this.#locks.release(CLOSE_LOCK_WAIT_MS, () => this.events.settleOwn())
    await this.instances.close()
    const removed = rm(this.layout.tmpDir, { recursive: true, force: true })
    await Promise.all([...this.#pins.keys()].map((pin) => this.#unpin(pin, removed)))
    await removed
    await rm(join(this.layout.trashRoot, this.instances.id), { recursive: true, force: true })
  }

  /** Runs an operation, turning file-system errors into storage errors. */
  async #guard<T>(path: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      throw await this.#storageError(e, path)
    }
  }

  /** A missing file is `not_found`, unless the store's own folders are gone (an unmounted volume). */
  async #storageError(e: unknown, path: string): Promise<unknown> {
    if (isErrno(e, 'ENOENT') && !(await stat(this.layout.tmpDir).then(() => true, () => false))) {
      return new StorageError('store_unavailable', 'the store\'s folder is missing', { cause: e })
    }
    return fromFsError(e, path)
  }

  /** The checks a write makes before reading its body (unless it is small), and again under the lock of its commit. */
  async #precheck(path: string, conditions: WritePreconditions): Promise<StoredFile | null> {
    return (await this.#precheckLinked(path, conditions)).current
  }

  /** `#precheck`, with the path's own stats (see `#lookupLinked`). */
  async #precheckLinked(path: string, conditions: WritePreconditions): Promise<{ current: StoredFile | null; own: Stats | null }> {
    await this.layout.confine(path)
    const { entry, own, underFile } = await this.#lookupLinked(path)
    // Found or missing, every ancestor the lookup went through was a folder: only ENOTDIR needs the
    // walk, which names the file in the way (or finds it gone meanwhile).
    if (underFile) await this.#assertNoFileAbove(path)
    checkWriteConditions(path, entry, conditions)
    return { current: entry as StoredFile | null, own }
  }

  async #assertNoFileAbove(path: string): Promise<void> {
    for (const ancestor of ancestorsOf(path)) {
      let stats: Stats
      try {
        stats = await stat(this.layout.data(ancestor))
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return // nothing deeper exists either
        throw e
      }
      if (!stats.isDirectory()) throw fileInTheWay(ancestor)
    }
  }

  /** Steps 2 to 5 of the commit protocol (top of this file): `request.tmp` becomes the file at `path`. */
  async #commit(path: string, request: CommitRequest): Promise<PutResult> {
    return this.#locks.run(pathLock(path), async () => {
      const { current: previous, own } = await this.#precheckLinked(path, request)
      const replaced = previous ? own : null
      const stats = request.tmpStats ?? (await stat(request.tmp))
      // With events, every version has a revision: its event is settled by it after a crash.
      const revision = request.revision ?? (this.events.enabled ? newRevision() : undefined)
      const record: FileRecord = {
        v: 2,
        sha256: request.sha256,
        size: stats.size,
        mtimeMs: stats.mtimeMs,
        ...this.#birthOf(stats),
        contentType: contentTypeFor(baseName(path), request.contentType),
        metadata: request.metadata ?? {},
        created: previous?.created ?? stats.mtime.toISOString(),
        ...(revision !== undefined ? { revision } : {}),
      }
      const bytes = await this.records.attach(request.tmp, stats, record)
      this.#cache.set(stats, record, bytes) // the next write or read of this path needs it
      failpoint('disk.commit.attached')
      const result: PutResult = { file: this.#described(path, record, stats), created: previous === null }
      const intent =
        revision === undefined
          ? null
          : await this.events.intend(
              { kind: 'written', file: result.file, created: result.created, ...(request.uploadId !== undefined ? { uploadId: request.uploadId } : {}) },
              { holds: { path, revision } },
              { origin: request.origin },
            )
      const target = this.layout.data(path)
      await this.events.around(intent, async () => {
        await request.beforePlace?.(result)
        failpoint('disk.commit.intended')
        if (request.mustNotExist) {
          // link() fails when the target exists: create-if-absent in one step.
          await this.#renameInto(request.tmp, target, link)
          await unlink(request.tmp)
        } else {
          await this.#renameInto(request.tmp, target)
        }
      })
      failpoint('disk.commit.placed')
      if (replaced && replaced.ino !== stats.ino) await this.records.release(replaced.ino)
      return result
    })
  }

  /** Removes a temporary file that was not committed, and the record it may have been given. */
  async #removeUncommitted(tmp: string): Promise<void> {
    const stats = await lstat(tmp).catch(() => null)
    await rm(tmp, { force: true })
    if (stats) await this.records.release(stats.ino).catch(() => false)
  }

  /**
   * Renames (or links) into a path, making its folders. Retries when a concurrent delete pruned a
   * folder between the mkdir and the rename.
   */
  async #renameInto(
    from: string,
    to: string,
    place: (a: string, b: string) => Promise<void> = rename,
  ): Promise<void> {
    try {
      await placeMakingFolders(from, to, { place, retryOn: ['ENOENT'] })
    } catch (e) {
      if (isErrno(e, 'EEXIST') && place === link) throw preconditionFailed('the target was created meanwhile')
      throw e
    }
  }

  /**
   * Moves a folder out of sight at once (into this process's trash), then removes it, releasing
   * the records of its files. A crash part way leaves the trash to the sweeper.
   */
  async #discardTree(abs: string, intent: Intent | null = null): Promise<void> {
    const trash = this.layout.trashFile()
    try {
      await this.events.around(intent, () => rename(abs, trash))
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return
      throw e
    }
    failpoint('disk.discard.moved')
    const empty = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, entry.name)
        if (entry.isDirectory()) {
          await empty(p)
          await rmdir(p)
        } else {
          const { ino } = await lstat(p)
          await unlink(p)
          if (entry.isFile()) await this.records.release(ino)
        }
      }
    }
    await empty(trash)
    await rmdir(trash)
  }

  /**
   * The intent of a move or delete of what is at `path` (confined, under its lock): settled by
   * whether `path` still names that file or folder, which nobody else can change until this process's
   * locks go (after its intents are settled, should it die). A folder's files are counted first.
   */
  async #intendGone(path: string, origin: ChangeOrigin | undefined, change: (files?: number) => Change): Promise<Intent | null> {
    if (!this.events.enabled) return null
    const own = await lstat(this.layout.data(path))
    const files = own.isDirectory() ? await countFiles(this.layout.data(path)) : undefined
    return this.events.intend(change(files), { gone: { path, ino: own.ino } }, { origin })
  }

  /** Whether the change of an orphan intent is visible (see `#intendGone` and `#commit`). */
  async #settle(entry: LogEntry): Promise<boolean> {
    const { witness } = entry
    if ('holds' in witness) return (await this.lookupRevision(witness.holds.path, witness.holds.revision)) !== null
    if ('gone' in witness) return (await lstat(this.layout.data(witness.gone.path)).catch(() => null))?.ino !== witness.gone.ino
    if ('upload' in witness) return uploadWitnessed(this.staging.records, witness.upload)
    return false
  }

  /** Gives the record of the file at `path` (confined, under its lock) the revision `revision`. */
  async #revise(path: string, revision: string): Promise<void> {
    const stats = await lstat(this.layout.data(path))
    const record = await this.#recordOf(stats)
    if (!record) return // a file the store has not recorded (put there by hand): it has no revision to give
    const revised = { ...record, revision }
    const bytes = await this.records.attach(this.layout.data(path), stats, revised, true)
    this.#cache.set(stats, revised, bytes)
  }

  /** Describes a file from its record (from its bytes when it has none); null when it vanished. */
  async #describe(path: string, known?: Stats): Promise<StoredFile | null> {
    try {
      const stats = known ?? (await stat(this.layout.data(path)))
      if (!stats.isFile()) return null
      const record = await this.#recordOf(stats)
      if (record) return this.#described(path, record, stats)
      for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        const handle = await open(this.layout.data(path), 'r')
        try {
          const opened = await handle.stat()
          if (!opened.isFile()) return null
          const file = await this.#describeOpen(path, handle.fd, opened)
          if (file) return file
        } finally {
          await handle.close()
        }
      }
      throw keepsChanging(`"${path}"`)
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null
      throw e
    }
  }

  /**
   * Describes the file open as `fd` (with `stats`), opened at `path`. Null when the path names
   * another file by now: the one opened was replaced, and its record may be gone with it.
   */
  async #describeOpen(path: string, fd: number, stats: Stats): Promise<StoredFile | null> {
    const record = await this.#recordOf(stats)
    if (record) return this.#described(path, record, stats)
    const now = await stat(this.layout.data(path)).catch(() => null)
    if (now?.ino !== stats.ino) return null
    return this.#describeFromBytes(path, fd, stats)
  }

  /**
   * A file without a record for its bytes (put there or edited by hand): hashed from `fd`, with
   * the content type and metadata of its earlier record if it had one; recorded in the background.
   */
  async #describeFromBytes(path: string, fd: number, stats: Stats): Promise<StoredFile | null> {
    const hash = createHash('sha256')
    for await (const chunk of createReadStream('', { fd, start: 0, autoClose: false, highWaterMark: READ_CHUNK })) {
      hash.update(chunk as Buffer)
    }
    const after = await stat(this.layout.data(path)).catch(() => null)
    if (!after || after.ino !== stats.ino || after.size !== stats.size || after.mtimeMs !== stats.mtimeMs) return null
    // A record of this inode whose bytes were edited in place keeps its attributes; one written for
    // another file that had this inode number (a restored copy) does not.
    const read = (await this.records.read(stats.ino))?.record
    const earlier = read && isSameFile(read, stats) ? read : undefined
    const record: FileRecord = {
      v: 2,
      sha256: hash.digest('hex'),
      size: stats.size,
      mtimeMs: stats.mtimeMs,
      ...this.#birthOf(stats),
      contentType: earlier?.contentType ?? contentTypeFor(baseName(path)),
      metadata: earlier?.metadata ?? {},
      created: earlier?.created ?? (stats.birthtimeMs > 0 ? stats.birthtime : stats.mtime).toISOString(),
    }
    this.#adoptions.add(this.layout.data(path), stats, record)
    return describe(path, record, stats)
  }

  /** `describe`, for a file that has its record (and so a holder). */
  #described(path: string, record: FileRecord, stats: Stats): StoredFile {
    const file = describe(path, record, stats)
    this.#versions.set(file, stats)
    return file
  }

  #birthOf(stats: Stats): { birthtimeMs?: number } {
    return this.birthTimes ? { birthtimeMs: stats.birthtimeMs } : {}
  }

  /** The record of the file with `stats` if it matches its bytes, from the cache while unchanged. */
  async #recordOf(stats: Stats): Promise<FileRecord | null> {
    const cached = this.#cache.get(stats)
    if (cached) return cached
    if (stats.nlink < 2) return null // no holder: the store never recorded this file
    const read = await this.records.read(stats.ino)
    if (!read || !recordMatches(read.record, stats)) return null
    this.#cache.set(stats, read.record, read.bytes)
    return read.record
  }

  /** Reaps every instance known dead; returns how many. */
  async #reapDead(): Promise<number> {
    let reaped = 0
    for (const id of await this.instances.dead()) if (await this.#reap(id)) reaped++
    return reaped
  }

  /** Reclaims what the dead instance `id` left: its locks, temporary files and trash. */
  #reap(id: string): Promise<boolean> {
    return this.instances.reap(id, async (_id, record) => {
      // Its changes cut short are settled while its locks still keep everyone else off their paths.
      await this.events.settleOwner(id)
      await this.#eventLog.forget(intentsOf(id))
      await this.#locks.removeLocksOf(record)
      await rm(join(this.layout.tmpRoot, id), { recursive: true, force: true })
      await rm(join(this.layout.trashRoot, id), { recursive: true, force: true })
      // What it left may include records of files that lost their name: the next sweep walks them.
      await this.#walks.request()
    })
  }
}

/** A file as the API describes it, from its record and its stats. */
function describe(path: string, record: FileRecord, stats: Stats): StoredFile {
  return {
    type: 'file',
    path,
    name: baseName(path),
    size: stats.size,
    contentType: record.contentType,
    sha256: record.sha256,
    etag: etagOf(record.sha256),
    created: record.created,
    modified: stats.mtime.toISOString(),
    metadata: record.metadata,
    driver: 'disk',
  }
}

/**
 * `range` (the whole file when undefined) cut to a file of `size` bytes. A range worked out for the
 * version the caller described may not fit the one read (the path was replaced since): the caller,
 * comparing versions, asks again.
 */
function cutToSize(range: ByteRange | undefined, size: number): ByteRange {
  const end = Math.min(range?.end ?? size - 1, size - 1)
  return { start: Math.min(range?.start ?? 0, end + 1), end }
}

/** The files under the folder `abs`, at any depth (a walk of its folders, no stat of its files). */
async function countFiles(abs: string): Promise<number> {
  let files = 0
  for (const entry of await readdir(abs, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) files += await countFiles(join(abs, entry.name))
    else if (entry.isFile()) files++
  }
  return files
}
