/**
 * The `disk` driver: files are plain files under a root folder; what a plain file cannot carry is
 * kept in a sidecar under the reserved `.filestorage/` folder (see layout.ts and sidecar.ts).
 *
 * Every write streams into a temporary file on the same file system, is checked (size, sha256),
 * then renamed into place: readers see the old file or the new one, and a cut-off upload leaves
 * only a temporary file, which is removed at once (or by the sweeper after a crash).
 */
import type { Stats } from 'node:fs'
import { link, open, rename, rm, rmdir, stat, unlink } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { checkAnnouncedSize, DigestStream, verifySha256 } from '../digest.js'
import { fileInTheWay, notFound, preconditionFailed, StorageError } from '../errors.js'
import { checkEntryIfMatch, checkMoveTarget, checkWriteConditions, contentTypeFor } from '../file-attributes.js'
import { KeyedLock } from '../keyed-lock.js'
import { listLimit } from '../ordering.js'
import { defaultUploadPolicy, type UploadPolicy } from '../part-uploads.js'
import { ancestorsOf, baseName, checkMovePaths, invalidPathIfRoot, ROOT } from '../paths.js'
import { bodyChunks } from '../streams.js'
import type {
  AppendPartOptions,
  AppendResult,
  ByteRange,
  CompleteUploadOptions,
  CreateUploadOptions,
  DeleteOptions,
  HealthReport,
  ListOptions,
  ListPage,
  MoveOptions,
  PartInfo,
  PutOptions,
  PutPartOptions,
  PutResult,
  ReadResult,
  StorageDriver,
  StoredEntry,
  StoredFile,
  UploadSession,
  UploadStatus,
  WritePreconditions,
} from '../types.js'
import { fileRangeStream } from './file-stream.js'
import { DiskLayout, fromFsError, isErrno, placeMakingFolders, tmpFileWriter } from './layout.js'
import { DiskLister } from './listing.js'
import { SidecarCache } from './sidecar-cache.js'
import {
  commitSidecar,
  describe,
  moveSidecar,
  readSidecarText,
  rebuildSidecar,
  removeSidecar,
  type Sidecar,
  sidecarMatches,
  stageSidecar,
} from './sidecar.js'
import { DiskUploads } from './uploads.js'

export interface DiskDriverOptions {
  /** Root folder of the store; created when missing. */
  dir: string
  uploads?: Partial<UploadPolicy>
}

/** What a finished temporary file becomes when it is committed to a path. */
export interface CommitRequest extends WritePreconditions {
  tmp: string
  sha256: string
  contentType?: string
  metadata?: Record<string, unknown>
}

const READ_CHUNK = 1024 * 1024

export class DiskDriver implements StorageDriver {
  readonly kind = 'disk'
  readonly #locks = new KeyedLock()
  readonly #sidecars = new SidecarCache()
  readonly #lister: DiskLister
  readonly #uploads: DiskUploads

  private constructor(readonly layout: DiskLayout, policy: UploadPolicy) {
    this.#lister = new DiskLister(layout, (path) => this.#describe(path))
    this.#uploads = new DiskUploads(layout, policy, this.#locks, {
      precheck: (path, conditions) => this.#precheck(path, conditions),
      commit: (path, request) => this.#commit(path, request),
    })
  }

  static async open(options: DiskDriverOptions): Promise<DiskDriver> {
    const layout = await DiskLayout.open(options.dir)
    return new DiskDriver(layout, { ...defaultUploadPolicy, ...options.uploads })
  }

  async put(path: string, body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    invalidPathIfRoot(path)
    checkAnnouncedSize(options.expectedSize, options.maxBytes)
    await this.#guard(path, () => this.#precheck(path, options))
    const tmp = this.layout.tmpFile()
    let committed = false
    try {
      const digest = new DigestStream(options.maxBytes)
      await pipeline(bodyChunks(body), digest, tmpFileWriter(tmp))
      const sha256 = digest.digest()
      verifySha256(options.expectedSha256, sha256)
      const result = await this.#commit(path, { ...options, tmp, sha256 })
      committed = true
      return result
    } catch (e) {
      throw await this.#storageError(e, path)
    } finally {
      if (!committed) await rm(tmp, { force: true }) // once committed, it is the file
    }
  }

  async read(path: string, range?: ByteRange): Promise<ReadResult> {
    invalidPathIfRoot(path)
    return this.#guard(path, async () => {
      await this.layout.confine(path)
      const handle = await open(this.layout.data(path), 'r')
      try {
        const stats = await handle.stat()
        if (!stats.isFile()) throw notFound(`a file at "${path}"`)
        const file = await this.#describeOpen(path, handle.fd, stats)
        // The stream reads the inode opened above, so it matches `file` even if the path is replaced meanwhile.
        const body = await fileRangeStream(handle, range?.start ?? 0, range?.end ?? stats.size - 1, READ_CHUNK)
        return { file, body }
      } catch (e) {
        await handle.close()
        throw e
      }
    })
  }

  async stat(path: string): Promise<StoredFile> {
    const entry = await this.lookup(path)
    if (entry?.type !== 'file') throw notFound(`a file at "${path}"`)
    return entry
  }

  async lookup(path: string): Promise<StoredEntry | null> {
    if (path === ROOT) return { type: 'directory', path: ROOT, name: '' }
    return this.#guard(path, async () => {
      await this.layout.confine(path)
      return this.#lookupConfined(path)
    })
  }

  /** `lookup` of a path already confined to the root. */
  async #lookupConfined(path: string): Promise<StoredEntry | null> {
    let stats: Stats
    try {
      stats = await stat(this.layout.data(path))
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null
      throw e
    }
    if (stats.isDirectory()) return { type: 'directory', path, name: baseName(path) }
    if (!stats.isFile()) return null
    return this.#describe(path, stats)
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
      this.#locks.run([from, to], async () => {
        await this.layout.confine(from)
        await this.layout.confine(to)
        const source = await this.lookup(from)
        if (!source) throw notFound(`"${from}"`)
        checkEntryIfMatch(options.ifMatch, source)
        if (from === to) return source
        await this.#assertNoFileAbove(to)
        const target = await this.lookup(to)
        checkMoveTarget(source, target, to, options.overwrite)
        if (target?.type === 'directory') {
          await this.layout.discard(this.layout.data(to))
          await this.layout.discard(this.layout.meta(to))
        }
        await this.#renameInto(this.layout.data(from), this.layout.data(to))
        await moveSidecar(this.layout, from, to)
        await this.layout.pruneEmptyParents(from)
        const moved = await this.lookup(to)
        if (!moved) throw notFound(`"${to}"`)
        return moved
      }),
    )
  }

  async delete(path: string, options: DeleteOptions = {}): Promise<void> {
    invalidPathIfRoot(path)
    await this.#guard(path, () =>
      this.#locks.run(path, async () => {
        await this.layout.confine(path)
        const entry = await this.lookup(path)
        if (!entry) throw notFound(`"${path}"`)
        checkEntryIfMatch(options.ifMatch, entry)
        if (entry.type === 'file') {
          await unlink(this.layout.data(path))
          await removeSidecar(this.layout, path)
        } else if (options.recursive) {
          await this.layout.discard(this.layout.data(path))
          await this.layout.discard(this.layout.meta(path))
        } else {
          try {
            await rmdir(this.layout.data(path))
          } catch (e) {
            if (isErrno(e, 'ENOTEMPTY', 'EEXIST')) {
              throw new StorageError('directory_not_empty', `the folder "${path}" is not empty; delete it with recursive`)
            }
            throw e
          }
          await rm(this.layout.meta(path), { recursive: true, force: true })
        }
        await this.layout.pruneEmptyParents(path)
      }),
    )
  }

  createUpload(path: string, options: CreateUploadOptions = {}): Promise<UploadSession> {
    invalidPathIfRoot(path)
    return this.#guard(path, () => this.#uploads.create(path, options))
  }

  putPart(uploadId: string, part: number, body: ReadableStream<Uint8Array>, options?: PutPartOptions): Promise<PartInfo> {
    return this.#guard(uploadId, () => this.#uploads.putPart(uploadId, part, body, options))
  }

  appendPart(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    return this.#guard(uploadId, () => this.#uploads.append(uploadId, body, options))
  }

  declareUploadSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    return this.#guard(uploadId, () => this.#uploads.declareSize(uploadId, totalSize))
  }

  uploadStatus(uploadId: string): Promise<UploadStatus> {
    return this.#guard(uploadId, () => this.#uploads.status(uploadId))
  }

  completeUpload(uploadId: string, options?: CompleteUploadOptions): Promise<PutResult> {
    return this.#guard(uploadId, () => this.#uploads.complete(uploadId, options))
  }

  abortUpload(uploadId: string): Promise<void> {
    return this.#guard(uploadId, () => this.#uploads.abort(uploadId))
  }

  sweep(now = new Date()): Promise<{ removed: number }> {
    return this.#uploads.sweep(now)
  }

  async health(): Promise<HealthReport> {
    const started = performance.now()
    try {
      // The root answers and the temporary folder is writable: what every upload needs.
      const probe = this.layout.tmpFile()
      await (await open(probe, 'wx')).close()
      await unlink(probe)
      return { ok: true, latencyMs: performance.now() - started }
    } catch (e) {
      return { ok: false, latencyMs: performance.now() - started, message: (e as Error).message }
    }
  }

  async close(): Promise<void> {}

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

  /** The checks a write makes before reading its body, and again atomically with its commit. */
  async #precheck(path: string, conditions: WritePreconditions): Promise<StoredFile | null> {
    await this.layout.confine(path)
    await this.#assertNoFileAbove(path)
    const current = await this.#lookupConfined(path)
    checkWriteConditions(path, current, conditions)
    return current as StoredFile | null
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

  /** Puts a finished temporary file in place at `path`, with its sidecar. */
  async #commit(path: string, request: CommitRequest): Promise<PutResult> {
    return this.#locks.run(path, async () => {
      const previous = await this.#precheck(path, request)
      const stats = await stat(request.tmp)
      const sidecar: Sidecar = {
        v: 1,
        sha256: request.sha256,
        size: stats.size,
        mtimeMs: stats.mtimeMs,
        ino: stats.ino,
        contentType: contentTypeFor(baseName(path), request.contentType),
        metadata: request.metadata ?? {},
        created: previous?.created ?? stats.mtime.toISOString(),
      }
      const staged = await stageSidecar(this.layout, sidecar)
      let placed = false
      try {
        const target = this.layout.data(path)
        if (request.mustNotExist) {
          // link() fails when the target exists: create-if-absent in one step.
          await this.#renameInto(request.tmp, target, link)
          await unlink(request.tmp)
        } else {
          await this.#renameInto(request.tmp, target)
        }
        await commitSidecar(this.layout, path, staged)
        placed = true
      } finally {
        if (!placed) await rm(staged, { force: true })
      }
      return { file: describe(path, sidecar, stats), created: previous === null }
    })
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
   * Describes a file from its sidecar (rebuilt when missing or stale); null when it vanished.
   * `known`: the stats of the file, when the caller has just taken them.
   */
  async #describe(path: string, known?: Stats): Promise<StoredFile | null> {
    try {
      const stats = known ?? (await stat(this.layout.data(path)))
      if (!stats.isFile()) return null
      const sidecar = await this.#sidecarOf(path, stats)
      if (sidecar && sidecarMatches(sidecar, stats)) return describe(path, sidecar, stats)
      const handle = await open(this.layout.data(path), 'r')
      try {
        return await this.#describeOpen(path, handle.fd, await handle.stat())
      } finally {
        await handle.close()
      }
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null
      throw e
    }
  }

  async #describeOpen(path: string, fd: number, stats: Stats): Promise<StoredFile> {
    const sidecar = await this.#sidecarOf(path, stats)
    if (sidecar && sidecarMatches(sidecar, stats)) return describe(path, sidecar, stats)
    return describe(path, await rebuildSidecar(this.layout, path, fd, stats, sidecar), stats)
  }

  /** The sidecar of `path` (maybe stale), from the cache while its data file is unchanged. */
  async #sidecarOf(path: string, stats: Stats): Promise<Sidecar | null> {
    const cached = this.#sidecars.get(path, stats)
    if (cached) return cached
    const read = await readSidecarText(this.layout, path)
    if (!read) return null
    if (sidecarMatches(read.sidecar, stats)) this.#sidecars.set(path, read.sidecar, stats, read.bytes)
    return read.sidecar
  }
}
