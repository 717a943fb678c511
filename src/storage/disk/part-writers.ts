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
import { dropClaim, type PartFile, partName, releasePart, removePartRecord, writePartRecord } from './part-files.js'

/** What the writers need of the staging they write into (staging.ts). */
export interface PartPlace {
  dir: string
  uploadId: string
  /** Runs `fn` under the upload's lock. */
  locked<T>(fn: () => Promise<T>): Promise<T>
  parts(): Promise<PartFile[]>
  /** A fresh temporary file name of this process. */
  tmpFile(): string
  /** Keeps (or forgets) the running sha256 of the part an append left. */
  remember(info: PartInfo, hash: Hash): void
  forget(): void
}

abstract class DiskPartWriter implements PartWriter {
  #closed = false

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
        placed = await this.place_(info, hash)
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
  protected abstract place_(info: PartInfo, hash: Hash): Promise<boolean>
  /** Takes a placed part back (under the lock). */
  protected abstract takeBack(info: PartInfo): Promise<void>
  /** Deletes what was written and not placed. */
  protected abstract drop(): Promise<void>

  /** Records the bytes of the claimed file as `info`, then gives the part back under its own name. */
  protected async record(info: PartInfo, hash: Hash): Promise<void> {
    await writePartRecord(this.place.dir, info, (await stat(this.file)).ino, this.place.tmpFile())
    failpoint('disk.append.recorded')
    await releasePart(this.place.dir, info.part, this.file, info.size)
    this.place.remember(info, hash)
  }

  /** Removes part `part` if it is still the inode it was placed as. */
  protected async removePlaced(part: number, ino: number): Promise<void> {
    const own = join(this.place.dir, partName(part))
    if ((await lstat(own).catch(() => null))?.ino !== ino) return
    await removePartRecord(this.place.dir, part)
    await unlink(own).catch(() => {})
    this.place.forget()
  }
}

/** A part sent by number: a temporary file, renamed over the part. */
export class ReplacingPart extends DiskPartWriter {
  #ino = 0

  static create(place: PartPlace, part: number): ReplacingPart {
    const tmp = place.tmpFile()
    return new ReplacingPart(place, part, 0, tmp, FileSink.create(tmp))
  }

  protected async place_(info: PartInfo): Promise<boolean> {
    this.#ino = (await stat(this.file)).ino
    // Bytes first, then the record naming them: until the record is written the part does not
    // count, so a crash in between never pairs the new bytes with the old record.
    await rename(this.file, join(this.place.dir, partName(info.part)))
    await writePartRecord(this.place.dir, info, this.#ino, this.place.tmpFile())
    return true
  }

  protected takeBack(info: PartInfo): Promise<void> {
    return this.removePlaced(info.part, this.#ino)
  }

  protected async drop(): Promise<void> {
    await rm(this.file, { force: true })
  }
}

/** A new part, one past the highest, appended into a claim of it. */
export class AppendedPart extends DiskPartWriter {
  #ino = 0

  static create(place: PartPlace, part: number, claimed: string): AppendedPart {
    return new AppendedPart(place, part, 0, claimed, FileSink.continuing(claimed, 0))
  }

  protected async place_(info: PartInfo, hash: Hash): Promise<boolean> {
    // Still the next part: no other append took that number meanwhile.
    if (((await this.place.parts()).at(-1)?.info.part ?? 0) !== info.part - 1) return false
    this.#ino = (await stat(this.file)).ino
    await this.record(info, hash)
    return true
  }

  protected takeBack(info: PartInfo): Promise<void> {
    return this.removePlaced(info.part, this.#ino)
  }

  protected drop(): Promise<void> {
    return dropClaim(this.file)
  }
}

/** The part the previous append left, claimed and extended in place. */
export class ExtendedPart extends DiskPartWriter {
  static create(place: PartPlace, last: PartInfo, claimed: string, hash: Hash): ExtendedPart {
    return new ExtendedPart(place, last, claimed, hash)
  }

  private constructor(
    place: PartPlace,
    private readonly last: PartInfo,
    claimed: string,
    hash: Hash,
  ) {
    super(place, last.part, last.size, claimed, FileSink.continuing(claimed, last.size), hash)
  }

  protected async place_(info: PartInfo, hash: Hash): Promise<boolean> {
    // Still the part claimed, with the same record: not sent again (putPart) meanwhile.
    if (!isClaimed((await this.place.parts()).at(-1), this.last, this.file)) return false
    await this.record(info, hash)
    return true
  }

  protected async takeBack(): Promise<void> {
    const own = join(this.place.dir, partName(this.last.part))
    await writePartRecord(this.place.dir, this.last, (await stat(own)).ino, this.place.tmpFile())
    await truncate(own, this.last.size)
    this.place.forget()
  }

  protected drop(): Promise<void> {
    return releasePart(this.place.dir, this.last.part, this.file, this.last.size)
  }
}

/** Whether `part` is `expected`, read from the file `claimed`. */
export const isClaimed = (part: PartFile | undefined, expected: PartInfo, claimed: string) =>
  part?.file === claimed &&
  part.info.part === expected.part &&
  part.info.size === expected.size &&
  part.info.sha256 === expected.sha256
