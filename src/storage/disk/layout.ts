/**
 * Where the disk driver keeps things under its root, and the file-system steps it repeats:
 *
 *   STORAGE_DIR/<path>                             the files themselves, readable as-is by an operator
 *   STORAGE_DIR/.filestorage/inodes/<shard>/       each file's attributes, by inode (file-records.ts)
 *   STORAGE_DIR/.filestorage/instances/            the processes using the store (instances.ts)
 *   STORAGE_DIR/.filestorage/locks/                locks across those processes (store-locks.ts)
 *   STORAGE_DIR/.filestorage/tmp/<instance>/       uploads in flight, renamed into place when complete
 *   STORAGE_DIR/.filestorage/trash/<instance>/     what is being deleted (renamed here first, so it vanishes at once)
 *   STORAGE_DIR/.filestorage/uploads/<id>/         part uploads and tus uploads (uploads.ts)
 *   STORAGE_DIR/.filestorage/records/<namespace>/  records shared by the processes (shared-records.ts: the quota ledger)
 *   STORAGE_DIR/.filestorage/events/               the events of changes, to deliver (event-log.ts)
 *
 * Temporary files and trash are kept per instance, so what a dead process left is known to be
 * abandoned the moment it is known dead, not after some hours.
 */
import { randomUUID } from 'node:crypto'
import { closeSync, createWriteStream, fstatSync, open, openSync, readlinkSync, type Stats, write, writeFile as writeFileAt, writeFileSync, type WriteStream, writev } from 'node:fs'
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'
import { promisify } from 'node:util'
import { STREAM_BUFFER_BYTES } from '../digest.js'
import { insufficientStorage, StorageError } from '../errors.js'
import { parentOf, RESERVED_NAME, ROOT } from '../paths.js'
import { openDescriptor, realpath, rename, stat, unlink } from './fs-calls.js'

export class DiskLayout {
  readonly internal: string
  readonly inodesDir: string
  readonly instancesDir: string
  readonly locksDir: string
  readonly tmpRoot: string
  readonly trashRoot: string
  readonly uploadsDir: string
  /** The events of the store's changes (event-log.ts). */
  readonly eventsDir: string
  /** Its mtime says when the sweeper last walked every record (record-walks.ts). */
  readonly recordWalksFile: string
  /** Where an earlier version kept sidecars by path; migrated at start-up (legacy-sidecars.ts). */
  readonly legacyMetaDir: string
  #instance: string | undefined
  /** Whether `/proc/self/fd/<fd>` names the file open as `fd` here (Linux). */
  readonly #namesDescriptors: boolean

  /** `root` must already be the real (symlink-free) absolute path; see `DiskLayout.open`. */
  private constructor(readonly root: string) {
    this.internal = join(root, RESERVED_NAME)
    this.inodesDir = join(this.internal, 'inodes')
    this.instancesDir = join(this.internal, 'instances')
    this.locksDir = join(this.internal, 'locks')
    this.tmpRoot = join(this.internal, 'tmp')
    this.trashRoot = join(this.internal, 'trash')
    this.uploadsDir = join(this.internal, 'uploads')
    this.eventsDir = join(this.internal, 'events')
    this.recordWalksFile = join(this.internal, 'records-walked')
    this.legacyMetaDir = join(this.internal, 'meta')
    this.#namesDescriptors = namesDescriptors(root)
  }

  static async open(dir: string): Promise<DiskLayout> {
    await mkdir(dir, { recursive: true })
    const layout = new DiskLayout(await realpath(dir))
    for (const d of [layout.inodesDir, layout.instancesDir, layout.locksDir, layout.tmpRoot, layout.trashRoot, layout.uploadsDir]) {
      await mkdir(d, { recursive: true })
    }
    return layout
  }

  /** Where records are renamed after a restore (file-records.ts `rekey`); present while one is unfinished. */
  get rekeyDir(): string {
    return join(this.internal, 'rekey')
  }

  /**
   * Whether this folder is a copy of the store restored elsewhere (or the same folder put back from
   * a backup): its reserved folder has another inode than it had when the store last opened it.
   * Also true while a rekey after one is unfinished. `markOpened` records the inode once handled.
   */
  async isRestoredCopy(): Promise<boolean> {
    if (await stat(this.rekeyDir).then(() => true, () => false)) return true
    const recorded = await readFile(join(this.internal, 'store.json'), 'utf8')
      .then((text) => (JSON.parse(text) as { ino?: number }).ino)
      .catch(() => undefined)
    if (recorded === undefined) {
      await this.markOpened() // a new store, or one from before this marker: nothing to do
      return false
    }
    return recorded !== (await stat(this.internal)).ino
  }

  async markOpened(): Promise<void> {
    // A draft of its own: processes opening a new store together each write the same marker, and
    // a shared draft name let one rename away the other's draft (ENOENT, a failed start).
    const draft = join(this.internal, `store.json.${randomUUID()}.new`)
    try {
      await writeFile(draft, JSON.stringify({ v: 1, ino: (await stat(this.internal)).ino }))
      await rename(draft, join(this.internal, 'store.json'))
    } catch (e) {
      await rm(draft, { force: true })
      throw e
    }
  }

  /**
   * Whether the file system keeps a birth time that a rename leaves alone (ext4, xfs, btrfs, tmpfs
   * do; elsewhere Node may report 0, or the change time, which a rename changes).
   */
  async keepsBirthTimes(): Promise<boolean> {
    const probe = join(this.tmpDir, 'birth-probe')
    await writeFile(probe, '')
    try {
      const before = await stat(probe)
      await new Promise((r) => setTimeout(r, 2))
      await rename(probe, `${probe}.moved`)
      const after = await stat(`${probe}.moved`)
      return before.birthtimeMs > 0 && after.birthtimeMs === before.birthtimeMs
    } finally {
      await rm(probe, { force: true })
      await rm(`${probe}.moved`, { force: true })
    }
  }

  /** Makes this process's own temporary and trash folders, once it is registered as `instance`. */
  async useInstance(instance: string): Promise<void> {
    await mkdir(join(this.tmpRoot, instance), { recursive: true })
    await mkdir(join(this.trashRoot, instance), { recursive: true })
    this.#instance = instance
  }

  get instance(): string {
    if (this.#instance === undefined) throw new Error('the layout has no instance yet')
    return this.#instance
  }

  /** This process's temporary folder. */
  get tmpDir(): string {
    return join(this.tmpRoot, this.instance)
  }

  data(path: string): string {
    return path === ROOT ? this.root : join(this.root, path)
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
        if (!this.isInsideRoot(real) || this.#isReserved(real)) {
          throw new StorageError('forbidden', 'the path leads outside the store')
        }
        return
      } catch (e) {
        if (!isErrno(e, 'ENOENT', 'ENOTDIR') || abs === this.root) throw e
        abs = dirname(abs)
      }
    }
  }

  /**
   * `confine` for a file already open as `fd` (opened at `path`). Where Linux names the file an open
   * descriptor refers to (`/proc/self/fd`), that very file is checked, at once: no resolving of the
   * path again through the thread pool, and no window between the check and the open. Anything
   * else (no /proc, a name outside or reserved, a file deleted meanwhile) is decided by `confine`.
   */
  async confineOpened(fd: number, path: string): Promise<void> {
    if (this.#namesDescriptors) {
      let real: string | undefined
      try {
        real = readlinkSync(`/proc/self/fd/${fd}`)
      } catch {
        // no answer: resolve the path instead
      }
      if (real !== undefined && this.isInsideRoot(real) && !this.#isReserved(real) && !real.endsWith(' (deleted)')) return
    }
    await this.confine(path)
  }

  #isReserved(real: string): boolean {
    return real === this.internal || real.startsWith(this.internal + sep)
  }

  /** A fresh name in this process's trash folder. */
  trashFile(): string {
    return join(this.trashRoot, this.instance, randomUUID())
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
    }
  }
}

/** Whether `/proc/self/fd` names what a descriptor refers to: probed once with the root folder. */
function namesDescriptors(root: string): boolean {
  let fd: number | undefined
  try {
    fd = openSync(root, 'r')
    return readlinkSync(`/proc/self/fd/${fd}`) === root
  } catch {
    return false
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/**
 * Writes `data` whole to the temporary file `tmp`, then renames it to `to`: a reader sees the old
 * file or the new one, never half of one. On any failure (a full disk fails the write after the
 * open succeeded: it needs an inode, no block) the temporary file is removed before the error is
 * thrown: it belongs to a live process, which the sweeper leaves alone.
 */
export async function writeThenRename(tmp: string, to: string, data: string): Promise<void> {
  try {
    await writeFile(tmp, data, { flag: 'wx' })
    await rename(tmp, to)
  } catch (e) {
    await unlink(tmp).catch(() => {})
    throw e
  }
}

/**
 * Writes `text` as the whole content of the file at `path` (created or emptied). Only the open goes
 * through the thread pool: a record's few hundred bytes go to the page cache at once, and closing
 * does not wait for the disk, so a round trip for each would cost more than the calls.
 */
export async function writeNewFile(path: string, text: string): Promise<void> {
  const fd = await openDescriptor(path, 'w')
  try {
    writeFileSync(fd, text)
  } finally {
    closeSync(fd)
  }
}

/** fs.writeFile on an open descriptor: written whole, in as many write(2) as it takes. */
const writeWhole = promisify(writeFileAt)

/**
 * A new file at `tmp` holding `data`, written with one call (two thread-pool round trips: the open
 * and the write), and its stats as it was closed. For the few KiB of a small upload, the stream
 * that `tmpFileWriter` makes, and the pipeline around it, cost more than the write itself.
 */
export async function writeSmallFile(tmp: string, data: Uint8Array): Promise<Stats> {
  const fd = await openDescriptor(tmp, 'wx')
  try {
    await writeWhole(fd, data)
    return fstatSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * A new temporary file to stream an upload into. Its buffer holds several chunks, which it writes
 * with one writev while the next ones arrive. It is closed at once rather than through the thread
 * pool (closing does not wait for the disk; a round trip costs more than the call). `onClose` gets
 * the file's stats as it is closed, complete: what a stat() of it would answer, without one.
 */
export const tmpFileWriter = (tmp: string, onClose?: (stats: Stats) => void): WriteStream =>
  createWriteStream(tmp, {
    flags: 'wx',
    highWaterMark: STREAM_BUFFER_BYTES,
    fs: {
      open,
      write,
      writev,
      close(fd: number, callback: (error: NodeJS.ErrnoException | null) => void) {
        if (onClose) {
          try {
            onClose(fstatSync(fd))
          } catch {
            // no stats: the caller stats the file itself
          }
        }
        closeAtOnce(fd, callback)
      },
    },
  })

function closeAtOnce(fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void {
  let error: NodeJS.ErrnoException | null = null
  try {
    closeSync(fd)
  } catch (e) {
    error = e as NodeJS.ErrnoException
  }
  process.nextTick(callback, error) // asynchronous, as fs.close calls back
}

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
      return insufficientStorage(e)
    case 'EROFS':
      return new StorageError('store_unavailable', 'the store is read-only')
    case 'ELOOP':
      return new StorageError('forbidden', 'the path loops through symbolic links')
    default:
      return e
  }
}
