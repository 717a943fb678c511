/**
 * Part uploads on disk (SPEC 3.3), and tus uploads, which append. Each upload is a folder under
 * `.filestorage/uploads/<id>/`:
 *
 *   session.json            where the file goes and with what attributes (rewritten whole when the size is declared)
 *   part-<n>, part-<n>.json the parts and their records (part-files.ts)
 *   part-<n>.w.<claim>      a part an append is writing (part-files.ts)
 *   assembled.<instance>.<id>  the parts of a completion, concatenated
 *   complete.json           the completion's journal, see below
 *
 * Appends write into a claimed part in the upload's folder, never into a temporary file elsewhere,
 * so the bytes that reached the disk are there after any crash: a claim whose writer died is
 * recovered by the next request for the upload (or the sweeper), and keeps those bytes (re-hashed)
 * when the append had no checksum and the upload has not moved on since. An append extends the
 * part the previous append left, in place, when this process still has that part's running sha256
 * (append-tails.ts); otherwise it starts the next part.
 *
 * Completing: the file to commit (the single part itself, or the parts concatenated into
 * `assembled.*`) is given its record, the journal `complete.json` names it and the FileInfo it will
 * have, and the rename that gives it its path is the commit. The file has left the folder exactly
 * when the commit happened, so after a crash at any point a retry either finds it still there and
 * commits again, or finds it gone and answers the stored file from the journal. Once committed, the
 * folder keeps only `session.json` and `complete.json` until it expires, so completing again answers
 * the same file instead of "no such upload".
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import { acceptReceived, appendRoom, type ReceivedBody, receiveBody } from '../append-body.js'
import { checkAnnouncedSize, DigestStream, verifySha256 } from '../digest.js'
import { offsetMismatch } from '../errors.js'
import { failpoint } from '../failpoints.js'
import {
  checkAppend,
  checkCreateOptions,
  checkDeclaredSize,
  checkPartNumber,
  checkTotal,
  checkUploadId,
  isExpired,
  newUploadRecord,
  partsToAssemble,
  publicSession,
  receivedBytes,
  uploadConditions,
  uploadNotFound,
  type UploadPolicy,
  type UploadRecord,
  uploadStatusOf,
} from '../part-uploads.js'
import { bodyChunks } from '../streams.js'
import type {
  AppendPartOptions,
  AppendResult,
  CompleteUploadOptions,
  CreateUploadOptions,
  PartInfo,
  PutPartOptions,
  PutResult,
  StoredFile,
  UploadSession,
  UploadStatus,
  UploadStatusOptions,
  WritePreconditions,
} from '../types.js'
import type { CommitRequest } from './disk-driver.js'
import { AppendTails } from './append-tails.js'
import { FileSink } from './file-sink.js'
import type { Instances } from './instances.js'
import { type DiskLayout, tmpFileWriter, writeThenRename } from './layout.js'
import {
  type Claim,
  claimPart,
  dropClaim,
  newClaim,
  partName,
  type PartFile,
  readPartFiles,
  releasePart,
  writePartRecord,
} from './part-files.js'
import type { StoreLocks } from './store-locks.js'

interface SessionFile extends UploadRecord {
  v: 1
}

/** The journal of a completion (see the top of this file). */
interface Journal {
  v: 1
  /** The file being committed, by its name in the upload's folder. */
  source: string
  ino: number
  file: StoredFile
  created: boolean
}

export interface UploadCommitter {
  precheck(path: string, conditions: WritePreconditions): Promise<unknown>
  commit(path: string, request: CommitRequest): Promise<PutResult>
  /** The file at `path` if it is still inode `ino`, described; else null. */
  describeInode(path: string, ino: number): Promise<StoredFile | null>
  /** Removes a folder (an upload's) at once, releasing the records its files were given. */
  discardTree(abs: string): Promise<void>
  /** Removes a file that a commit may have given a record without giving it a name, and that record. */
  removeUncommitted(file: string): Promise<void>
}

const READ_CHUNK = 1024 * 1024
const SESSION = 'session.json'
const JOURNAL = 'complete.json'
const ASSEMBLED = 'assembled.'

const uploadLock = (uploadId: string) => `upload:${uploadId}`

export class DiskUploads {
  readonly #tails = new AppendTails()

  constructor(
    private readonly layout: DiskLayout,
    private readonly policy: UploadPolicy,
    private readonly locks: StoreLocks,
    private readonly files: UploadCommitter,
    private readonly instances: Instances,
  ) {}

  async create(path: string, options: CreateUploadOptions): Promise<UploadSession> {
    checkCreateOptions(options)
    await this.files.precheck(path, options)
    const session: SessionFile = { v: 1, ...newUploadRecord(path, this.policy, options) }
    const dir = this.#dir(session.uploadId)
    await mkdir(dir, { recursive: true })
    try {
      await this.#writeSession(session)
    } catch (e) {
      await rm(dir, { recursive: true, force: true }) // a full disk leaves no empty upload behind
      throw e
    }
    return publicSession(session)
  }

  async putPart(uploadId: string, part: number, body: ReadableStream<Uint8Array>, options: PutPartOptions = {}) {
    checkPartNumber(part)
    const session = await this.#session(uploadId)
    checkAnnouncedSize(options.expectedSize, session.partSizeLimit)
    const tmp = this.layout.tmpFile()
    try {
      const digest = new DigestStream(session.partSizeLimit)
      await pipeline(bodyChunks(body), digest, tmpFileWriter(tmp))
      const info: PartInfo = { part, size: digest.size, sha256: digest.digest() }
      verifySha256(options.expectedSha256, info.sha256)
      return await this.locks.run(uploadLock(uploadId), async () => {
        const current = await this.#session(uploadId) // completed or aborted meanwhile?
        const others = (await this.#parts(uploadId)).filter((p) => p.info.part !== part)
        checkTotal(current, receivedBytes(others.map((p) => p.info)) + info.size)
        const dir = this.#dir(uploadId)
        const { ino } = await stat(tmp)
        // Bytes first, then the record naming them: until the record is written the part does not
        // count, so a crash in between never pairs the new bytes with the old record.
        await rename(tmp, join(dir, partName(part)))
        await writePartRecord(dir, info, ino, this.layout.tmpFile())
        return info
      })
    } finally {
      await rm(tmp, { force: true })
    }
  }

  async append(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    await this.#recoverDeadClaims(uploadId)
    const session = await this.#session(uploadId)
    // Refuse a stale offset before reading a byte; checked again, atomically, at the commit.
    const parts = (await this.#parts(uploadId)).map((p) => p.info)
    checkAppend(session, options.offset, receivedBytes(parts), 0)
    const last = parts.at(-1)
    const maxBytes = appendRoom(session, options.offset, options.expectedSize)
    const claim = {
      instance: this.instances.id,
      offset: options.offset,
      keepOnCrash: options.keepPartial === true && options.expectedChecksum === undefined,
    }
    const hash = this.#tails.hashOf(uploadId, last)
    const claimed = last && hash ? await this.#claimTail(uploadId, last, { ...claim, base: last.size }) : null
    if (claimed) return this.#extend(uploadId, last!, claimed, hash!, body, options, maxBytes)
    const part = (last?.part ?? 0) + 1
    const fresh = await newClaim(this.#dir(uploadId), part, { ...claim, base: 0 })
    return this.#appendNew(uploadId, part, fresh, body, options, maxBytes)
  }

  /** Appends `body` as the new part `part`, written into `claimed`. */
  async #appendNew(
    uploadId: string,
    part: number,
    claimed: string,
    body: ReadableStream<Uint8Array>,
    options: AppendPartOptions,
    maxBytes: number,
  ): Promise<AppendResult> {
    let committed = false
    try {
      const received = await receiveInto(FileSink.continuing(claimed, 0), body, options, maxBytes)
      const { partial } = acceptReceived(received, options)
      return await this.locks.run(uploadLock(uploadId), async (): Promise<AppendResult> => {
        const current = await this.#session(uploadId)
        const parts = (await this.#parts(uploadId)).map((p) => p.info)
        const offset = receivedBytes(parts)
        checkAppend(current, options.offset, offset, received.size)
        if (received.size === 0) return { part: null, offset, partial }
        // Still the next part: no other append took that number meanwhile.
        if ((parts.at(-1)?.part ?? 0) !== part - 1) throw offsetMismatch(options.offset, offset)
        const info: PartInfo = { part, size: received.size, sha256: received.sha256 }
        await this.#commitClaim(uploadId, claimed, info)
        committed = true
        this.#tails.remember(uploadId, info, received.hash)
        return { part: info, offset: offset + info.size, partial }
      })
    } finally {
      if (!committed) await dropClaim(claimed)
    }
  }

  /** Appends `body` to `last`, the part the previous append left, which this writer has claimed. */
  async #extend(
    uploadId: string,
    last: PartInfo,
    claimed: string,
    hash: ReturnType<typeof createHash>,
    body: ReadableStream<Uint8Array>,
    options: AppendPartOptions,
    maxBytes: number,
  ): Promise<AppendResult> {
    const dir = this.#dir(uploadId)
    let released = false
    const giveBack = async (size: number) => {
      if (!released) await releasePart(dir, last.part, claimed, size)
      released = true
    }
    try {
      const received = await receiveInto(FileSink.continuing(claimed, last.size), body, options, maxBytes, hash)
      const { partial } = acceptReceived(received, options)
      return await this.locks.run(uploadLock(uploadId), async (): Promise<AppendResult> => {
        const current = await this.#session(uploadId)
        const parts = await this.#parts(uploadId)
        const offset = receivedBytes(parts.map((p) => p.info))
        checkAppend(current, options.offset, offset, received.size)
        // Still the part claimed, with the same record: not sent again (putPart) meanwhile.
        if (!isClaimed(parts.at(-1), last, claimed)) throw offsetMismatch(options.offset, offset)
        if (received.size === 0) return { part: null, offset, partial }
        const info: PartInfo = { part: last.part, size: last.size + received.size, sha256: received.sha256 }
        await writePartRecord(dir, info, (await stat(claimed)).ino, this.layout.tmpFile())
        failpoint('disk.append.recorded')
        released = true // the record counts the new bytes: given back with them, under the lock
        await releasePart(dir, last.part, claimed, info.size)
        this.#tails.remember(uploadId, info, received.hash)
        return { part: info, offset: offset + received.size, partial }
      })
    } finally {
      await giveBack(last.size)
    }
  }

  /** Claims `last` to extend it, if its record is still `last` once claimed (another instance may have extended it). */
  async #claimTail(uploadId: string, last: PartInfo, claim: Omit<Claim, 'file' | 'part'>): Promise<string | null> {
    const dir = this.#dir(uploadId)
    const claimed = await claimPart(dir, last.part, claim)
    if (!claimed) return null
    const now = (await this.#parts(uploadId)).find((p) => p.info.part === last.part)
    if (isClaimed(now, last, claimed)) return claimed
    await releasePart(dir, last.part, claimed, now?.info.size ?? last.size)
    return null
  }

  /** Records the bytes of a claimed part, then gives it back under its own name. Under the upload's lock. */
  async #commitClaim(uploadId: string, claimed: string, info: PartInfo): Promise<void> {
    const dir = this.#dir(uploadId)
    await writePartRecord(dir, info, (await stat(claimed)).ino, this.layout.tmpFile())
    failpoint('disk.append.recorded')
    await releasePart(dir, info.part, claimed, info.size)
  }

  async declareSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    await this.locks.run(uploadLock(uploadId), async () => {
      const session = await this.#session(uploadId)
      checkDeclaredSize(session, receivedBytes((await this.#parts(uploadId)).map((p) => p.info)), totalSize)
      if (session.totalSize === undefined) await this.#writeSession({ ...session, totalSize })
    })
    return this.status(uploadId)
  }

  async status(uploadId: string, options: UploadStatusOptions = {}): Promise<UploadStatus> {
    checkUploadId(uploadId)
    // Under the upload's lock: a recovery under way (by the sweeper, or another request) holds it
    // while it re-hashes what a dead append left, and the status must count those bytes.
    return this.locks.run(uploadLock(uploadId), async () => {
      await this.#recoverDeadClaimsLocked(uploadId)
      const session = await this.#session(uploadId, options.finished)
      return uploadStatusOf(session, (await this.#parts(uploadId)).map((p) => p.info))
    })
  }

  async complete(uploadId: string, options: CompleteUploadOptions = {}): Promise<PutResult> {
    await this.#recoverDeadClaims(uploadId)
    return this.locks.run(uploadLock(uploadId), async () => {
      const dir = this.#dir(uploadId)
      const session = await this.#readSession(uploadId)
      if (!session || isExpired(session.expiresAt)) throw uploadNotFound(uploadId)
      const journal = await this.#readJournal(uploadId)
      if (journal) return this.#resume(session, journal, options)
      await this.#removeAssembled(uploadId) // of a completion that died before its journal
      const files = await this.#parts(uploadId)
      const parts = partsToAssemble(session, files.map((p) => p.info), options.parts)
      await this.files.precheck(session.path, session) // fail before copying gigabytes
      const [only] = parts
      if (parts.length === 1 && only!.size <= (session.maxBytes ?? Number.POSITIVE_INFINITY)) {
        // One part is the whole file, hashed as it arrived (a tus upload in one PATCH, or in many
        // to one instance): it becomes the file as it is, without copying or hashing it again.
        const own = files.find((p) => p.info.part === only!.part)!.file
        if (own === join(dir, partName(only!.part))) {
          verifySha256(options.expectedSha256, only!.sha256)
          return this.#commitSource(session, partName(only!.part), only!.sha256)
        }
        // An append on another instance holds it claimed: copied below, up to its recorded size.
      }
      const fileOf = new Map(files.map((p) => [p.info.part, p.file]))
      const assembled = `${ASSEMBLED}${this.instances.id}.${randomBytes(8).toString('hex')}`
      let committed = false
      try {
        const digest = new DigestStream(session.maxBytes)
        async function* concatenated() {
          for (const p of parts) {
            if (p.size === 0) continue
            // Only the part's recorded bytes: a claimed file may hold more that an append has not committed.
            yield* createReadStream(fileOf.get(p.part)!, { start: 0, end: p.size - 1, highWaterMark: READ_CHUNK })
          }
        }
        await pipeline(concatenated, digest, tmpFileWriter(join(dir, assembled)))
        const sha256 = digest.digest()
        verifySha256(options.expectedSha256, sha256)
        const result = await this.#commitSource(session, assembled, sha256)
        committed = true
        return result
      } finally {
        if (!committed) await this.files.removeUncommitted(join(dir, assembled))
      }
    })
  }

  /**
   * Commits `source` (a file in the upload's folder) to the upload's path, journaled; then keeps
   * only the session and the journal. Under the upload's lock.
   */
  async #commitSource(session: SessionFile, source: string, sha256: string): Promise<PutResult> {
    const dir = this.#dir(session.uploadId)
    try {
      const result = await this.files.commit(session.path, {
        tmp: join(dir, source),
        sha256,
        metadata: session.metadata,
        ...(session.contentType !== undefined ? { contentType: session.contentType } : {}),
        ...uploadConditions(session),
        beforePlace: async (placed, ino) => {
          await this.#writeJournal(session.uploadId, { v: 1, source, ino, file: placed.file, created: placed.created })
          failpoint('disk.complete.journaled')
        },
      })
      failpoint('disk.complete.committed')
      await this.#keepOnlyJournal(session.uploadId)
      this.#tails.forget(session.uploadId)
      return result
    } catch (e) {
      await rm(join(dir, JOURNAL), { force: true }) // not committed: the upload stays complete-able
      throw e
    }
  }

  /** Completing an upload whose journal is written: the crash came before or after the commit. */
  async #resume(session: SessionFile, journal: Journal, options: CompleteUploadOptions): Promise<PutResult> {
    const dir = this.#dir(session.uploadId)
    const source = await lstat(join(dir, journal.source)).catch(() => null)
    if (source?.ino === journal.ino) {
      verifySha256(options.expectedSha256, journal.file.sha256)
      return this.#commitSource(session, journal.source, journal.file.sha256) // not committed yet
    }
    verifySha256(options.expectedSha256, journal.file.sha256)
    await this.#keepOnlyJournal(session.uploadId)
    const file = (await this.files.describeInode(session.path, journal.ino)) ?? journal.file
    return { file, created: journal.created }
  }

  async abort(uploadId: string): Promise<void> {
    await this.locks.run(uploadLock(uploadId), async () => {
      await this.#session(uploadId)
      await this.files.discardTree(this.#dir(uploadId))
      this.#tails.forget(uploadId)
    })
  }

  /** Removes expired uploads (finished ones included) and recovers appends whose writer died. */
  async sweep(now: Date): Promise<number> {
    let removed = 0
    for (const id of await readdir(this.layout.uploadsDir).catch(() => [] as string[])) {
      const session = await this.#readSession(id)
      const abandoned = session
        ? isExpired(session.expiresAt, now)
        : await olderThan(join(this.layout.uploadsDir, id), this.policy.ttlMs, now)
      if (abandoned) {
        await this.locks.run(uploadLock(id), () => this.files.discardTree(join(this.layout.uploadsDir, id)))
        this.#tails.forget(id)
        removed++
      } else if (session) {
        await this.#recoverDeadClaims(id)
      }
    }
    return removed
  }

  /**
   * Claims left by a writer that died (a crash during a tus PATCH): their bytes become the part
   * they were appending, re-hashed, when the append may keep them and the upload has not moved on
   * since; otherwise the part goes back to its recorded size.
   */
  async #recoverDeadClaims(uploadId: string): Promise<void> {
    checkUploadId(uploadId)
    if ((await this.#deadClaims(uploadId)).length === 0) return
    await this.locks.run(uploadLock(uploadId), () => this.#recoverDeadClaimsLocked(uploadId))
  }

  /** `#recoverDeadClaims`, under the upload's lock. */
  async #recoverDeadClaimsLocked(uploadId: string): Promise<void> {
    for (const claim of await this.#deadClaims(uploadId)) await this.#recoverClaim(uploadId, claim)
  }

  async #deadClaims(uploadId: string): Promise<Claim[]> {
    const { claims } = await readPartFiles(this.#dir(uploadId)).catch(() => ({ claims: [] as Claim[] }))
    const dead: Claim[] = []
    for (const c of claims) if (!(await this.instances.isAlive(c.instance))) dead.push(c)
    return dead
  }

  async #recoverClaim(uploadId: string, claim: Claim): Promise<void> {
    const dir = this.#dir(uploadId)
    const parts = (await this.#parts(uploadId)).map((p) => p.info)
    const recorded = parts.find((p) => p.part === claim.part)
    const last = parts.at(-1)
    // Take it over first: a rename, so only one recoverer goes on.
    const mine = join(dir, `${partName(claim.part)}.w.${this.instances.id}.${claim.offset}.${claim.base}.d.${randomBytes(4).toString('hex')}`)
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
      await this.#commitClaim(uploadId, mine, info)
    } else if (recorded) {
      await releasePart(dir, claim.part, mine, recorded.size)
    } else {
      await dropClaim(mine)
    }
  }

  #dir(uploadId: string): string {
    return join(this.layout.uploadsDir, uploadId)
  }

  async #writeSession(session: SessionFile): Promise<void> {
    await this.#writeJson(session.uploadId, SESSION, session)
  }

  async #writeJournal(uploadId: string, journal: Journal): Promise<void> {
    await this.#writeJson(uploadId, JOURNAL, journal)
  }

  async #writeJson(uploadId: string, name: string, value: unknown): Promise<void> {
    await writeThenRename(this.layout.tmpFile(), join(this.#dir(uploadId), name), JSON.stringify(value))
  }

  async #readJson<T extends { v: number }>(uploadId: string, name: string): Promise<T | null> {
    try {
      const value = JSON.parse(await readFile(join(this.#dir(uploadId), name), 'utf8')) as T
      return value.v === 1 ? value : null
    } catch {
      return null
    }
  }

  #readSession(uploadId: string): Promise<SessionFile | null> {
    return this.#readJson<SessionFile>(uploadId, SESSION)
  }

  #readJournal(uploadId: string): Promise<Journal | null> {
    return this.#readJson<Journal>(uploadId, JOURNAL)
  }

  /** After a commit: everything but the session and the journal goes. */
  async #keepOnlyJournal(uploadId: string): Promise<void> {
    const dir = this.#dir(uploadId)
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name !== SESSION && name !== JOURNAL) await rm(join(dir, name), { force: true, recursive: true })
    }
  }

  async #removeAssembled(uploadId: string): Promise<void> {
    const dir = this.#dir(uploadId)
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(ASSEMBLED)) await this.files.removeUncommitted(join(dir, name)).catch(() => {})
    }
  }

  /** The live session, or `not_found` for an unknown, finished (unless `finished` is allowed) or expired one. */
  async #session(uploadId: string, finished = false): Promise<SessionFile> {
    checkUploadId(uploadId)
    const session = await this.#readSession(uploadId)
    if (!session || isExpired(session.expiresAt) || (!finished && (await this.#committed(uploadId)))) throw uploadNotFound(uploadId)
    return session
  }

  /** Whether the upload's completion has committed its file (its journal's source has left the folder). */
  async #committed(uploadId: string): Promise<boolean> {
    const journal = await this.#readJournal(uploadId)
    if (!journal) return false
    const source = await lstat(join(this.#dir(uploadId), journal.source)).catch(() => null)
    return source?.ino !== journal.ino
  }

  async #parts(uploadId: string): Promise<PartFile[]> {
    return (await readPartFiles(this.#dir(uploadId))).parts
  }
}

/** Whether `part` is `expected`, read from the file `claimed`. */
const isClaimed = (part: PartFile | undefined, expected: PartInfo, claimed: string) =>
  part?.file === claimed &&
  part.info.part === expected.part &&
  part.info.size === expected.size &&
  part.info.sha256 === expected.sha256

/** Streams `body` into `sink` (see `receiveBody`), continuing `hash` if given; the sink is closed either way. */
async function receiveInto(
  sink: FileSink,
  body: ReadableStream<Uint8Array>,
  options: AppendPartOptions,
  maxBytes: number,
  hash?: ReturnType<typeof createHash>,
): Promise<ReceivedBody> {
  try {
    return await receiveBody(body, (chunk) => sink.write(chunk), {
      maxBytes,
      ...(hash ? { hash } : {}),
      ...(options.expectedChecksum ? { checksum: options.expectedChecksum.algorithm } : {}),
    })
  } finally {
    await sink.close()
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function olderThan(path: string, ms: number, now: Date): Promise<boolean> {
  try {
    return now.getTime() - (await stat(path)).mtimeMs > ms
  } catch {
    return false
  }
}
