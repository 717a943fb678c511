/**
 * Uploads in parts on the MongoDB store (SPEC 3.3). Everything lives in MongoDB, never on the local
 * disk, so any instance behind the load balancer can take any part:
 *
 *   uploads        the upload: where the file goes, with what, until when, and its size once known
 *   upload_parts   one record per part number (`<uploadId>:<n>`), naming the part's GridFS file
 *
 * Re-sending a part replaces its record, then deletes the old bytes. An append (tus) streams into a
 * GridFS file, then inserts the record of part highest+1, only if the upload still stands at the
 * client's offset: two appends at one offset compute the same number, and the unique `_id` lets
 * one insert win, on every instance (the only write FerretDB v1 makes atomic under concurrency).
 * Writes that may race an end or a size declared meanwhile look again after writing, and take back
 * what they wrote. Completing claims the upload (so two completions do not run at once), streams
 * the parts in order into an inline record or a GridFS file like any upload, writes the catalog
 * revision it is about to commit into the upload (its journal), commits, then marks the upload
 * finished with the stored file and removes its parts. A retry after a crash at any point finds
 * either that revision in the catalog (committed: the upload is finished then) or not (the
 * completion runs again); a finished upload answers the same file until it expires.
 */
import { type Collection, ObjectId } from 'mongodb'
import { setTimeout as sleep } from 'node:timers/promises'
import { appendRoom } from '../append-body.js'
import { checkAnnouncedSize } from '../digest.js'
import { isStorageError, offsetMismatch, StorageError } from '../errors.js'
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
import { type AppendedBytes, receiveAppend } from './append-bytes.js'
import type { FileAttributes } from './catalog.js'
import { isDuplicateKey } from './connection.js'
import type { GridFsBytes } from './gridfs-bytes.js'
import { ALL_IN_GRIDFS, type WriteRequest, type WrittenBytes } from './placement.js'
import type { PartDoc, UploadDoc } from './schema.js'

/** What the store does for uploads in parts: the same checks, writes and commits as a plain upload. */
export interface UploadFiles {
  precheck(path: string, conditions: WritePreconditions): Promise<unknown>
  write(source: AsyncIterable<Uint8Array>, request: Omit<WriteRequest, 'placement'> & Partial<WriteRequest>): Promise<WrittenBytes>
  /** Points the catalog at written bytes (as revision `rev` when given); deletes them when it cannot. */
  commit(
    path: string,
    bytes: WrittenBytes,
    attributes: Partial<FileAttributes>,
    conditions: WritePreconditions,
    rev?: ObjectId,
  ): Promise<PutResult>
  discard(bytes: WrittenBytes): Promise<void>
  /** The file at `path` now, with its catalog revision. */
  revisionAt(path: string): Promise<{ rev: ObjectId; file: StoredFile } | null>
}

/** Part records looked at per sweep for an upload that is gone. */
const ORPHAN_BATCH = 500

const partKey = (uploadId: string, part: number) => `${uploadId}:${part}`
const partInfo = (doc: PartDoc): PartInfo => ({ part: doc.part, size: doc.size, sha256: doc.sha256 })

export class MongoUploads {
  /** Where the last sweep's pass over part records stopped. */
  #orphanCursor = ''

  constructor(
    private readonly uploads: Collection<UploadDoc>,
    private readonly parts: Collection<PartDoc>,
    private readonly gridfs: GridFsBytes,
    private readonly policy: UploadPolicy,
    private readonly files: UploadFiles,
  ) {}

  async create(path: string, options: CreateUploadOptions): Promise<UploadSession> {
    checkCreateOptions(options)
    await this.files.precheck(path, options)
    const record = newUploadRecord(path, this.policy, options)
    await this.uploads.insertOne(toDoc(record))
    return publicSession(record)
  }

  async putPart(uploadId: string, part: number, body: ReadableStream<Uint8Array>, options: PutPartOptions = {}) {
    checkPartNumber(part)
    const session = await this.#live(uploadId)
    checkAnnouncedSize(options.expectedSize, session.partSizeLimit)
    const bytes = await this.files.write(bodyChunks(body), {
      placement: ALL_IN_GRIDFS,
      maxBytes: session.partSizeLimit,
      ...(options.expectedSize !== undefined ? { expectedSize: options.expectedSize } : {}),
      ...(options.expectedSha256 !== undefined ? { expectedSha256: options.expectedSha256 } : {}),
      filename: `upload ${uploadId} part ${part}`,
    })
    const doc = partDoc(uploadId, part, { ...bytes, gridfsId: bytes.gridfsId! }) // parts always go to GridFS
    let total: number
    try {
      const others = (await this.#parts(uploadId)).filter((p) => p.part !== part)
      total = receivedBytes(others) + doc.size
      checkTotal(fromDoc(session), total)
    } catch (e) {
      await this.files.discard(bytes)
      throw e
    }
    // The part it replaces, if any: its bytes are leased before the record lets go of them.
    const previous = await this.parts.findOne({ _id: doc._id })
    if (previous) await this.gridfs.leases.take(previous.gridfsId)
    // The sweeper has not counted this process dead, or the new bytes may be gone (lease-owners.ts).
    await this.gridfs.leases.owners.confirm(bytes.owner).catch(async (e: unknown) => {
      await this.files.discard(bytes)
      throw e
    })
    const replaced = await this.parts.findOneAndReplace({ _id: doc._id }, doc, { upsert: true, returnDocument: 'before' })
    if (replaced) {
      if (!replaced.gridfsId.equals(previous?.gridfsId)) await this.gridfs.leases.take(replaced.gridfsId)
      await this.gridfs.retire(replaced.gridfsId)
    }
    await this.#confirmPart(doc, total)
    return partInfo(doc)
  }

  /**
   * Appends a part at `options.offset` (see `StorageDriver.appendPart`): refused before any byte is
   * read when the upload stands elsewhere, streamed into GridFS, then committed by the insert of
   * part highest+1, which only one append at that offset wins.
   */
  async append(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    const session = fromDoc(await this.#live(uploadId))
    checkAppend(session, options.offset, receivedBytes(await this.#parts(uploadId)), 0)
    const maxBytes = appendRoom(session, options.offset, options.expectedSize)
    const bytes = await receiveAppend(body, this.gridfs, options, {
      maxBytes,
      filename: `upload ${uploadId} at ${options.offset}`,
    })
    return this.#commitAppend(uploadId, options.offset, bytes)
  }

  async #commitAppend(uploadId: string, offset: number, bytes: AppendedBytes): Promise<AppendResult> {
    const discard = () => (bytes.gridfsId ? this.gridfs.retire(bytes.gridfsId).catch(() => {}) : undefined)
    let parts: PartDoc[]
    try {
      const current = fromDoc(await this.#live(uploadId))
      parts = await this.#parts(uploadId)
      checkAppend(current, offset, receivedBytes(parts), bytes.size)
    } catch (e) {
      await discard()
      throw e
    }
    const received = receivedBytes(parts)
    if (!bytes.gridfsId) return { part: null, offset: received, partial: bytes.partial }
    const doc = partDoc(uploadId, (parts.at(-1)?.part ?? 0) + 1, { ...bytes, gridfsId: bytes.gridfsId })
    await this.gridfs.leases.owners.confirm(bytes.owner).catch(async (e: unknown) => {
      await discard()
      throw e
    })
    if (!(await this.#insertPart(doc))) {
      await discard()
      throw offsetMismatch(offset, receivedBytes(await this.#parts(uploadId))) // another append at this offset came first
    }
    await this.#confirmPart(doc, received + doc.size)
    return { part: partInfo(doc), offset: received + doc.size, partial: bytes.partial }
  }

  /**
   * Inserts a new part's record; false when its number is taken. A network error is thrown as it
   * is, with the bytes left to their lease: the insert may have happened, and the sweeper knows.
   */
  async #insertPart(doc: PartDoc): Promise<boolean> {
    try {
      await this.parts.insertOne(doc)
      return true
    } catch (e) {
      if (!isDuplicateKey(e)) throw e
      // Ours after all, when a retried insert finds the first attempt's record.
      return (await this.parts.findOne({ _id: doc._id }))?.gridfsId.equals(doc.gridfsId) ?? false
    }
  }

  /**
   * Looks at the upload again once a part's record is in: when it ended meanwhile (completed,
   * aborted, expired) or was given a size the parts now exceed, the part is taken back. The other
   * side looks again after its own write too (`#finish`, `declareSize`), so one of the two sees the other.
   */
  async #confirmPart(doc: PartDoc, total: number): Promise<void> {
    try {
      checkTotal(fromDoc(await this.#live(doc.uploadId)), total)
    } catch (e) {
      if (isStorageError(e)) await this.#removeParts([doc]) // not when MongoDB did not answer: the part may well count
      throw e
    }
  }

  /** Sets the size of the whole (see `StorageDriver.declareUploadSize`). */
  async declareSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    const session = fromDoc(await this.#live(uploadId))
    checkDeclaredSize(session, receivedBytes(await this.#parts(uploadId)), totalSize)
    if (session.totalSize === undefined) {
      await this.uploads.updateOne({ _id: uploadId, totalSize: { $exists: false } }, { $set: { totalSize } })
      // Looks again after writing: another size declared at the same time, or an append that went
      // past this size meanwhile, makes this declaration fail (and undoes it when it was written).
      const after = fromDoc(await this.#live(uploadId))
      try {
        checkDeclaredSize(after, receivedBytes(await this.#parts(uploadId)), totalSize)
      } catch (e) {
        if (after.totalSize === totalSize) {
          await this.uploads.updateOne({ _id: uploadId, totalSize }, { $unset: { totalSize: '' } })
        }
        throw e
      }
    }
    return this.status(uploadId)
  }

  async status(uploadId: string, options: UploadStatusOptions = {}): Promise<UploadStatus> {
    const session = await this.#live(uploadId, options.finished)
    return uploadStatusOf(fromDoc(session), (await this.#parts(uploadId)).map(partInfo))
  }

  async complete(uploadId: string, options: CompleteUploadOptions = {}): Promise<PutResult> {
    const claimed = await this.#claim(uploadId)
    if ('result' in claimed) return claimed.result
    const session = claimed.doc
    // Renewed every third of its lease while this completion works.
    const renewing = setInterval(() => void this.#renewClaim(uploadId), this.policy.completionLeaseMs / 3)
    try {
      const record = fromDoc(session)
      if (session.committingRev) {
        // A completion died after its journal: its revision in the catalog means it committed.
        const now = await this.files.revisionAt(record.path)
        if (now?.rev.equals(session.committingRev)) return await this.#finishCompleted(uploadId, { file: now.file, created: false }, now.rev)
      }
      const received = await this.#parts(uploadId)
      const byNumber = new Map(received.map((p) => [p.part, p]))
      const parts = partsToAssemble(record, received.map(partInfo), options.parts).map((p) => byNumber.get(p.part)!)
      const conditions = uploadConditions(record)
      await this.files.precheck(record.path, conditions) // fail before copying gigabytes
      const bytes = await this.files.write(this.#concatenated(parts), {
        expectedSize: receivedBytes(parts),
        ...(record.maxBytes !== undefined ? { maxBytes: record.maxBytes } : {}),
        ...(options.expectedSha256 !== undefined ? { expectedSha256: options.expectedSha256 } : {}),
        filename: record.path,
      })
      const rev = new ObjectId()
      await this.uploads.updateOne({ _id: uploadId }, { $set: { committingRev: rev } })
      failpoint('mongo.complete.journaled')
      const result = await this.files.commit(
        record.path,
        bytes,
        { metadata: record.metadata, ...(record.contentType !== undefined ? { contentType: record.contentType } : {}) },
        conditions,
        rev,
      )
      failpoint('mongo.complete.committed')
      // The file is stored; should this fail, the journal tells a retry so.
      return await this.#finishCompleted(uploadId, result, rev).catch(() => result)
    } catch (e) {
      // Stays open: the client may send what is missing and complete again.
      await this.uploads.updateOne({ _id: uploadId }, { $unset: { completingUntil: '' } }).catch(() => {})
      throw e
    } finally {
      clearInterval(renewing)
    }
  }

  /** Marks a completed upload finished with what it stored, then removes its parts; answers `result`. */
  async #finishCompleted(uploadId: string, result: PutResult, rev: ObjectId): Promise<PutResult> {
    const stored = { rev, fileJson: JSON.stringify(result.file), created: result.created }
    await this.uploads.updateOne({ _id: uploadId }, { $set: { finished: true, result: stored }, $unset: { completingUntil: '' } })
    await this.#removeParts(await this.#parts(uploadId)).catch(() => {}) // else the sweeper's, once the upload expires
    return result
  }

  /** What a finished completion stored: the file now at its path if it is still that revision, else as it was stored. */
  async #storedResult(session: UploadDoc): Promise<PutResult> {
    const { rev, fileJson, created } = session.result!
    const now = await this.files.revisionAt(session.path)
    return { file: now?.rev.equals(rev) ? now.file : (JSON.parse(fileJson) as StoredFile), created }
  }

  async abort(uploadId: string): Promise<void> {
    await this.#live(uploadId)
    await this.#finish(uploadId)
  }

  /** Removes expired uploads with their parts; returns how many. */
  async sweepExpired(now: Date): Promise<number> {
    let removed = 0
    for (let round = 0; round < 100; round++) {
      const expired = await this.uploads.find({ expiresAt: { $lte: now } }).limit(100).toArray()
      for (const upload of expired) {
        await this.#finish(upload._id)
        removed++
      }
      if (expired.length < 100) break
    }
    return removed
  }

  /**
   * Removes parts whose upload is gone: an append commits its part, finds the upload ended meanwhile
   * and takes the part back, unless the process dies in between. Parts older than `before` only (a
   * live append's are younger), a bounded batch per run, resuming where the last run stopped.
   */
  async sweepOrphanParts(before: Date): Promise<number> {
    const batch = await this.parts
      .find({ _id: { $gt: this.#orphanCursor }, received: { $lt: before } })
      .sort({ _id: 1 })
      .limit(ORPHAN_BATCH)
      .toArray()
    this.#orphanCursor = batch.length < ORPHAN_BATCH ? '' : batch.at(-1)!._id
    const uploadIds = [...new Set(batch.map((p) => p.uploadId))]
    const live = await this.uploads.find({ _id: { $in: uploadIds } }, { projection: { _id: 1 } }).toArray()
    const liveIds = new Set(live.map((u) => u._id))
    const orphans = batch.filter((p) => !liveIds.has(p.uploadId))
    await this.#removeParts(orphans)
    return orphans.length
  }

  /** The upload, or `not_found` for an unknown, finished (unless `finished` is allowed) or expired one. */
  async #live(uploadId: string, finished = false): Promise<UploadDoc> {
    checkUploadId(uploadId)
    const session = await this.uploads.findOne({ _id: uploadId })
    if (!session || (session.finished && !finished) || isExpired(session.expiresAt.toISOString())) throw uploadNotFound(uploadId)
    return session
  }

  /**
   * Claims a live upload for one completion, waiting while another completion holds it (it renews
   * its claim while it works; one that died lets go within the policy's completionLeaseMs). An upload finished by a
   * completion answers what it stored.
   */
  async #claim(uploadId: string): Promise<{ doc: UploadDoc } | { result: PutResult }> {
    checkUploadId(uploadId)
    const deadline = Date.now() + 2 * this.policy.completionLeaseMs
    for (;;) {
      const session = await this.uploads.findOne({ _id: uploadId })
      if (!session || isExpired(session.expiresAt.toISOString())) throw uploadNotFound(uploadId)
      if (session.finished) {
        if (session.result) return { result: await this.#storedResult(session) }
        throw uploadNotFound(uploadId)
      }
      const now = new Date()
      const claimed = await this.uploads.findOneAndUpdate(
        {
          _id: uploadId,
          finished: { $ne: true },
          $or: [{ completingUntil: { $exists: false } }, { completingUntil: { $lt: now } }],
        },
        { $set: { completingUntil: new Date(now.getTime() + this.policy.completionLeaseMs) } },
        { returnDocument: 'after' },
      )
      if (claimed) return { doc: claimed }
      if (Date.now() > deadline) throw new StorageError('upload_incomplete', 'the upload is being completed by another request')
      await sleep(250)
    }
  }

  async #renewClaim(uploadId: string): Promise<void> {
    await this.uploads
      .updateOne({ _id: uploadId, finished: { $ne: true } }, { $set: { completingUntil: new Date(Date.now() + this.policy.completionLeaseMs) } })
      .catch(() => {}) // a claim not renewed runs out: another completion may then go on
  }

  /** Received parts, by number. */
  #parts(uploadId: string): Promise<PartDoc[]> {
    return this.parts.find({ uploadId }).sort({ part: 1 }).toArray()
  }

  async *#concatenated(parts: PartDoc[]): AsyncGenerator<Uint8Array> {
    for (const part of parts) {
      const stream = await this.gridfs.open(part.gridfsId, part.size)
      if (!stream) throw new StorageError('upload_incomplete', `part ${part.part} is gone; send it again`)
      yield* stream as AsyncIterable<Uint8Array>
    }
  }

  /** Ends an upload: marks it finished, removes its parts and their bytes, then the upload itself. */
  async #finish(uploadId: string): Promise<void> {
    await this.uploads.updateOne({ _id: uploadId }, { $set: { finished: true } })
    await this.#removeParts(await this.#parts(uploadId))
    await this.uploads.deleteOne({ _id: uploadId })
  }

  /** Removes parts' records, then their bytes (leased first, so a failure part-way leaves them to the sweeper). */
  async #removeParts(parts: PartDoc[]): Promise<void> {
    if (parts.length === 0) return
    for (const part of parts) await this.gridfs.leases.take(part.gridfsId)
    // A record re-sent meanwhile names other bytes, and stays.
    await this.parts.deleteMany({ $or: parts.map((p) => ({ _id: p._id, gridfsId: p.gridfsId })) })
    await this.gridfs.retireAll(parts.map((p) => p.gridfsId))
  }
}

function toDoc(record: UploadRecord): UploadDoc {
  return {
    _id: record.uploadId,
    path: record.path,
    partSizeLimit: record.partSizeLimit,
    createdAt: new Date(record.createdAt),
    expiresAt: new Date(record.expiresAt),
    metadataJson: JSON.stringify(record.metadata),
    ...(record.contentType !== undefined ? { contentType: record.contentType } : {}),
    ...(record.mustNotExist ? { mustNotExist: true } : {}),
    ...(record.ifMatch ? { ifMatch: record.ifMatch } : {}),
    ...(record.maxBytes !== undefined ? { maxBytes: record.maxBytes } : {}),
    ...(record.totalSize !== undefined ? { totalSize: record.totalSize } : {}),
    ...(record.attributes !== undefined ? { attributesJson: JSON.stringify(record.attributes) } : {}),
    ...(record.owner !== undefined ? { owner: record.owner } : {}),
  }
}

function fromDoc(doc: UploadDoc): UploadRecord {
  return {
    uploadId: doc._id,
    path: doc.path,
    partSizeLimit: doc.partSizeLimit,
    createdAt: doc.createdAt.toISOString(),
    expiresAt: doc.expiresAt.toISOString(),
    metadata: JSON.parse(doc.metadataJson) as Record<string, unknown>,
    ...(doc.contentType !== undefined ? { contentType: doc.contentType } : {}),
    ...(doc.mustNotExist ? { mustNotExist: true } : {}),
    ...(doc.ifMatch ? { ifMatch: doc.ifMatch } : {}),
    ...(doc.maxBytes !== undefined ? { maxBytes: doc.maxBytes } : {}),
    ...(doc.totalSize !== undefined ? { totalSize: doc.totalSize } : {}),
    ...(doc.attributesJson !== undefined ? { attributes: JSON.parse(doc.attributesJson) as Record<string, string> } : {}),
    ...(doc.owner !== undefined ? { owner: doc.owner } : {}),
  }
}

function partDoc(uploadId: string, part: number, bytes: { size: number; sha256: string; gridfsId: ObjectId }): PartDoc {
  const { size, sha256, gridfsId } = bytes
  return { _id: partKey(uploadId, part), uploadId, part, size, sha256, gridfsId, received: new Date() }
}
