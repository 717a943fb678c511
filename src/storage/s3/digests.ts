/**
 * The sha256 of versions whose metadata could not carry it.
 *
 * A version written in parts (a large PUT, a completed upload) gets its metadata when its multipart
 * upload is created, before its bytes, so before their sha256 is known. Its metadata carries its
 * revision (`fs-rev`, unique per version written), and its sha256 goes into a small object of its
 * own, `<prefix>.filestorage/digests/<revision>`, written after the last part and before the
 * multipart upload is completed: the moment the version is visible its digest exists, and since a
 * revision names one version only, the digest can describe no other bytes. A reader takes the
 * revision from the same response as the bytes (or the HEAD it describes), so it never pairs them
 * with another version's sha256; it keeps revision -> sha256 for good.
 *
 * A digest lists the paths its version was at (a move by RenameObject, which keeps the metadata, adds
 * the new one first). The sweep deletes a digest once none of its paths holds its revision and it
 * is older than an hour (a reader that read the revision a moment before still finds it).
 *
 * The sha256 of objects other tools wrote (no revision, no sha256 of S3's own) is kept the same way,
 * under `hashes/<sha256 of the key>`, for that key at that S3 ETag, Last-Modified and size.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { backoff } from '../backoff.js'
import { keepsChanging } from '../errors.js'
import type { Bucket } from './bucket.js'
import { INTERNAL, type S3Keys } from './keys.js'

export interface DigestRecord {
  revision: string
  sha256: string
  size: number
  /** Where the version has been; the sweep looks for its revision there. */
  paths: string[]
}

/** What another tool's object was hashed as. */
export interface HashRecord {
  key: string
  s3etag: string
  lastModified: string
  size: number
  sha256: string
}

const CAS_ATTEMPTS = 10

export class Digests {
  /** revision -> sha256: a revision names one version, so this never goes stale. */
  readonly #known = new LRUCache<string, string>({ max: 100_000 })

  constructor(
    private readonly bucket: Bucket,
    private readonly keys: S3Keys,
  ) {}

  keyOf(revision: string): string {
    return this.keys.reserved(`${INTERNAL.digests}${revision}`)
  }

  async write(record: DigestRecord): Promise<void> {
    await this.bucket.put(this.keyOf(record.revision), JSON.stringify(record), {}, { ContentType: 'application/json' })
    this.#known.set(record.revision, record.sha256)
  }

  /** The sha256 of the version `revision` names, or undefined when it has no digest. */
  async sha256Of(revision: string): Promise<string | undefined> {
    const known = this.#known.get(revision)
    if (known !== undefined) return known
    const record = await this.read(revision)
    if (!record) return undefined
    this.#known.set(revision, record.record.sha256)
    return record.record.sha256
  }

  async read(revision: string): Promise<{ record: DigestRecord; s3etag: string } | null> {
    const found = await this.bucket.read(this.keyOf(revision))
    if (!found) return null
    try {
      return { record: JSON.parse(found.text) as DigestRecord, s3etag: found.s3etag }
    } catch {
      return null
    }
  }

  /** Adds `path` to where the version `revision` is (before it is renamed there). */
  async addPath(revision: string, path: string): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (attempt > 0) await backoff(attempt)
      const found = await this.read(revision)
      if (!found) return // not a version with a digest (or one being swept: its version is gone)
      if (found.record.paths.includes(path)) return
      const next: DigestRecord = { ...found.record, paths: [...found.record.paths, path] }
      if ((await this.bucket.put(this.keyOf(revision), JSON.stringify(next), { ifMatch: found.s3etag })) !== null) return
    }
    throw keepsChanging(`the digest of revision ${revision}`)
  }

  async remove(revision: string): Promise<void> {
    await this.bucket.delete(this.keyOf(revision))
  }

  hashKeyOf(key: string): string {
    return this.keys.reserved(`${INTERNAL.hashes}${createHash('sha256').update(key).digest('hex')}`)
  }

  async readHash(key: string): Promise<HashRecord | null> {
    const found = await this.bucket.read(this.hashKeyOf(key))
    if (!found) return null
    try {
      return JSON.parse(found.text) as HashRecord
    } catch {
      return null
    }
  }

  async writeHash(record: HashRecord): Promise<void> {
    await this.bucket.put(this.hashKeyOf(record.key), JSON.stringify(record), {}, { ContentType: 'application/json' })
  }
}
