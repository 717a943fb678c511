/**
 * The s3 store's staging primitive (driver.ts `UploadStaging`). Everything of an upload lives under
 * `<prefix>.filestorage/uploads/<id>/`, so any instance sharing the bucket can take any part:
 *
 *   record.json        its record (upload-records.ts)
 *   parts/<n>          part n's record: its size, sha256 and the object holding its bytes
 *   bytes/<n>.<token>  a part's bytes, one object per part written (any size: held in memory up to a
 *                      part, else streamed up as a multipart upload of their own)
 *
 * A part sent by number writes its bytes, then replaces its record, then deletes the bytes the
 * record named before. An append writes its bytes, then creates the record of part highest+1 with
 * `If-None-Match: *`: of two appends at one offset, exactly one creates it, on every instance; the
 * other deletes its bytes. A tus append of any size is one part, kept whole: never lost, never
 * refused for being small (the pitfall of an S3 store that keeps a short tail aside and loses track
 * of its offset). The bytes of an append killed part-way are not kept (it was never acknowledged).
 *
 * Completing composes the parts into the file (compose.ts): a file that fits one part is read and
 * put in one request; a single part is copied onto the file's key with its metadata replaced (its
 * sha256 is the part's); several are composed into a multipart upload of the file's key, its
 * sha256 computed by reading the parts once and kept as its revision's digest. The commit makes it
 * visible conditionally (versions.ts); a completion that died is settled from the revision the
 * path holds (`lookupRevision`).
 */
import { randomBytes } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { CommitChecks, CommitOptions, FileToBe, PartWriter, PreparedFile, UploadStaging } from '../driver.js'
import { EMPTY_SHA256 } from '../digest.js'
import { isStorageError, payloadTooLarge, StorageError } from '../errors.js'
import { contentTypeFor } from '../file-attributes.js'
import { baseName } from '../paths.js'
import type { PartInfo, PutResult } from '../types.js'
import { receivedBytes } from '../uploads/rules.js'
import type { Bucket } from './bucket.js'
import { copyInParts } from './copies.js'
import { compose, readStaged, type StagedBytes } from './compose.js'
import type { S3Keys } from './keys.js'
import { decodeAttributes, encodeAttributes } from './object-attributes.js'
import { completeMultipart, ObjectUpload, type UploadShape } from './object-upload.js'
import { S3UploadRecords } from './upload-records.js'
import type { PendingBytes, Versions, VersionToBe } from './versions.js'
import type { Capabilities } from './capabilities.js'

/** A part's record. */
interface PartRecord extends PartInfo {
  /** The key of the object holding its bytes. */
  bytes: string
}

interface S3Prepared extends PreparedFile {
  toBe: VersionToBe
  pending: PendingBytes
}

const partGone = (part: number) => new StorageError('upload_incomplete', `part ${part} is gone or changed; send it again`)

export interface StagingContext {
  bucket: Bucket
  keys: S3Keys
  versions: Versions
  capabilities: Capabilities
  shape: UploadShape
  /** CopyObject copies at most this; a single larger part is copied in ranges. */
  singleCopyMax: number
}

export class S3Staging implements UploadStaging {
  readonly records: S3UploadRecords
  readonly #bucket: Bucket
  /** Part records by key and S3 ETag (a record's text names a unique bytes object, so an ETag is one record). */
  readonly #known = new LRUCache<string, PartRecord>({ max: 50_000 })

  constructor(private readonly context: StagingContext) {
    this.#bucket = context.bucket
    this.records = new S3UploadRecords(context.bucket, context.keys, context.capabilities)
  }

  async openPart(uploadId: string, part: number): Promise<PartWriter> {
    return new S3PartWriter(this, uploadId, part, 'replace')
  }

  async openAppend(uploadId: string, last: PartInfo | undefined): Promise<PartWriter> {
    return new S3PartWriter(this, uploadId, (last?.part ?? 0) + 1, 'insert')
  }

  async listParts(uploadId: string): Promise<PartInfo[]> {
    return (await this.partRecords(uploadId)).map(({ part, size, sha256 }) => ({ part, size, sha256 }))
  }

  /** Every part's record and bytes go (and multipart uploads of parts under way); the upload's record stays. */
  async discardParts(uploadId: string): Promise<void> {
    const record = this.records.recordKey(uploadId)
    await this.records.removeFolder(uploadId, (key) => key === record)
  }

  async prepare(uploadId: string, parts: PartInfo[], file: FileToBe): Promise<PreparedFile> {
    const byNumber = new Map((await this.partRecords(uploadId)).map((r) => [r.part, r]))
    const staged: StagedBytes[] = parts.map((p) => {
      const record = byNumber.get(p.part)
      if (record?.size !== p.size || record.sha256 !== p.sha256) throw partGone(p.part)
      return { key: record.bytes, size: record.size }
    })
    const size = receivedBytes(parts)
    if (file.maxBytes !== undefined && size > file.maxBytes) throw payloadTooLarge(file.maxBytes)
    const { keys, bucket, shape, singleCopyMax } = this.context
    const key = keys.file(file.path)
    const current = await bucket.head(key)
    const now = new Date().toISOString()
    const base = {
      path: file.path,
      key,
      contentType: contentTypeFor(baseName(file.path), file.contentType),
      metadata: file.metadata,
      revision: file.revision,
      size,
      created: current ? (decodeAttributes(current.meta).created ?? current.lastModified.toISOString()) : now,
      modified: now,
    }
    const prepared = (sha256: string, pending: PendingBytes): S3Prepared => ({ size, sha256, note: { key }, toBe: { ...base, sha256 }, pending })
    if (staged.length === 0) return prepared(EMPTY_SHA256, { kind: 'bytes', bytes: Buffer.alloc(0) })
    if (staged.length === 1) {
      const [{ sha256 }] = parts as [PartInfo]
      if (size <= singleCopyMax) return prepared(sha256, { kind: 'copy', sourceKey: staged[0]!.key })
      const target = { key, contentType: base.contentType, meta: encodeAttributes({ ...base, sha256 }) }
      return prepared(sha256, { kind: 'multipart', upload: await copyInParts(bucket, staged[0]!.key, undefined, size, target), withSha256: true })
    }
    if (size <= shape.partSize) {
      const { bytes, sha256 } = await readStaged(bucket, staged)
      return prepared(sha256, { kind: 'bytes', bytes })
    }
    const target = { key, contentType: base.contentType, meta: encodeAttributes(base) }
    const { upload, sha256 } = await compose(bucket, staged, target, shape.concurrency)
    return prepared(sha256, { kind: 'multipart', upload, withSha256: false })
  }

  commit(prepared: PreparedFile, options: CommitOptions): Promise<PutResult> {
    const { toBe, pending } = prepared as S3Prepared
    const conditions = { ...(options.mustNotExist ? { mustNotExist: true } : {}), ...(options.ifMatch ? { ifMatch: options.ifMatch } : {}) }
    return this.context.versions.commit(toBe, pending, conditions, { beforeVisible: options.beforeVisible, ...(options.announce ? { announce: options.announce } : {}) })
  }

  async discardPrepared(prepared: PreparedFile): Promise<void> {
    const { toBe, pending } = prepared as S3Prepared
    await this.context.versions.discard(toBe, pending)
  }

  partKey(uploadId: string, part: number): string {
    return `${this.records.folder(uploadId)}parts/${part}`
  }

  bytesKey(uploadId: string, part: number): string {
    return `${this.records.folder(uploadId)}bytes/${part}.${randomBytes(8).toString('hex')}`
  }

  get bucket(): Bucket {
    return this.#bucket
  }

  get shape(): UploadShape {
    return this.context.shape
  }

  /** The records of the parts received, by number. */
  async partRecords(uploadId: string): Promise<PartRecord[]> {
    const prefix = `${this.records.folder(uploadId)}parts/`
    const records: PartRecord[] = []
    for await (const objects of this.#bucket.keys(prefix)) {
      const read = await Promise.all(objects.map((o) => this.#partRecord(o.key, o.s3etag)))
      for (const r of read) if (r) records.push(r)
    }
    return records.sort((a, b) => a.part - b.part)
  }

  /** A part's record at `key` (the one whose ETag is `s3etag`, when known); null when it is gone. */
  async readPart(key: string): Promise<{ record: PartRecord; s3etag: string } | null> {
    const found = await this.#bucket.read(key)
    if (!found) return null
    const record = JSON.parse(found.text) as PartRecord
    this.#known.set(`${key}\n${found.s3etag}`, record)
    return { record, s3etag: found.s3etag }
  }

  async #partRecord(key: string, s3etag: string): Promise<PartRecord | null> {
    return this.#known.get(`${key}\n${s3etag}`) ?? (await this.readPart(key))?.record ?? null
  }

  remember(key: string, s3etag: string, record: PartRecord): void {
    this.#known.set(`${key}\n${s3etag}`, record)
  }
}

/** A part's bytes streaming into an object of their own, then the part's record. */
class S3PartWriter implements PartWriter {
  readonly base = 0
  readonly #bytesKey: string
  readonly #upload: ObjectUpload
  #closed = false

  constructor(
    private readonly staging: S3Staging,
    private readonly uploadId: string,
    readonly part: number,
    /** `replace` a part sent by number; `insert` an append, only while its number is free. */
    private readonly mode: 'replace' | 'insert',
  ) {
    this.#bytesKey = staging.bytesKey(uploadId, part)
    this.#upload = new ObjectUpload(staging.bucket, { key: this.#bytesKey }, staging.shape)
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#upload.write(chunk)
  }

  async close(): Promise<void> {
    const finished = await this.#upload.finish()
    if ('bytes' in finished) await this.staging.bucket.put(this.#bytesKey, finished.bytes)
    else await completeMultipart(this.staging.bucket, finished.multipart)
    this.#closed = true
  }

  async commit(info: PartInfo, _hash: Hash, checks: CommitChecks): Promise<boolean> {
    const { bucket } = this.staging
    try {
      await checks.before()
      if (!this.#closed) await this.close() // an empty part: an empty object, like any part's
    } catch (e) {
      await this.discard()
      throw e
    }
    const key = this.staging.partKey(this.uploadId, info.part)
    const record: PartRecord = { ...info, bytes: this.#bytesKey }
    const text = JSON.stringify(record)
    let s3etag: string | null
    if (this.mode === 'replace') {
      const previous = await this.staging.readPart(key)
      s3etag = (await bucket.put(key, text, {}, { ContentType: 'application/json' })) ?? ''
      if (previous && previous.record.bytes !== this.#bytesKey) await bucket.delete(previous.record.bytes).catch(() => {}) // else the sweep's
    } else {
      s3etag = await bucket.put(key, text, { ifNoneMatch: '*' }, { ContentType: 'application/json' })
      // Ours after all, when the SDK's retry of a first attempt that went through found its record.
      if (s3etag === null) {
        const now = await this.staging.readPart(key)
        s3etag = now?.record.bytes === this.#bytesKey ? now.s3etag : null
      }
      if (s3etag === null) {
        await this.discard()
        return false
      }
    }
    const placed = s3etag
    this.staging.remember(key, placed, record)
    try {
      await checks.after()
    } catch (e) {
      // Taken back (the upload ended meanwhile, or a size declared since does not fit), unless S3 did not answer: it may well count.
      if (isStorageError(e)) {
        await bucket.delete(key, placed).catch(() => {})
        await this.discard()
      }
      throw e
    }
    return true
  }

  async discard(): Promise<void> {
    if (this.#closed) await this.staging.bucket.delete(this.#bytesKey).catch(() => {})
    else await this.#upload.abort()
  }
}
