/**
 * Part uploads on disk (SPEC 3.3). Each upload is a folder under `.filestorage/uploads/<id>/`:
 *
 *   session.json         where the file goes and with what attributes (rewritten whole when the size is declared)
 *   part-<n>, part-<n>.json   the parts (part-files.ts): written to a temporary file, renamed here
 *
 * Appends (tus) are parts too, committed under the upload's lock only if the upload still has the
 * offset the client named; an append whose body broke off keeps what arrived. An append extends the
 * part the previous append left, in place, when this process still has that part's running sha256
 * (append-tails.ts); otherwise it writes the next part. So an upload sent in many PATCHes to one
 * instance ends as one part, as one sent in one PATCH does.
 *
 * Completing an upload of one part renames that part into place: no copy, no second hash. Several
 * parts are streamed in order into one temporary file, hashed as they go, and committed like any
 * upload; then the folder is removed.
 */
import type { Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { acceptReceived, appendRoom, type ReceivedBody, receiveBody } from '../append-body.js'
import { checkAnnouncedSize, DigestStream, verifySha256 } from '../digest.js'
import { offsetMismatch } from '../errors.js'
import type { KeyedLock } from '../keyed-lock.js'
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
  WritePreconditions,
} from '../types.js'
import type { CommitRequest } from './disk-driver.js'
import { AppendTails } from './append-tails.js'
import { FileSink } from './file-sink.js'
import { type DiskLayout, tmpFileWriter } from './layout.js'
import { claimPart, type PartFile, partName, readPartFiles, releasePart, writePartRecord } from './part-files.js'

interface SessionFile extends UploadRecord {
  v: 1
}

export interface UploadCommitter {
  precheck(path: string, conditions: WritePreconditions): Promise<StoredFile | null>
  commit(path: string, request: CommitRequest): Promise<PutResult>
}

/** Temporary files untouched for this long belong to no live upload (a live one keeps writing). */
const STALE_TMP_MS = 60 * 60 * 1000
const READ_CHUNK = 1024 * 1024

export class DiskUploads {
  readonly #tails = new AppendTails()

  constructor(
    private readonly layout: DiskLayout,
    private readonly policy: UploadPolicy,
    private readonly locks: KeyedLock,
    private readonly files: UploadCommitter,
  ) {}

  async create(path: string, options: CreateUploadOptions): Promise<UploadSession> {
    checkCreateOptions(options)
    await this.files.precheck(path, options)
    const session: SessionFile = { v: 1, ...newUploadRecord(path, this.policy, options) }
    await mkdir(this.#dir(session.uploadId), { recursive: true })
    await this.#writeSession(session)
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
      return await this.locks.run(uploadId, async () => {
        const current = await this.#session(uploadId) // completed or aborted meanwhile?
        const others = (await this.#parts(uploadId)).filter((p) => p.part !== part)
        checkTotal(current, receivedBytes(others) + info.size)
        await this.#commitPart(uploadId, tmp, info)
        return info
      })
    } finally {
      await rm(tmp, { force: true })
    }
  }

  async append(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    const session = await this.#session(uploadId)
    // Refuse a stale offset before reading a byte; checked again, atomically, at the commit.
    const parts = await this.#parts(uploadId)
    checkAppend(session, options.offset, receivedBytes(parts), 0)
    const last = parts.at(-1)
    const maxBytes = appendRoom(session, options.offset, options.expectedSize)
    const hash = this.#tails.hashOf(uploadId, last)
    const claimed = last && hash ? await this.#claimTail(uploadId, last) : null
    return claimed
      ? this.#extend(uploadId, last!, claimed, hash!, body, options, maxBytes)
      : this.#appendPart(uploadId, body, options, maxBytes)
  }

  /** Appends `body` as the next part. */
  async #appendPart(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions, maxBytes: number) {
    const tmp = this.layout.tmpFile()
    try {
      const received = await receiveInto(FileSink.create(tmp), body, options, maxBytes)
      const { partial } = acceptReceived(received, options)
      return await this.locks.run(uploadId, async (): Promise<AppendResult> => {
        const current = await this.#session(uploadId)
        const parts = await this.#parts(uploadId)
        const offset = receivedBytes(parts)
        checkAppend(current, options.offset, offset, received.size)
        if (received.size === 0) return { part: null, offset, partial }
        const info: PartInfo = { part: (parts.at(-1)?.part ?? 0) + 1, size: received.size, sha256: received.sha256 }
        await this.#commitPart(uploadId, tmp, info)
        this.#tails.remember(uploadId, info, received.hash)
        return { part: info, offset: offset + info.size, partial }
      })
    } finally {
      await rm(tmp, { force: true })
    }
  }

  /** Appends `body` to `last`, the part the previous append left, which this writer has claimed. */
  async #extend(
    uploadId: string,
    last: PartInfo,
    claimed: string,
    hash: Hash,
    body: ReadableStream<Uint8Array>,
    options: AppendPartOptions,
    maxBytes: number,
  ): Promise<AppendResult> {
    const dir = this.#dir(uploadId)
    let keep = last.size // what the part is given back with: more only once its new record is written
    let released = false
    const release = async () => {
      if (!released) await releasePart(dir, last.part, claimed, keep)
      released = true
    }
    try {
      const received = await receiveInto(FileSink.continuing(claimed, last.size), body, options, maxBytes, hash)
      const { partial } = acceptReceived(received, options)
      return await this.locks.run(uploadId, async (): Promise<AppendResult> => {
        const current = await this.#session(uploadId)
        const parts = await readPartFiles(dir)
        const offset = receivedBytes(parts.map((p) => p.info))
        checkAppend(current, options.offset, offset, received.size)
        // Still the part claimed, with the same record: not sent again (putPart) meanwhile.
        if (!isClaimed(parts.at(-1), last, claimed)) throw offsetMismatch(options.offset, offset)
        if (received.size === 0) return { part: null, offset, partial }
        const info: PartInfo = { part: last.part, size: last.size + received.size, sha256: received.sha256 }
        await writePartRecord(dir, info, this.layout.tmpFile())
        keep = info.size
        this.#tails.remember(uploadId, info, received.hash)
        await release() // under the lock, so a completion that follows finds the part under its name
        return { part: info, offset: offset + received.size, partial }
      })
    } finally {
      await release()
    }
  }

  /** Claims `last` to extend it, if its record is still `last` once claimed (another instance may have extended it). */
  async #claimTail(uploadId: string, last: PartInfo): Promise<string | null> {
    const dir = this.#dir(uploadId)
    const claimed = await claimPart(dir, last.part)
    if (!claimed) return null
    const now = (await readPartFiles(dir)).find((p) => p.info.part === last.part)
    if (isClaimed(now, last, claimed)) return claimed
    await releasePart(dir, last.part, claimed, now?.info.size ?? last.size)
    return null
  }

  async declareSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    return this.locks.run(uploadId, async () => {
      const session = await this.#session(uploadId)
      checkDeclaredSize(session, receivedBytes(await this.#parts(uploadId)), totalSize)
      if (session.totalSize === undefined) await this.#writeSession({ ...session, totalSize })
      return this.status(uploadId)
    })
  }

  async status(uploadId: string): Promise<UploadStatus> {
    const session = await this.#session(uploadId)
    return uploadStatusOf(session, await this.#parts(uploadId))
  }

  async complete(uploadId: string, options: CompleteUploadOptions = {}): Promise<PutResult> {
    return this.locks.run(uploadId, async () => {
      const session = await this.#session(uploadId)
      const files = await readPartFiles(this.#dir(uploadId))
      const parts = partsToAssemble(session, files.map((p) => p.info), options.parts)
      await this.files.precheck(session.path, session) // fail before copying gigabytes
      const dir = this.#dir(uploadId)
      const commit = async (tmp: string, sha256: string) => {
        verifySha256(options.expectedSha256, sha256)
        const result = await this.files.commit(session.path, {
          tmp,
          sha256,
          metadata: session.metadata,
          ...(session.contentType !== undefined ? { contentType: session.contentType } : {}),
          ...uploadConditions(session),
        })
        await rm(dir, { recursive: true, force: true })
        this.#tails.forget(uploadId)
        return result
      }
      const [only] = parts
      if (parts.length === 1 && only!.size <= (session.maxBytes ?? Number.POSITIVE_INFINITY)) {
        // One part is the whole file, hashed as it arrived (a tus upload in one PATCH, or in many
        // to one instance): it becomes the file as it is, without copying or hashing it again.
        // Claimed first, so no append writes into it once it is the file.
        const whole = await claimPart(dir, only!.part)
        if (whole) {
          try {
            await truncate(whole, only!.size)
            return await commit(whole, only!.sha256)
          } catch (e) {
            await releasePart(dir, only!.part, whole, only!.size)
            throw e
          }
        }
      }
      const fileOf = new Map(files.map((p) => [p.info.part, p.file]))
      const tmp = this.layout.tmpFile()
      try {
        const digest = new DigestStream(session.maxBytes)
        async function* concatenated() {
          for (const p of parts) {
            if (p.size === 0) continue
            // Only the part's recorded bytes: a claimed file may hold more that an append has not committed.
            yield* createReadStream(fileOf.get(p.part)!, { start: 0, end: p.size - 1, highWaterMark: READ_CHUNK })
          }
        }
        await pipeline(concatenated, digest, tmpFileWriter(tmp))
        return await commit(tmp, digest.digest())
      } finally {
        await rm(tmp, { force: true })
      }
    })
  }

  async abort(uploadId: string): Promise<void> {
    await this.locks.run(uploadId, async () => {
      await this.#session(uploadId)
      await this.layout.discard(this.#dir(uploadId))
      this.#tails.forget(uploadId)
    })
  }

  /** Removes expired uploads, temporary files no live write owns, and leftovers of deletions. */
  async sweep(now: Date): Promise<{ removed: number }> {
    let removed = 0
    for (const id of await readdir(this.layout.uploadsDir).catch(() => [])) {
      const session = await this.#readSession(id)
      const abandoned = session
        ? isExpired(session.expiresAt, now)
        : await olderThan(join(this.layout.uploadsDir, id), this.policy.ttlMs, now)
      if (abandoned) {
        await this.locks.run(id, () => this.layout.discard(join(this.layout.uploadsDir, id)))
        this.#tails.forget(id)
        removed++
      }
    }
    for (const name of await readdir(this.layout.tmpDir).catch(() => [])) {
      const p = join(this.layout.tmpDir, name)
      if (await olderThan(p, STALE_TMP_MS, now)) {
        await rm(p, { force: true, recursive: true })
        removed++
      }
    }
    for (const name of await readdir(this.layout.trashDir).catch(() => [])) {
      await rm(join(this.layout.trashDir, name), { recursive: true, force: true })
      removed++
    }
    return { removed }
  }

  #dir(uploadId: string): string {
    return join(this.layout.uploadsDir, uploadId)
  }

  async #writeSession(session: SessionFile): Promise<void> {
    const tmp = this.layout.tmpFile()
    await writeFile(tmp, JSON.stringify(session))
    await rename(tmp, join(this.#dir(session.uploadId), 'session.json'))
  }

  /** Moves a finished part into the upload, then its record: the part counts from that moment. */
  async #commitPart(uploadId: string, tmp: string, info: PartInfo): Promise<void> {
    const dir = this.#dir(uploadId)
    await rename(tmp, join(dir, partName(info.part)))
    await writePartRecord(dir, info, this.layout.tmpFile())
  }

  async #readSession(uploadId: string): Promise<SessionFile | null> {
    try {
      const session = JSON.parse(await readFile(join(this.#dir(uploadId), 'session.json'), 'utf8')) as SessionFile
      return session.v === 1 ? session : null
    } catch {
      return null
    }
  }

  /** The live session, or `not_found` for an unknown, finished or expired one. */
  async #session(uploadId: string): Promise<SessionFile> {
    checkUploadId(uploadId)
    const session = await this.#readSession(uploadId)
    if (!session || isExpired(session.expiresAt)) throw uploadNotFound(uploadId)
    return session
  }

  /** Received parts whose bytes are there for their record, by number. */
  async #parts(uploadId: string): Promise<PartInfo[]> {
    return (await readPartFiles(this.#dir(uploadId))).map((p: PartFile) => p.info)
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
  hash?: Hash,
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

async function olderThan(path: string, ms: number, now: Date): Promise<boolean> {
  try {
    return now.getTime() - (await stat(path)).mtimeMs > ms
  } catch {
    return false
  }
}
