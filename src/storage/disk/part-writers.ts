/**
 * Writers of parts on disk (driver.ts `PartWriter`), one per way a part is written:
 *
 * - a part sent by number streams into a temporary file of this process, and replaces the part;
 * - an append writes into a part claimed in the upload's folder (part-files.ts), never into a
 *   temporary file elsewhere, so the bytes that reached the disk are there after any crash, for
 *   `DiskStaging.recover` to keep: a new part (`part-<n>.w.<claim>`, created exclusively), or the
 *   part the previous append left, extended in place when this process still has its running sha256
 *   (append-tails.ts).
 *
 * Every commit runs under the upload's lock (across processes), the engine's checks inside it: the
 * check, the placement and the record that makes the part count happen as one step for every other
 * writer of the upload. The record is written before the part is given back under its own name, so
 * a crash in between keeps the bytes the record counts.
 */
import type { Hash } from 'node:crypto'
import { lstat, rename, rm, stat, truncate, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { CommitChecks, PartWriter } from '../driver.js'
import { failpoint } from '../failpoints.js'
import type { PartInfo } from '../types.js'
import { FileSink } from './file-sink.js'
import { dropClaim, isRecordOf, partName, releasePart, removePartRecord, writePartRecord } from './part-files.js'

/** What the writers need of the staging they write into (staging.ts). */
export interface PartPlace {
  dir: string
  /** Runs `fn` under the upload's lock. */
  locked<T>(fn: () => Promise<T>): Promise<T>
  /** A fresh temporary file name of this process. */
  tmpFile(): string
  /** Keeps (or forgets) the running sha256 of the part an append left. */
  remember(info: PartInfo, hash: Hash): void
  forget(): void
}

abstract class DiskPartWriter implements PartWriter {
  #closed = false
  /** The inode of the bytes, once placed. */
  protected ino = 0

  constructor(
    protected readonly place: PartPlace,
    readonly part: number,
    readonly base: number,
    /** Where the bytes go: a temporary file, or a claimed part. */
    protected readonly file: string,
    private readonly sink: FileSink,
    readonly hash?: Hash,
  ) {}

  write(chunk: Uint8Array): Promise<void> {
    return this.sink.write(chunk)
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.sink.close()
  }

  async commit(info: PartInfo, hash: Hash, checks: CommitChecks): Promise<boolean> {
    let placed = false
    try {
      return await this.place.locked(async () => {
        await checks.before()
        placed = await this.placeAs(info, hash)
        if (!placed) return false
        try {
          await checks.after()
        } catch (e) {
          await this.takeBack(info)
          throw e
        }
        return true
      })
    } finally {
      if (!placed) await this.discard()
    }
  }

  async discard(): Promise<void> {
    if (!this.#closed) await this.close().catch(() => {})
    await this.drop()
  }

  /** Places the bytes as part `info` (under the lock); false when the part is not free any more. */
  protected abstract placeAs(info: PartInfo, hash: Hash): Promise<boolean>
  /** Deletes what was written and not placed. */
  protected abstract drop(): Promise<void>

  /** Takes a placed part back (under the lock): removes it, if it is still the inode it was placed as. */
  protected async takeBack(info: PartInfo): Promise<void> {
    const own = join(this.place.dir, partName(info.part))
    if ((await lstat(own).catch(() => null))?.ino !== this.ino) return
    await removePartRecord(this.place.dir, info.part)
    await unlink(own).catch(() => {})
    this.place.forget()
  }
}

/** A part sent by number: a temporary file, renamed over the part. */
export class ReplacingPart extends DiskPartWriter {
  constructor(place: PartPlace, part: number, tmp = place.tmpFile()) {
    super(place, part, 0, tmp, FileSink.create(tmp))
  }

  protected async placeAs(info: PartInfo): Promise<boolean> {
    this.ino = (await stat(this.file)).ino
    // Bytes first, then the record naming them: until the record is written the part does not
    // count, so a crash in between never pairs the new bytes with the old record.
    await rename(this.file, join(this.place.dir, partName(info.part)))
    await writePartRecord(this.place.dir, info, this.ino, this.place.tmpFile())
    return true
  }

  protected async drop(): Promise<void> {
    await rm(this.file, { force: true })
  }
}

/**
 * An append, written into `claimed`: a new part one past the highest, or `last`, the part the
 * previous append left, extended in place (with `hash`, its running sha256).
 */
export class AppendingPart extends DiskPartWriter {
  constructor(
    place: PartPlace,
    part: number,
    claimed: string,
    private readonly last?: PartInfo,
    hash?: Hash,
  ) {
    super(place, part, last?.size ?? 0, claimed, FileSink.continuing(claimed, last?.size ?? 0), hash)
  }

  protected async placeAs(info: PartInfo, hash: Hash): Promise<boolean> {
    this.ino = (await stat(this.file)).ino
    // Still the part claimed, with the same record (not sent again meanwhile); or a number no other
    // append took. (The engine's check of the offset, under the same lock, did the rest.)
    if (!(await isRecordOf(this.place.dir, info.part, this.last ?? null, this.ino))) return false
    await writePartRecord(this.place.dir, info, this.ino, this.place.tmpFile())
    failpoint('disk.append.recorded')
    await releasePart(this.place.dir, info.part, this.file, info.size)
    this.place.remember(info, hash)
    return true
  }

  /** A part it extended goes back to what it was. */
  protected override async takeBack(info: PartInfo): Promise<void> {
    if (!this.last) return super.takeBack(info)
    await writePartRecord(this.place.dir, this.last, this.ino, this.place.tmpFile())
    await truncate(join(this.place.dir, partName(this.last.part)), this.last.size)
    this.place.forget()
  }

  protected drop(): Promise<void> {
    return this.last ? releasePart(this.place.dir, this.last.part, this.file, this.last.size) : dropClaim(this.file)
  }
}
