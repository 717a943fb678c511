/**
 * Describing a version of an object as a `StoredFile`, from what one S3 response said of it (a GET's
 * or a HEAD's headers), never from two responses that may be of different versions:
 *
 * - its sha256: `fs-sha256`; else the digest of its revision (digests.ts); else S3's own full-object
 *   SHA-256 checksum (another tool's single-request upload with one); else, for another tool's
 *   object, the bytes of that very version are hashed (a GET conditional on its S3 ETag), once: the
 *   result is kept in memory and recorded in the bucket in the background, as the disk store
 *   records a file an operator put there by hand;
 * - its times: `fs-created`/`fs-modified`, or S3's Last-Modified for both;
 * - its content type: the object's, or a guess from the name when it has none or a generic one.
 *
 * Listings show no metadata, so a listing describes each file with a HEAD (bounded concurrency),
 * remembering the description by key, S3 ETag and Last-Modified: only once that Last-Modified is
 * a few seconds old, so that a later version, even with the same bytes (the same MD5 ETag), has
 * another Last-Modified and is never described from the cache.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { contentTypeFor, etagOf } from '../file-attributes.js'
import { baseName } from '../paths.js'
import type { StoredFile } from '../types.js'
import type { Bucket, ListedObject, ObjectHead } from './bucket.js'
import type { Digests } from './digests.js'
import { decodeAttributes } from './object-attributes.js'

/** A listing's description is remembered only for versions at least this old (S3's Last-Modified has whole seconds). */
const SETTLED_MS = 5_000
/** HEADs a listing page makes at once. */
export const HEAD_CONCURRENCY = 16

const versionKey = (key: string, s3etag: string, lastModified: Date, size: number) => `${key}\n${s3etag}\n${lastModified.getTime()}\n${size}`

/** Content types that say nothing (the AWS SDKs' and CLIs' defaults). */
const UNSAID = new Set(['binary/octet-stream'])

export class Describer {
  /** Another tool's versions' sha256, by key, S3 ETag, Last-Modified and size. */
  readonly #hashed = new LRUCache<string, string>({ max: 10_000 })
  /** Hashes under way, so that concurrent descriptions of one version hash it once. */
  readonly #hashing = new Map<string, Promise<string | null>>()
  /** Listings' descriptions (see above). */
  readonly #listed = new LRUCache<string, StoredFile>({ max: 10_000 })

  constructor(
    private readonly bucket: Bucket,
    private readonly digests: Digests,
    private readonly log: (line: string) => void,
  ) {}

  /** The description of the version `head` is of, at `path`; null when that version is gone (it was being hashed). */
  async describe(path: string, head: ObjectHead): Promise<StoredFile | null> {
    const sha256 = await this.sha256Of(head)
    return sha256 === null ? null : describedAs(path, head, sha256)
  }

  /** The sha256 of the version `head` is of; null when that version is gone before it could be hashed. */
  async sha256Of(head: ObjectHead): Promise<string | null> {
    const attributes = decodeAttributes(head.meta)
    if (attributes.sha256 !== undefined) return attributes.sha256
    if (attributes.revision !== undefined) {
      const recorded = await this.digests.sha256Of(attributes.revision)
      if (recorded !== undefined) return recorded
      this.log(`[filestorage] s3 store: "${head.key}" names revision ${attributes.revision}, which has no digest; hashing its bytes`)
    }
    if (head.checksumSha256 !== undefined) return head.checksumSha256
    return this.#hashOther(head)
  }

  /** Describes listed objects (a HEAD each where not remembered), in order; those gone since are left out. */
  async describeListed(listed: { path: string; object: ListedObject }[]): Promise<StoredFile[]> {
    const out: (StoredFile | null)[] = new Array(listed.length).fill(null)
    let next = 0
    const worker = async () => {
      while (next < listed.length) {
        const i = next++
        const { path, object } = listed[i]!
        out[i] = await this.#describeListed(path, object)
      }
    }
    await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, listed.length) }, worker))
    return out.filter((f): f is StoredFile => f !== null)
  }

  async #describeListed(path: string, object: ListedObject): Promise<StoredFile | null> {
    const remembered = this.#listed.get(versionKey(object.key, object.s3etag, object.lastModified, object.size))
    if (remembered) return remembered.path === path ? remembered : { ...remembered, path, name: baseName(path) }
    for (let attempt = 0; attempt < 3; attempt++) {
      const head = await this.bucket.head(object.key)
      if (!head) return null // deleted since it was listed
      const file = await this.describe(path, head)
      if (!file) continue
      if (Date.now() - head.lastModified.getTime() > SETTLED_MS) {
        this.#listed.set(versionKey(head.key, head.s3etag, head.lastModified, head.size), file)
      }
      return file
    }
    return null
  }

  /** Hashes another tool's version by reading it (only that version: a GET conditional on its ETag), once. */
  #hashOther(head: ObjectHead): Promise<string | null> {
    const id = versionKey(head.key, head.s3etag, head.lastModified, head.size)
    const known = this.#hashed.get(id)
    if (known !== undefined) return Promise.resolve(known)
    let hashing = this.#hashing.get(id)
    if (!hashing) {
      hashing = this.#hash(head, id).finally(() => this.#hashing.delete(id))
      this.#hashing.set(id, hashing)
    }
    return hashing
  }

  async #hash(head: ObjectHead, id: string): Promise<string | null> {
    const recorded = await this.digests.readHash(head.key)
    if (recorded && recorded.s3etag === head.s3etag && recorded.size === head.size && Date.parse(recorded.lastModified) === head.lastModified.getTime()) {
      this.#hashed.set(id, recorded.sha256)
      return recorded.sha256
    }
    const opened = await this.bucket.get(head.key, { ifMatch: head.s3etag })
    if (!opened) return null
    const hash = createHash('sha256')
    for await (const chunk of opened.body) hash.update(chunk as Buffer)
    const sha256 = hash.digest('hex')
    this.#hashed.set(id, sha256)
    const record = { key: head.key, s3etag: head.s3etag, lastModified: head.lastModified.toISOString(), size: head.size, sha256 }
    void this.digests.writeHash(record).catch((e: unknown) => {
      this.log(`[filestorage] s3 store: could not record the sha256 of "${head.key}": ${(e as Error).message}`)
    })
    return sha256
  }
}

/** The description of the version `head` is of, at `path`, with its sha256. */
export function describedAs(path: string, head: ObjectHead, sha256: string): StoredFile {
  const attributes = decodeAttributes(head.meta)
  const name = baseName(path)
  const lastModified = head.lastModified.toISOString()
  const given = head.contentType !== undefined && !UNSAID.has(head.contentType.toLowerCase()) ? head.contentType : undefined
  return {
    type: 'file',
    path,
    name,
    size: head.size,
    contentType: contentTypeFor(name, given),
    sha256,
    etag: etagOf(sha256),
    created: attributes.created ?? lastModified,
    modified: attributes.modified ?? lastModified,
    metadata: attributes.metadata ?? {},
    driver: 's3',
  }
}
