/**
 * The MongoDB store's staging primitive (driver.ts `UploadStaging`). Everything lives in MongoDB,
 * never on the local disk, so any instance behind the load balancer can take any part:
 *
 *   uploads        the upload's record (upload-records.ts)
 *   upload_parts   one record per part number (`<uploadId>:<n>`), naming the part's GridFS file
 *
 * A part's bytes stream into a new GridFS file, under a lease, created at the first byte; then its
 * record is written. Re-sending a part replaces its record, then deletes the old bytes. An append
 * inserts the record of part highest+1: two appends at one offset compute the same key, and the
 * unique `_id` lets one insert win, on every instance (the only write FerretDB v1 makes atomic under
 * concurrency). A part the engine takes back after its commit (the upload ended meanwhile) loses
 * its record, then its bytes. Completing streams the parts in order into an inline record or a
 * GridFS file like any upload, and commits it as the catalog revision the engine chose.
 */
import type { Hash } from 'node:crypto'
import type { Collection, ObjectId } from 'mongodb'
import type { CommitChecks, CommitOptions, FileToBe, PartWriter, PreparedFile, UploadStaging } from '../driver.js'
import { isStorageError, StorageError } from '../errors.js'
import type { PartInfo, PutResult, WritePreconditions } from '../types.js'
import { receivedBytes } from '../uploads/rules.js'
import type { FileAttributes } from './catalog.js'
import { isDuplicateKey } from './connection.js'
import type { GridFsBytes, GridFsWriter } from './gridfs-bytes.js'
import type { WriteRequest, WrittenBytes } from './placement.js'
import type { PartDoc, UploadDoc } from './schema.js'
import { MongoUploadRecords } from './upload-records.js'

/** What the staging needs of the store's own writes (mongo-driver.ts). */
export interface MongoFiles {
  write(source: AsyncIterable<Uint8Array>, request: Omit<WriteRequest, 'placement'>): Promise<WrittenBytes>
  /** Points the catalog at written bytes as revision `rev`; deletes them when it cannot. */
  commit(
    path: string,
    bytes: WrittenBytes,
    attributes: Partial<FileAttributes>,
    conditions: WritePreconditions,
    rev: string,
    beforeVisible: (result: PutResult) => Promise<void>,
    announce?: CommitOptions['announce'],
  ): Promise<PutResult>
  discard(bytes: WrittenBytes): Promise<void>
}

interface MongoPrepared extends PreparedFile {
  bytes: WrittenBytes
  target: FileToBe
}

const partKey = (uploadId: string, part: number) => `${uploadId}:${part}`
const partInfo = (doc: PartDoc): PartInfo => ({ part: doc.part, size: doc.size, sha256: doc.sha256 })

export class MongoStaging implements UploadStaging {
  readonly records: MongoUploadRecords

  constructor(
    uploads: Collection<UploadDoc>,
    readonly parts: Collection<PartDoc>,
    readonly gridfs: GridFsBytes,
    private readonly files: MongoFiles,
  ) {
    this.records = new MongoUploadRecords(uploads)
  }

  async openPart(uploadId: string, part: number): Promise<PartWriter> {
    return new MongoPartWriter(this, uploadId, part, 'replace')
  }

  async openAppend(uploadId: string, last: PartInfo | undefined): Promise<PartWriter> {
    return new MongoPartWriter(this, uploadId, (last?.part ?? 0) + 1, 'insert')
  }

  async listParts(uploadId: string): Promise<PartInfo[]> {
    return (await this.#parts(uploadId)).map(partInfo)
  }

  async discardParts(uploadId: string): Promise<void> {
    await this.removeParts(await this.#parts(uploadId))
  }

  async prepare(uploadId: string, parts: PartInfo[], target: FileToBe): Promise<PreparedFile> {
    const byNumber = new Map((await this.#parts(uploadId)).map((p) => [p.part, p]))
    const docs = parts.map((p) => {
      const doc = byNumber.get(p.part)
      if (doc?.size !== p.size || doc.sha256 !== p.sha256) throw partGone(p.part)
      return doc
    })
    const bytes = await this.files.write(this.#concatenated(docs), {
      expectedSize: receivedBytes(parts),
      ...(target.maxBytes !== undefined ? { maxBytes: target.maxBytes } : {}),
      filename: target.path,
    })
    const prepared: MongoPrepared = { size: bytes.size, sha256: bytes.sha256, note: {}, bytes, target }
    return prepared
  }

  commit(prepared: PreparedFile, options: CommitOptions): Promise<PutResult> {
    const { bytes, target } = prepared as MongoPrepared
    const { mustNotExist, ifMatch, beforeVisible, announce } = options
    return this.files.commit(
      target.path,
      bytes,
      { metadata: target.metadata, ...(target.contentType !== undefined ? { contentType: target.contentType } : {}) },
      { ...(mustNotExist ? { mustNotExist } : {}), ...(ifMatch ? { ifMatch } : {}) },
      target.revision,
      beforeVisible,
      announce,
    )
  }

  discardPrepared(prepared: PreparedFile): Promise<void> {
    return this.files.discard((prepared as MongoPrepared).bytes)
  }

  /** Removes parts' records, then their bytes (leased first, so a failure part-way leaves them to the sweeper). */
  async removeParts(parts: PartDoc[]): Promise<void> {
    if (parts.length === 0) return
    for (const part of parts) await this.gridfs.leases.take(part.gridfsId)
    // A record re-sent meanwhile names other bytes, and stays.
    await this.parts.deleteMany({ $or: parts.map((p) => ({ _id: p._id, gridfsId: p.gridfsId })) })
    await this.gridfs.retireAll(parts.map((p) => p.gridfsId))
  }

  /** Received parts, by number. */
  #parts(uploadId: string): Promise<PartDoc[]> {
    return this.parts.find({ uploadId }).sort({ part: 1 }).toArray()
  }

  async *#concatenated(parts: PartDoc[]): AsyncGenerator<Uint8Array> {
    for (const part of parts) {
      const stream = await this.gridfs.open(part.gridfsId, part.size)
      if (!stream) throw partGone(part.part)
      yield* stream as AsyncIterable<Uint8Array>
    }
  }
}

const partGone = (part: number) => new StorageError('upload_incomplete', `part ${part} is gone or changed; send it again`)

/** A part's bytes streaming into a GridFS file (made at the first byte), then its record. */
class MongoPartWriter implements PartWriter {
  readonly base = 0
  #writer: GridFsWriter | undefined
  #closed = false

  constructor(
    private readonly staging: MongoStaging,
    private readonly uploadId: string,
    readonly part: number,
    /** `replace` a part sent by number; `insert` an append, only while its number is free. */
    private readonly mode: 'replace' | 'insert',
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return
    this.#writer ??= await this.staging.gridfs.create(`upload ${this.uploadId} part ${this.part}`)
    await this.#writer.write(chunk)
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.#writer?.finish()
  }

  async commit(info: PartInfo, _hash: Hash, checks: CommitChecks): Promise<boolean> {
    const { gridfs, parts } = this.staging
    try {
      await checks.before()
      if (!this.#writer) {
        // An empty part sent by number: an empty GridFS file, like any part's.
        this.#writer = await gridfs.create(`upload ${this.uploadId} part ${this.part}`)
        await this.#writer.finish()
      }
    } catch (e) {
      await this.discard()
      throw e
    }
    const { id, owner } = this.#writer
    const doc: PartDoc = { _id: partKey(this.uploadId, info.part), uploadId: this.uploadId, ...info, gridfsId: id, received: new Date() }
    // The part it replaces, if any: its bytes are leased before the record lets go of them.
    const previous = this.mode === 'replace' ? await parts.findOne({ _id: doc._id }) : null
    if (previous) await gridfs.leases.take(previous.gridfsId)
    // The sweeper has not counted this process dead, or the new bytes may be gone (lease-owners.ts).
    await gridfs.leases.owners.confirm(owner).catch(async (e: unknown) => {
      await this.discard()
      throw e
    })
    if (this.mode === 'replace') {
      const replaced = await parts.findOneAndReplace({ _id: doc._id }, doc, { upsert: true, returnDocument: 'before' })
      if (replaced) {
        if (!replaced.gridfsId.equals(previous?.gridfsId)) await gridfs.leases.take(replaced.gridfsId)
        await gridfs.retire(replaced.gridfsId)
      }
    } else if (!(await this.#insert(doc))) {
      await this.discard()
      return false
    }
    try {
      await checks.after()
    } catch (e) {
      if (isStorageError(e)) await this.staging.removeParts([doc]) // not when MongoDB did not answer: the part may well count
      throw e
    }
    return true
  }

  async discard(): Promise<void> {
    const writer = this.#writer
    if (!writer) return
    this.#writer = undefined
    // Unfinished, its lease stays: the sweeper deletes whatever a write still in flight adds after this.
    if (this.#closed) await this.staging.gridfs.retire(writer.id).catch(() => {})
    else await writer.abort().catch(() => {})
  }

  /**
   * Inserts a new part's record; false when its number is taken. A network error is thrown as it
   * is, with the bytes left to their lease: the insert may have happened, and the sweeper knows.
   */
  async #insert(doc: PartDoc): Promise<boolean> {
    try {
      await this.staging.parts.insertOne(doc)
      return true
    } catch (e) {
      if (!isDuplicateKey(e)) throw e
      // Ours after all, when a retried insert finds the first attempt's record.
      return ((await this.staging.parts.findOne({ _id: doc._id }))?.gridfsId as ObjectId | undefined)?.equals(doc.gridfsId) ?? false
    }
  }
}
