/**
 * The disk store's staging primitive (driver.ts `UploadStaging`). Each upload is a folder under
 * `.filestorage/uploads/<id>/`:
 *
 *   session.json, complete.json  its record (upload-records.ts)
 *   part-<n>, part-<n>.json      the parts and their records (part-files.ts)
 *   part-<n>.w.<claim>           a part an append is writing (part-files.ts, part-writers.ts)
 *   assembled.<instance>.<id>    the parts of a completion, concatenated
 *
 * A claim whose writer died is recovered by the next request for the upload (or the sweeper), and
 * keeps those bytes (re-hashed) when the append had no checksum and the upload has not moved on
 * since. Completing commits the single part itself (a tus upload sent in any number of appends to
 * one process), or the parts concatenated into `assembled.*`, through the store's commit protocol
 * (disk-driver.ts); the file leaves the folder exactly when it is committed, which is how a
 * completion that died is known to have committed even if its file was replaced since. Once
 * completed, the folder keeps only its record until the upload expires. The upload's lock (`upload:<id>`,
 * store-locks.ts) is `exclusive`: a completion whose process died lets go at once.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir, rename, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { DigestStream } from '../digest.js'
import type { CommitOptions, CompletionJournal, FileToBe, PartWriter, PreparedFile, UploadStaging } from '../driver.js'
import type { PartInfo, PutResult, StoredFile } from '../types.js'
import { receivedBytes } from '../uploads/rules.js'
import { AppendTails } from './append-tails.js'
import type { CommitRequest } from './disk-driver.js'
import type { Instances } from './instances.js'
import { type DiskLayout, tmpFileWriter } from './layout.js'
import { type Claim, claimName, claimPart, dropClaim, isRecordOf, newClaim, partName, type PartFile, readPartFiles, releasePart, writePartRecord } from './part-files.js'
import { AppendingPart, type PartPlace, ReplacingPart } from './part-writers.js'
import type { StoreLocks } from './store-locks.js'
import { COMPLETION, DiskUploadRecords, SESSION } from './upload-records.js'

/** What the staging needs of the store's own file operations (disk-driver.ts). */
export interface DiskFiles {
  commit(path: string, request: CommitRequest): Promise<PutResult>
  lookupRevision(path: string, revision: string): Promise<StoredFile | null>
  /** Removes a folder at once, releasing the records its files were given. */
  discardTree(abs: string): Promise<void>
  /** Removes a file that a commit may have given a record without giving it a name, and that record. */
  removeUncommitted(file: string): Promise<void>
}

interface DiskPrepared extends PreparedFile {
  /** The file to commit: the single part itself, or `assembled.*`. */
  file: string
  target: FileToBe
}

const READ_CHUNK = 1024 * 1024
const ASSEMBLED = 'assembled.'
/** An upload folder without a record (a creation cut short) is removed once this old. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000

export class DiskStaging implements UploadStaging {
  readonly records: DiskUploadRecords
  readonly #tails = new AppendTails()

  constructor(
    private readonly layout: DiskLayout,
    private readonly locks: StoreLocks,
    private readonly instances: Instances,
    private readonly files: DiskFiles,
  ) {
    this.records = new DiskUploadRecords(layout, locks, files.discardTree)
  }

  exclusive<T>(uploadId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(`upload:${uploadId}`, fn)
  }

  async openPart(uploadId: string, part: number): Promise<PartWriter> {
    return new ReplacingPart(this.#place(uploadId), part)
  }

  async openAppend(uploadId: string, last: PartInfo | undefined, options: { offset: number; keepOnCrash: boolean }): Promise<PartWriter> {
    const place = this.#place(uploadId)
    const claim = { instance: this.instances.id, offset: options.offset, keepOnCrash: options.keepOnCrash }
    const hash = last && this.#tails.hashOf(uploadId, last)
    if (last && hash) {
      // Claimed if its record is still `last` once claimed (another instance may have extended it).
      const claimed = await claimPart(place.dir, last.part, { ...claim, base: last.size })
      if (claimed) {
        if (await isRecordOf(place.dir, last.part, last, (await stat(claimed)).ino)) return new AppendingPart(place, last.part, claimed, last, hash)
        const now = (await this.#parts(uploadId)).find((p) => p.info.part === last.part)
        await releasePart(place.dir, last.part, claimed, now?.info.size ?? last.size)
      }
    }
    const part = (last?.part ?? 0) + 1
    return new AppendingPart(place, part, await newClaim(place.dir, part, { ...claim, base: 0 }))
  }

  async listParts(uploadId: string): Promise<PartInfo[]> {
    return (await this.#parts(uploadId)).map((p) => p.info)
  }

  /** Everything in the folder but its record goes. */
  async discardParts(uploadId: string): Promise<void> {
    this.#tails.forget(uploadId)
    const dir = this.#dir(uploadId)
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name !== SESSION && name !== COMPLETION) await this.files.removeUncommitted(join(dir, name))
    }
  }

  async prepare(uploadId: string, parts: PartInfo[], target: FileToBe): Promise<PreparedFile> {
    const dir = this.#dir(uploadId)
    for (const name of await readdir(dir)) {
      // Of a completion that died before its commit.
      if (name.startsWith(ASSEMBLED)) await this.files.removeUncommitted(join(dir, name)).catch(() => {})
    }
    const files = await this.#parts(uploadId)
    const [only] = parts
    if (parts.length === 1 && only!.size <= (target.maxBytes ?? Number.POSITIVE_INFINITY)) {
      // One part is the whole file, hashed as it arrived: it becomes the file as it is, without
      // copying or hashing it again. (Claimed by an append on another instance: copied below, up to
      // its recorded size.)
      const own = join(dir, partName(only!.part))
      if (files.find((p) => p.info.part === only!.part)?.file === own) return prepared(target, own, only!.size, only!.sha256)
    }
    const fileOf = new Map(files.map((p) => [p.info.part, p.file]))
    const assembled = join(dir, `${ASSEMBLED}${this.instances.id}.${randomBytes(8).toString('hex')}`)
    try {
      const digest = new DigestStream(target.maxBytes)
      async function* concatenated() {
        for (const p of parts) {
          if (p.size === 0) continue
          // Only the part's recorded bytes: a claimed file may hold more that an append has not committed.
          yield* createReadStream(fileOf.get(p.part)!, { start: 0, end: p.size - 1, highWaterMark: READ_CHUNK })
        }
      }
      await pipeline(concatenated, digest, tmpFileWriter(assembled))
      return await prepared(target, assembled, digest.size, digest.digest())
    } catch (e) {
      await this.files.removeUncommitted(assembled)
      throw e
    }
  }

  async commit(prepared: PreparedFile, options: CommitOptions): Promise<PutResult> {
    const { file, sha256, target } = prepared as DiskPrepared
    try {
      return await this.files.commit(target.path, {
        tmp: file,
        sha256,
        metadata: target.metadata,
        ...(target.contentType !== undefined ? { contentType: target.contentType } : {}),
        ...(options.mustNotExist ? { mustNotExist: true } : {}),
        ...(options.ifMatch ? { ifMatch: options.ifMatch } : {}),
        revision: target.revision,
        beforePlace: (result) => options.beforeVisible(result),
        ...(options.announce ? { uploadId: options.announce.uploadId, origin: options.announce.origin } : {}),
      })
    } catch (e) {
      await this.discardPrepared(prepared)
      throw e
    }
  }

  async discardPrepared(prepared: PreparedFile): Promise<void> {
    const { file } = prepared as DiskPrepared
    if (basename(file).startsWith(ASSEMBLED)) await this.files.removeUncommitted(file) // never a part itself
  }

  /** Committed when the path holds its revision, or when the file it committed has left the folder. */
  async committed(uploadId: string, journal: CompletionJournal): Promise<boolean> {
    if (await this.files.lookupRevision(journal.result.file.path, journal.revision)) return true
    const { source, ino } = journal.note
    if (typeof source !== 'string' || source.includes('/')) return false
    return (await lstat(join(this.#dir(uploadId), source)).catch(() => null))?.ino !== ino
  }

  /**
   * Claims left by a writer that died (a crash during a tus PATCH): their bytes become the part
   * they were appending, re-hashed, when the append may keep them and the upload has not moved on
   * since; otherwise the part goes back to its recorded size. Under the upload's lock, so that a
   * request that follows counts what a recovery under way (a claim taken over, `r`) keeps.
   */
  async recover(uploadId: string): Promise<void> {
    if (!(await this.#deadClaims(uploadId, true)).length) return
    await this.exclusive(uploadId, async () => {
      for (const claim of await this.#deadClaims(uploadId)) await this.#recoverClaim(uploadId, claim)
    })
  }

  /**
   * The sweep of upload folders (the engine removed the expired ones first): recovers appends whose
   * writer died, removes what an upload that ended still holds beside its record (a completion or an
   * abort cut by a crash after its record said so), and removes folders without a record (a creation
   * cut short) once they are old.
   */
  async sweep(now: Date): Promise<number> {
    let removed = 0
    for (const id of await readdir(this.layout.uploadsDir).catch(() => [] as string[])) {
      const dir = this.#dir(id)
      if (await stat(join(dir, SESSION)).then(() => true, () => false)) {
        await this.recover(id)
        if (await this.#endedWithParts(id)) {
          await this.exclusive(id, () => this.discardParts(id))
          removed++
        }
      } else if (now.getTime() - ((await stat(dir).catch(() => null))?.mtimeMs ?? now.getTime()) > ORPHAN_GRACE_MS) {
        await this.exclusive(id, () => this.files.discardTree(dir))
        removed++
      }
    }
    return removed
  }

  /** Whether the upload has ended (completed or aborted) and its folder holds more than its record. */
  async #endedWithParts(uploadId: string): Promise<boolean> {
    const names = await readdir(this.#dir(uploadId)).catch(() => [] as string[])
    if (!names.includes(COMPLETION) || names.every((n) => n === SESSION || n === COMPLETION)) return false
    return (await this.records.read(uploadId).catch(() => null))?.state.finished !== undefined
  }

  /** The claims of writers that died; with `recovering`, also those a recovery took over. */
  async #deadClaims(uploadId: string, recovering = false): Promise<Claim[]> {
    const { claims } = await readPartFiles(this.#dir(uploadId)).catch(() => ({ claims: [] as Claim[] }))
    const dead: Claim[] = []
    for (const c of claims) if ((recovering && c.recovering) || !(await this.instances.isAlive(c.instance))) dead.push(c)
    return dead
  }

  async #recoverClaim(uploadId: string, claim: Claim): Promise<void> {
    const dir = this.#dir(uploadId)
    const parts = (await this.#parts(uploadId)).map((p) => p.info)
    const recorded = parts.find((p) => p.part === claim.part)
    const last = parts.at(-1)
    // Take it over first: a rename, so only one recoverer goes on.
    const mine = join(dir, claimName(claim.part, { ...claim, instance: this.instances.id, recovering: true }))
    try {
      await rename(claim.file, mine)
    } catch {
      return // recovered by someone else
    }
    const size = (await stat(mine)).size
    const unchanged =
      receivedBytes(parts) === claim.offset + (recorded?.size ?? 0) - claim.base &&
      (recorded?.size ?? 0) === claim.base &&
      (claim.base > 0 ? last?.part === claim.part : (last?.part ?? 0) === claim.part - 1)
    if (claim.keepOnCrash && unchanged && size > claim.base) {
      const info: PartInfo = { part: claim.part, size, sha256: await sha256Of(mine) }
      await writePartRecord(dir, info, (await stat(mine)).ino, this.layout.tmpFile())
      await releasePart(dir, info.part, mine, info.size)
    } else if (recorded) {
      await releasePart(dir, claim.part, mine, recorded.size)
    } else {
      await dropClaim(mine)
    }
  }

  #place(uploadId: string): PartPlace {
    return {
      dir: this.#dir(uploadId),
      locked: (fn) => this.exclusive(uploadId, fn),
      tmpFile: () => this.layout.tmpFile(),
      remember: (info, hash) => this.#tails.remember(uploadId, info, hash),
      forget: () => this.#tails.forget(uploadId),
    }
  }

  #dir(uploadId: string): string {
    return this.records.dir(uploadId)
  }

  async #parts(uploadId: string): Promise<PartFile[]> {
    return (await readPartFiles(this.#dir(uploadId))).parts
  }
}

async function prepared(target: FileToBe, file: string, size: number, sha256: string): Promise<DiskPrepared> {
  return { target, file, size, sha256, note: { source: basename(file), ino: (await lstat(file)).ino } }
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}
