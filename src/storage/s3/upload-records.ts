/**
 * The records of uploads on the s3 store (driver.ts `UploadRecords`): one JSON object per upload,
 * `<prefix>.filestorage/uploads/<id>/record.json`, changed only by compare-and-set on its S3 ETag
 * (`If-Match`), created with `If-None-Match: *`; so every instance sharing the bucket agrees. Expiry
 * is found without reading every record: `expiry/<expiresAt>.<id>`, an empty object written just
 * before the record, lists uploads in the order they expire.
 *
 * Without conditional writes (capabilities.ts) records cannot change safely: uploads in parts and
 * tus are then refused with `501 not_supported`.
 */
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3'
import type { UploadRecords, UploadState, VersionedState } from '../driver.js'
import { notSupported, StorageError } from '../errors.js'
import type { Bucket } from './bucket.js'
import type { Capabilities } from './capabilities.js'
import { INTERNAL, type S3Keys } from './keys.js'

export class S3UploadRecords implements UploadRecords {
  constructor(
    private readonly bucket: Bucket,
    private readonly keys: S3Keys,
    private readonly capabilities: Capabilities,
  ) {}

  /** Where everything of an upload is kept: `<prefix>.filestorage/uploads/<id>/`. */
  folder(uploadId: string): string {
    return this.keys.reserved(`${INTERNAL.uploads}${uploadId}/`)
  }

  recordKey(uploadId: string): string {
    return `${this.folder(uploadId)}record.json`
  }

  #expiryKey(expiresAt: string, uploadId: string): string {
    return this.keys.reserved(`${INTERNAL.expiry}${expiresAt}.${uploadId}`)
  }

  async create(state: UploadState): Promise<void> {
    if (!(await this.capabilities.conditionalWrites())) {
      throw notSupported('uploads in parts and tus need conditional writes (If-Match, If-None-Match), which this S3 server does not have')
    }
    await this.bucket.put(this.#expiryKey(state.expiresAt, state.uploadId), '')
    const written = await this.bucket.put(this.recordKey(state.uploadId), JSON.stringify(state), { ifNoneMatch: '*' }, { ContentType: 'application/json' })
    if (written === null) throw new StorageError('store_unavailable', 'an upload with this id exists already; try again')
  }

  async read(uploadId: string): Promise<VersionedState | null> {
    const found = await this.bucket.read(this.recordKey(uploadId))
    return found && { state: JSON.parse(found.text) as UploadState, version: found.s3etag }
  }

  async update(uploadId: string, version: string, next: UploadState): Promise<boolean> {
    return (await this.bucket.put(this.recordKey(uploadId), JSON.stringify(next), { ifMatch: version }, { ContentType: 'application/json' })) !== null
  }

  /** Removes everything under the upload's folder (its multipart uploads too), then its expiry entry. */
  async remove(uploadId: string): Promise<void> {
    const found = await this.read(uploadId)
    await this.removeFolder(uploadId)
    if (found) await this.bucket.delete(this.#expiryKey(found.state.expiresAt, uploadId))
  }

  /** Removes what is under an upload's folder: its objects, and multipart uploads still open under it. */
  async removeFolder(uploadId: string, keep?: (key: string) => boolean): Promise<void> {
    const folder = this.folder(uploadId)
    await abortUnder(this.bucket, folder)
    for await (const objects of this.bucket.keys(folder)) {
      await this.bucket.deleteMany(objects.map((o) => o.key).filter((k) => !keep?.(k)))
    }
  }

  async expired(now: Date, limit: number): Promise<string[]> {
    const prefix = this.keys.reserved(INTERNAL.expiry)
    const ids: string[] = []
    for await (const objects of this.bucket.keys(prefix)) {
      for (const { key } of objects) {
        const entry = key.slice(prefix.length)
        const dot = entry.lastIndexOf('.')
        if (Date.parse(entry.slice(0, dot)) > now.getTime() || ids.length >= limit) return ids
        ids.push(entry.slice(dot + 1))
      }
    }
    return ids
  }

  /** Every expiry entry, in the order the uploads expire (the sweep looks for those whose record is gone). */
  async *entries(): AsyncGenerator<{ key: string; uploadId: string; lastModified: Date }> {
    const prefix = this.keys.reserved(INTERNAL.expiry)
    for await (const objects of this.bucket.keys(prefix)) {
      for (const { key, lastModified } of objects) yield { key, uploadId: key.slice(key.lastIndexOf('.') + 1), lastModified }
    }
  }
}

/** Aborts every multipart upload still open under `prefix` (of one upload's staged parts). */
export async function abortUnder(bucket: Bucket, prefix: string, olderThan?: Date): Promise<number> {
  let aborted = 0
  let KeyMarker: string | undefined
  let UploadIdMarker: string | undefined
  for (let page = 0; page < 100; page++) {
    const r = await bucket.client.send(
      new ListMultipartUploadsCommand({ Bucket: bucket.name, Prefix: prefix, ...(KeyMarker !== undefined ? { KeyMarker, UploadIdMarker } : {}) }),
    )
    for (const upload of r.Uploads ?? []) {
      if (olderThan && upload.Initiated && upload.Initiated > olderThan) continue
      await bucket.client.send(new AbortMultipartUploadCommand({ Bucket: bucket.name, Key: upload.Key, UploadId: upload.UploadId })).catch(() => {})
      aborted++
    }
    if (!r.IsTruncated) break
    KeyMarker = r.NextKeyMarker
    UploadIdMarker = r.NextUploadIdMarker
  }
  return aborted
}
