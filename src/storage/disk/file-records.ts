/**
 * The attributes of a file on disk (content type, sha256, metadata, created), which a plain file
 * cannot carry, kept by inode rather than by path:
 *
 *   .filestorage/inodes/<shard>/<ino>        a hard link to the file (the "holder")
 *   .filestorage/inodes/<shard>/<ino>.json   its record
 *
 * Why by inode: a writer records the attributes of its new file before the file gets its name,
 * and the rename that gives it the name is the one atomic step that makes bytes and attributes
 * visible together. Every write makes a new inode; a move renames the file and its inode, with its
 * record, goes along. So no reader, second writer, second process or crash can ever pair bytes with
 * another version's attributes, and readers never need to write anything.
 *
 * The holder pins the inode: while it exists the inode number cannot be reused, so a record always
 * describes the one file it was written for. Its link count tells whether the file still has a
 * name in the store (2 or more) or not any more (1: replaced, deleted, or never committed), which
 * lets the sweeper reclaim records without walking the data tree. Order makes this hold at every
 * instant: a holder is made before its record, and a record removed before its holder.
 *
 * A record also holds the file's size and mtime: a file edited in place by hand no longer matches
 * them, and is described from its bytes again (keeping its content type and metadata).
 */
import { closeSync, fstatSync, type Stats } from 'node:fs'
import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { link, lstat, openDescriptor, rename, unlink } from './fs-calls.js'
import { fileRange } from './file-stream.js'
import { isErrno, writeNewFile, writeThenRename } from './layout.js'

export interface FileRecord {
  v: 2
  sha256: string
  size: number
  mtimeMs: number
  /** The file's birth time, where the file system keeps one that a rename does not change. */
  birthtimeMs?: number
  contentType: string
  metadata: Record<string, unknown>
  created: string
  /** The revision its writer gave it (a completed upload's, see driver.ts `CommitTarget.revision`). */
  revision?: string
}

/** Whether `record` was written for this very file (see `isSameFile`) with the bytes it has now. */
export const recordMatches = (record: FileRecord, stats: Stats): boolean =>
  record.size === stats.size && record.mtimeMs === stats.mtimeMs && isSameFile(record, stats)

/**
 * Whether `record` was written for this file, perhaps edited in place since, rather than for another
 * file that has its inode number now (a folder restored from a copy). Known only where the file
 * system keeps birth times; elsewhere the inode number is taken for the file.
 */
export const isSameFile = (record: FileRecord, stats: Stats): boolean =>
  record.birthtimeMs === undefined || record.birthtimeMs === stats.birthtimeMs

const SHARDS = 4096

export class FileRecords {
  readonly #madeShards = new Set<number>()

  constructor(
    private readonly dir: string,
    /** A fresh temporary file name private to this process, for staging a record. */
    private readonly tmpFile: () => string,
  ) {}

  holder(ino: number): string {
    return join(this.#shard(ino), String(ino))
  }

  #record(ino: number): string {
    return join(this.#shard(ino), `${ino}.json`)
  }

  /**
   * Gives `file` (a file only the caller can reach: a temporary file, a claimed part) its record: the
   * holder first, then the record. Nobody looks for the record of an inode that has no name yet, so
   * it is written in place; `visible` says the inode has one (adoption), and the record is then
   * staged and renamed in, never seen half written. Replaces a record the inode already has.
   * Returns the record's size in bytes.
   */
  async attach(file: string, stats: Stats, record: FileRecord, visible = false): Promise<number> {
    const holder = this.holder(stats.ino)
    try {
      await this.#link(file, holder, stats.ino)
    } catch (e) {
      // A holder of this number can only be this very inode: a holder pins the number it is named by.
      if (!isErrno(e, 'EEXIST')) throw e
    }
    const text = JSON.stringify(record)
    if (!visible) {
      await writeNewFile(this.#record(stats.ino), text)
      return text.length
    }
    await writeThenRename(this.tmpFile(), this.#record(stats.ino), text)
    return text.length
  }

  /** link(), making the shard folder the first time one is needed (not on every write). */
  async #link(file: string, holder: string, ino: number): Promise<void> {
    try {
      await link(file, holder)
    } catch (e) {
      if (!isErrno(e, 'ENOENT') || this.#madeShards.has(ino % SHARDS)) throw e
      await this.#makeShard(ino)
      await link(file, holder)
    }
  }

  /**
   * `attach` for a file that has a name others can change (a file put there by hand, being adopted):
   * it is first pinned under a private name and checked to be the inode `stats` describes, so the
   * holder made can only be that inode. False when the path holds another file by then.
   */
  async adopt(path: string, stats: Stats, record: FileRecord): Promise<boolean> {
    const pin = this.tmpFile()
    await link(path, pin)
    try {
      const pinned = await lstat(pin)
      if (pinned.ino !== stats.ino || pinned.size !== stats.size || pinned.mtimeMs !== stats.mtimeMs) return false
      await this.attach(pin, pinned, record, true)
      return true
    } finally {
      await unlink(pin).catch(() => {})
    }
  }

  /** The record of inode `ino`, or null when it has none (a file the store did not write). */
  async read(ino: number): Promise<{ record: FileRecord; bytes: number } | null> {
    let fd: number
    try {
      fd = await openDescriptor(this.#record(ino), 'r')
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null
      throw e
    }
    // Two thread-pool round trips (the open, the read) instead of readFile's four: the size comes
    // from the open descriptor at once, and fileRange closes it at once.
    let size: number
    try {
      size = fstatSync(fd).size
    } catch (e) {
      closeSync(fd)
      throw e
    }
    // One chunk as large as the file: its bytes, never a stream.
    const bytes = (await fileRange(fd, 0, size - 1, Math.max(size, 1)).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== undefined) throw e
      return null // it became shorter as it was read (cut by hand): described from the bytes, as a torn one is
    })) as Uint8Array | null
    if (!bytes) return null
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
    try {
      const record = JSON.parse(text) as FileRecord
      return record.v === 2 ? { record, bytes: text.length } : null
    } catch {
      return null // cut short by a crash of the file system itself: described from the bytes instead
    }
  }

  /**
   * Forgets inode `ino` if it no longer has a name in the store (its holder is its last link): the
   * record, then the holder. Called by whoever just took its name away (a replace, a delete); a
   * crash in between is made good by `sweep`.
   */
  async release(ino: number): Promise<boolean> {
    const holder = this.holder(ino)
    const stats = await lstat(holder).catch(() => null)
    if (!stats || stats.nlink !== 1) return false
    await unlink(this.#record(ino)).catch(() => {})
    await unlink(holder).catch(() => {})
    return true
  }

  /** Reclaims records and holders of files that have no name in the store any more (when: record-walks.ts). */
  async sweep(): Promise<number> {
    let removed = 0
    for (const shard of await readdir(this.dir).catch(() => [] as string[])) {
      const dir = join(this.dir, shard)
      const names = await readdir(dir).catch(() => [] as string[])
      const holders = new Set(names.filter((n) => !n.endsWith('.json')))
      for (const name of names) {
        if (name.endsWith('.json')) {
          // A record without its holder: left by a crash between removing the two. Never one in
          // flight, as a holder is always made before its record; looked up again, as a listing
          // made while entries are added may show the record and not its holder.
          const ino = name.slice(0, -'.json'.length)
          if (!holders.has(ino) && !(await lstat(join(dir, ino)).then(() => true, () => false))) {
            removed += await unlink(join(dir, name)).then(() => 1, () => 0)
          }
        } else if (await this.release(Number(name))) {
          removed++
        }
      }
    }
    return removed
  }

  /**
   * After the store folder was restored from a copy that kept hard links (`rsync -aH`, `tar`), every
   * file has a new inode number, and so has its holder (still a link to it), but the holders and
   * records are named after the old numbers. This renames them after the numbers they have now,
   * in two steps through `staging` (a new number may be another holder's old name), so a crash part
   * way is finished by the next call. Returns how many were renamed.
   */
  async rekey(staging: string): Promise<number> {
    await mkdir(staging, { recursive: true })
    for (const shard of await readdir(this.dir)) {
      const dir = join(this.dir, shard)
      for (const name of await readdir(dir)) {
        if (name.endsWith('.json')) continue
        const { ino } = await lstat(join(dir, name))
        if (String(ino) === name) continue
        await rename(join(dir, `${name}.json`), join(staging, `${ino}.json`)).catch(() => {})
        await rename(join(dir, name), join(staging, String(ino)))
      }
    }
    let renamed = 0
    for (const name of await readdir(staging)) {
      if (name.endsWith('.json')) continue
      const ino = Number(name)
      await this.#makeShard(ino)
      try {
        await link(join(staging, name), this.holder(ino))
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e // else: already under its right name
      }
      await this.#rekeyRecord(join(staging, `${name}.json`), ino)
      await unlink(join(staging, name))
      renamed++
    }
    await rm(staging, { recursive: true, force: true })
    return renamed
  }

  /** Moves a staged record to inode `ino`, with the birth time the file has now (it was copied). */
  async #rekeyRecord(staged: string, ino: number): Promise<void> {
    const record = await readFile(staged, 'utf8').then((t) => JSON.parse(t) as FileRecord, () => null)
    if (!record) return
    if (record.birthtimeMs !== undefined) record.birthtimeMs = (await lstat(this.holder(ino))).birthtimeMs
    await writeThenRename(this.tmpFile(), this.#record(ino), JSON.stringify(record))
    await unlink(staged)
  }

  async #makeShard(ino: number): Promise<void> {
    const shard = ino % SHARDS
    if (this.#madeShards.has(shard)) return
    await mkdir(this.#shard(ino), { recursive: true })
    this.#madeShards.add(shard)
  }

  #shard(ino: number): string {
    return join(this.dir, (ino % SHARDS).toString(16).padStart(3, '0'))
  }
}
