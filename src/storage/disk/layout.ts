/**
 * Where the disk driver keeps things under its root, and the file-system steps it repeats:
 *
 *   STORAGE_DIR/<path>                      the files themselves, readable as-is by an operator
 *   STORAGE_DIR/.filestorage/meta/<path>    a JSON sidecar per file (content type, sha256, metadata)
 *   STORAGE_DIR/.filestorage/tmp/           uploads in flight, renamed into place when complete
 *   STORAGE_DIR/.filestorage/uploads/<id>/  parts of part uploads
 *   STORAGE_DIR/.filestorage/trash/         folders being deleted (renamed here first, so they vanish at once)
 *
 * The meta tree mirrors the data tree exactly, so a folder's sidecars move with one rename.
 */
import { randomUUID } from 'node:crypto'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, realpath, rename, rm, rmdir } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'
import { STREAM_BUFFER_BYTES } from '../digest.js'
import { StorageError } from '../errors.js'
import { parentOf, RESERVED_NAME, ROOT } from '../paths.js'

export class DiskLayout {
  readonly internal: string
  readonly tmpDir: string
  readonly uploadsDir: string
  readonly trashDir: string
  readonly metaRoot: string

  /** `root` must already be the real (symlink-free) absolute path; see `DiskLayout.open`. */
  private constructor(readonly root: string) {
    this.internal = join(root, RESERVED_NAME)
    this.metaRoot = join(this.internal, 'meta')
    this.tmpDir = join(this.internal, 'tmp')
    this.uploadsDir = join(this.internal, 'uploads')
    this.trashDir = join(this.internal, 'trash')
  }

  static async open(dir: string): Promise<DiskLayout> {
    await mkdir(dir, { recursive: true })
    const layout = new DiskLayout(await realpath(dir))
    for (const d of [layout.metaRoot, layout.tmpDir, layout.uploadsDir, layout.trashDir]) {
      await mkdir(d, { recursive: true })
    }
    return layout
  }

  data(path: string): string {
    return path === ROOT ? this.root : join(this.root, path)
  }

  meta(path: string): string {
    return path === ROOT ? this.metaRoot : join(this.metaRoot, path)
  }

  tmpFile(): string {
    return join(this.tmpDir, randomUUID())
  }

  isInsideRoot(real: string): boolean {
    return real === this.root || real.startsWith(this.root + sep)
  }

  /**
   * Refuses a path whose existing part resolves (through symbolic links) outside the root, or into
   * the reserved folder. The deepest existing ancestor is resolved, so this holds for paths about to
   * be created too.
   */
  async confine(path: string): Promise<void> {
    let abs = this.data(path)
    for (;;) {
      try {
        const real = await realpath(abs)
        const reserved = real === this.internal || real.startsWith(this.internal + sep)
        if (!this.isInsideRoot(real) || reserved) {
          throw new StorageError('forbidden', 'the path leads outside the store')
        }
        return
      } catch (e) {
        if (!isErrno(e, 'ENOENT', 'ENOTDIR') || abs === this.root) throw e
        abs = dirname(abs)
      }
    }
  }

  /** Moves a file or folder out of sight at once, then removes it. */
  async discard(abs: string): Promise<void> {
    const trash = join(this.trashDir, randomUUID())
    try {
      await rename(abs, trash)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return
      throw e
    }
    await rm(trash, { recursive: true, force: true })
  }

  /**
   * Removes the now-empty folders above a removed entry, up to (not including) the root, so folders
   * exist exactly while they hold something, as in the MongoDB store.
   */
  async pruneEmptyParents(path: string): Promise<void> {
    for (let p = parentOf(path); p !== ROOT; p = parentOf(p)) {
      try {
        await rmdir(this.data(p))
      } catch {
        return // not empty, gone already, or not ours to remove: stop there
      }
      await rmdir(this.meta(p)).catch(() => {})
    }
  }
}

/**
 * A new temporary file to stream an upload into. Its buffer holds several chunks, which it writes
 * with one writev while the next ones arrive.
 */
export const tmpFileWriter = (tmp: string): WriteStream =>
  createWriteStream(tmp, { flags: 'wx', highWaterMark: STREAM_BUFFER_BYTES })

/**
 * `place(from, to)` (a rename, or a link) into a folder that may not exist yet. The first try makes
 * no folder: most of the time it is there already; every later one makes it first. A failure with
 * one of the codes `retryOn` is tried again, five tries in all, after `beforeRetry` (which may clear
 * the way); any other failure is thrown as it is.
 */
export async function placeMakingFolders(
  from: string,
  to: string,
  options: {
    place?: (from: string, to: string) => Promise<void>
    retryOn: string[]
    beforeRetry?: (attempt: number) => Promise<void>
  },
): Promise<void> {
  const place = options.place ?? rename
  for (let attempt = 0; ; attempt++) {
    try {
      if (attempt > 0) await mkdir(dirname(to), { recursive: true })
      await place(from, to)
      return
    } catch (e) {
      if (attempt >= 4 || !isErrno(e, ...options.retryOn)) throw e
      await options.beforeRetry?.(attempt)
    }
  }
}

export function isErrno(e: unknown, ...codes: string[]): e is NodeJS.ErrnoException {
  return e instanceof Error && codes.includes((e as NodeJS.ErrnoException).code ?? '')
}

/** Maps a file-system error to a storage error; anything unexpected is rethrown as it is. */
export function fromFsError(e: unknown, path: string): unknown {
  if (e instanceof StorageError || !(e instanceof Error)) return e
  switch ((e as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return new StorageError('not_found', `"${path}" does not exist`)
    case 'EEXIST':
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ENOTEMPTY':
      return new StorageError('already_exists', `something is in the way at "${path}"`)
    case 'EACCES':
    case 'EPERM':
      return new StorageError('forbidden', `the store may not access "${path}"`)
    case 'ENAMETOOLONG':
      return new StorageError('invalid_path', 'the path is too long for this file system')
    case 'ENOSPC':
    case 'EDQUOT':
      return new StorageError('store_unavailable', 'the store is out of space')
    case 'EROFS':
      return new StorageError('store_unavailable', 'the store is read-only')
    case 'ELOOP':
      return new StorageError('forbidden', 'the path loops through symbolic links')
    default:
      return e
  }
}
