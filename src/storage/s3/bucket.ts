/**
 * The S3 calls the store makes on its bucket, each answering what the store needs: a HEAD or GET as
 * an `ObjectHead` (null when absent), conditional writes and deletes as true/false (whether the
 * condition held), listings as pages. Failures other than those expected are thrown as they are;
 * the driver turns them into `StorageError`s (client.ts).
 */
import type { Readable } from 'node:stream'
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3'
import { StorageError } from '../errors.js'
import { isConditionFailed, isMissing, statusOf } from './client.js'
import { INTERNAL } from './keys.js'
import { MultipartClaims } from './multipart-claims.js'

/** What S3 says of one version of an object. */
export interface ObjectHead {
  key: string
  /** S3's own ETag (quoted), which conditional requests compare. */
  s3etag: string
  size: number
  contentType?: string
  lastModified: Date
  /** Its user metadata, as S3 returned it. */
  meta: Record<string, string>
  /** Hex SHA-256 of the whole object when S3 keeps one (a single request's `x-amz-checksum-sha256`). */
  checksumSha256?: string
}

/** An object as a listing shows it. */
export interface ListedObject {
  key: string
  s3etag: string
  size: number
  lastModified: Date
}

export interface ListPage {
  objects: ListedObject[]
  /** Common prefixes (with a delimiter). */
  prefixes: string[]
}

/** Conditions of a write or delete (S3's own ETags). */
export interface S3Conditions {
  ifMatch?: string
  ifNoneMatch?: '*'
}

/** DeleteObjects takes at most this many keys. */
export const DELETE_BATCH = 1000

/** A range past the end of the object (416). */
export class RangeBeyondEnd extends Error {}

export class Bucket {
  /** Which multipart uploads are the store's own (multipart-claims.ts): every one the store starts goes through it. */
  readonly claims: MultipartClaims

  constructor(
    readonly client: S3Client,
    readonly name: string,
    /** The store's bookkeeping prefix, `<prefix>.filestorage/` (keys.ts). */
    internal: string,
  ) {
    this.claims = new MultipartClaims(this, `${internal}${INTERNAL.multipart}`, internal)
  }

  /** `x-amz-copy-source` (and RenameObject's source) for `key`: the bucket, then the key URL-encoded segment by segment. */
  copySource(key: string): string {
    return `${this.name}/${key.split('/').map(encodeURIComponent).join('/')}`
  }

  async head(key: string): Promise<ObjectHead | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, ChecksumMode: 'ENABLED' }))
      const checksum = r.ChecksumSHA256
      const whole = checksum !== undefined && !checksum.includes('-') && (r.ChecksumType === undefined || r.ChecksumType === 'FULL_OBJECT')
      return {
        key,
        s3etag: r.ETag ?? '',
        size: r.ContentLength ?? 0,
        ...(r.ContentType !== undefined ? { contentType: r.ContentType } : {}),
        lastModified: r.LastModified ?? new Date(0),
        meta: r.Metadata ?? {},
        ...(whole ? { checksumSha256: Buffer.from(checksum, 'base64').toString('hex') } : {}),
      }
    } catch (e) {
      if (isMissing(e)) return null
      throw e
    }
  }

  /**
   * Opens an object (a byte range of it): its head and its body, together, from one response, so
   * they describe the same version. `ifMatch`: only while it is that version (null otherwise).
   * Throws `RangeBeyondEnd` when the range starts past the end.
   */
  async get(key: string, options: { range?: { start: number; end: number }; ifMatch?: string } = {}): Promise<{ head: ObjectHead; body: Readable } | null> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: this.name,
          Key: key,
          ...(options.range ? { Range: `bytes=${options.range.start}-${options.range.end}` } : {}),
          ...(options.ifMatch !== undefined ? { IfMatch: options.ifMatch } : {}),
        }),
      )
      const total = r.ContentRange ? Number(/\/(\d+)$/.exec(r.ContentRange)?.[1]) : r.ContentLength
      return {
        head: {
          key,
          s3etag: r.ETag ?? '',
          size: total ?? 0,
          ...(r.ContentType !== undefined ? { contentType: r.ContentType } : {}),
          lastModified: r.LastModified ?? new Date(0),
          meta: r.Metadata ?? {},
        },
        body: r.Body as Readable,
      }
    } catch (e) {
      if (isMissing(e) || (options.ifMatch !== undefined && isConditionFailed(e))) return null
      if (statusOf(e) === 416) throw new RangeBeyondEnd()
      throw e
    }
  }

  /** The whole of a small object (a record), with its ETag; null when absent. */
  async read(key: string): Promise<{ text: string; s3etag: string } | null> {
    const opened = await this.get(key)
    if (!opened) return null
    const chunks: Buffer[] = []
    for await (const chunk of opened.body) chunks.push(chunk as Buffer)
    return { text: Buffer.concat(chunks).toString('utf8'), s3etag: opened.head.s3etag }
  }

  /** Writes an object; its ETag, or null when `conditions` did not hold (412, or 404 for an If-Match on nothing). */
  async put(key: string, body: Uint8Array | string, conditions: S3Conditions = {}, extra: Partial<PutObjectCommandInput> = {}): Promise<string | null> {
    try {
      const r = await this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: typeof body === 'string' ? Buffer.from(body) : body,
          ...(conditions.ifMatch !== undefined ? { IfMatch: conditions.ifMatch } : {}),
          ...(conditions.ifNoneMatch !== undefined ? { IfNoneMatch: conditions.ifNoneMatch } : {}),
          ...extra,
        }),
      )
      return r.ETag ?? ''
    } catch (e) {
      if (isConditionFailed(e) || (conditions.ifMatch !== undefined && isMissing(e))) return null
      throw e
    }
  }

  /** Deletes an object; false when `ifMatch` did not hold (or it was gone: S3 answers both 412). */
  async delete(key: string, ifMatch?: string): Promise<boolean> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key, ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}) }))
      return true
    } catch (e) {
      if (isMissing(e)) return ifMatch === undefined
      if (ifMatch !== undefined && isConditionFailed(e)) return false
      throw e
    }
  }

  /** Deletes keys (those absent too), a thousand a request; throws when some could not be deleted. */
  async deleteMany(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH)
      const r = await this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }))
      const failed = (r.Errors ?? []).filter((err) => err.Code !== 'NoSuchKey')
      if (failed.length > 0) {
        throw new StorageError('store_unavailable', `the S3 server could not delete ${failed.length} objects: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`.trim())
      }
    }
  }

  /**
   * Pages of the objects under `prefix` in key order (UTF-8 bytes), after `startAfter`; with a
   * delimiter, one level (folders as common prefixes). Pages are chained by continuation tokens.
   */
  async *list(prefix: string, options: { delimiter?: string; startAfter?: string; pageSize?: number } = {}): AsyncGenerator<ListPage> {
    let token: string | undefined
    for (;;) {
      const r = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.name,
          Prefix: prefix,
          ...(options.delimiter !== undefined ? { Delimiter: options.delimiter } : {}),
          ...(token === undefined && options.startAfter !== undefined ? { StartAfter: options.startAfter } : {}),
          ...(token !== undefined ? { ContinuationToken: token } : {}),
          MaxKeys: options.pageSize ?? 1000,
        }),
      )
      yield {
        objects: (r.Contents ?? []).map((o) => ({ key: o.Key!, s3etag: o.ETag ?? '', size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) })),
        prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!),
      }
      if (!r.IsTruncated || !r.NextContinuationToken) return
      token = r.NextContinuationToken
    }
  }

  /** Every key under `prefix`, page by page. */
  async *keys(prefix: string): AsyncGenerator<ListedObject[]> {
    for await (const page of this.list(prefix)) yield page.objects
  }

  /** Whether anything at all has a key under `prefix`. */
  async any(prefix: string): Promise<boolean> {
    for await (const page of this.list(prefix, { pageSize: 1 })) return page.objects.length > 0 || page.prefixes.length > 0
    return false
  }
}
