/**
 * Which open multipart uploads are the store's own, so that the sweep aborts those a dead process
 * left and never another tool's: S3 lists multipart uploads without their metadata or who started
 * them, and a bucket (or the store's prefix) may be shared with tools that upload in parts too.
 *
 * - uploads under `<prefix>.filestorage/` (staged parts) are the store's by their key;
 * - every other one (a PUT in parts, a completion, a copy in parts, all at a file's key) is
 *   **claimed**: `<prefix>.filestorage/multipart/<random>` names its key just before the
 *   CreateMultipartUpload, and its upload id just after; the claim goes once the upload is completed
 *   or aborted. A claim left by a dead process names the upload to abort, or, when the process died
 *   before the upload id was written, its key and the moment it was made: only an upload of that key
 *   started within a minute of it is taken as the store's.
 *
 * Multipart uploads the store started before it kept claims are left alone (a bucket lifecycle rule
 * `AbortIncompleteMultipartUpload` reclaims them).
 */
import { randomBytes } from 'node:crypto'
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3'
import type { Bucket } from './bucket.js'
import { isMissing } from './client.js'

/** What a claim says. */
interface Claim {
  key: string
  uploadId?: string
}

/** An upload of a claim without its id is the store's when it was started this close to the claim. */
const CLAIM_SLACK_MS = 60_000

export interface MultipartTarget {
  key: string
  contentType?: string
  meta?: Record<string, string>
}

export class MultipartClaims {
  constructor(
    private readonly bucket: Bucket,
    /** Where claims are kept: `<prefix>.filestorage/multipart/`. */
    private readonly prefix: string,
    /** Keys under this are the store's own without a claim: `<prefix>.filestorage/`. */
    private readonly internal: string,
  ) {}

  /** Starts a multipart upload of `target`, claimed unless its key is the store's own; the claim's key, to release. */
  async create(target: MultipartTarget): Promise<{ uploadId: string; claim?: string }> {
    const claim = target.key.startsWith(this.internal) ? undefined : `${this.prefix}${randomBytes(12).toString('hex')}`
    if (claim) await this.#write(claim, { key: target.key })
    const r = await this.bucket.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket.name,
        Key: target.key,
        ...(target.contentType !== undefined ? { ContentType: target.contentType } : {}),
        ...(target.meta ? { Metadata: target.meta } : {}),
      }),
    )
    const uploadId = r.UploadId!
    // Should this fail, the claim still names the key and the moment: the sweep finds the upload by them.
    if (claim) await this.#write(claim, { key: target.key, uploadId }).catch(() => {})
    return { uploadId, ...(claim ? { claim } : {}) }
  }

  /** The upload of `claim` was completed or aborted. */
  async release(claim: string | undefined): Promise<void> {
    if (claim) await this.bucket.delete(claim).catch(() => false)
  }

  /** Aborts the store's own uploads started before `olderThan` that are still open (left by dead processes); how many. */
  async sweep(olderThan: Date): Promise<number> {
    let aborted = await this.#abortUnder(this.internal, () => true, olderThan)
    for await (const objects of this.bucket.keys(this.prefix)) {
      for (const o of objects) {
        if (o.lastModified >= olderThan) continue
        const found = await this.bucket.read(o.key)
        if (!found) continue
        const claim = JSON.parse(found.text) as Claim
        if (claim.uploadId !== undefined) {
          if (await this.#abort(claim.key, claim.uploadId)) aborted++
        } else {
          const near = (initiated: Date) => Math.abs(initiated.getTime() - o.lastModified.getTime()) <= CLAIM_SLACK_MS
          aborted += await this.#abortUnder(claim.key, (key, initiated) => key === claim.key && near(initiated), olderThan)
        }
        await this.bucket.delete(o.key, found.s3etag)
      }
    }
    return aborted
  }

  async #write(claim: string, value: Claim): Promise<void> {
    await this.bucket.put(claim, JSON.stringify(value), {}, { ContentType: 'application/json' })
  }

  /** Aborts one upload; false when it was not open any more. */
  async #abort(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.bucket.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket.name, Key: key, UploadId: uploadId }))
      return true
    } catch (e) {
      if (isMissing(e)) return false
      throw e
    }
  }

  /** Aborts the uploads under `prefix` started before `olderThan` that `ours` takes. */
  async #abortUnder(prefix: string, ours: (key: string, initiated: Date) => boolean, olderThan: Date): Promise<number> {
    let aborted = 0
    let KeyMarker: string | undefined
    let UploadIdMarker: string | undefined
    for (let page = 0; page < 100; page++) {
      const r = await this.bucket.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket.name, Prefix: prefix, ...(KeyMarker !== undefined ? { KeyMarker, UploadIdMarker } : {}) }),
      )
      for (const upload of r.Uploads ?? []) {
        const initiated = upload.Initiated ?? new Date(0)
        if (initiated > olderThan || !ours(upload.Key!, initiated)) continue
        if (await this.#abort(upload.Key!, upload.UploadId!).catch(() => false)) aborted++
      }
      if (!r.IsTruncated) break
      KeyMarker = r.NextKeyMarker
      UploadIdMarker = r.NextUploadIdMarker
    }
    return aborted
  }
}
