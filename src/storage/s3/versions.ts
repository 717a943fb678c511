/**
 * Making a new version of a file visible: every write of the store (a PUT, a completed upload)
 * ends here. A version is written whole, then becomes visible in one S3 request, atomically with
 * its bytes and metadata: a PutObject (a body held in memory), a CompleteMultipartUpload (a body
 * that went up in parts, whose digest is written first, digests.ts), or a CopyObject with its
 * metadata replaced (a staged part that is the whole file).
 *
 * That request is conditional on what the path held when the write looked (`If-Match` on S3's ETag
 * of the version it replaces, `If-None-Match: *` when it found nothing): so the client's own
 * conditions (its `If-Match` on our sha256-derived ETag, `If-None-Match: *`) hold at the instant
 * the version becomes visible, `created` says truly whether it replaced something, and of racing
 * creators exactly one wins. A write that loses (412) looks again and retries, a bounded number of
 * times; writes of one path in this process take turns, so they only ever race other processes.
 * On a server without conditional writes (capabilities.ts) the request is unconditional, and a
 * client's conditional write was refused before it began.
 */
import { CopyObjectCommand } from '@aws-sdk/client-s3'
import { backoff } from '../backoff.js'
import { keepsChanging, preconditionFailed } from '../errors.js'
import { checkIfMatch, etagOf } from '../file-attributes.js'
import type { KeyedLock } from '../keyed-lock.js'
import { baseName } from '../paths.js'
import type { ChangeOrigin } from '../events/types.js'
import type { PutResult, StoredFile, WritePreconditions } from '../types.js'
import type { Bucket, ObjectHead, S3Conditions } from './bucket.js'
import type { Capabilities } from './capabilities.js'
import type { ChangeMarks } from './change-marks.js'
import { isConditionFailed } from './client.js'
import type { Describer } from './descriptions.js'
import type { Digests } from './digests.js'
import { decodeAttributes, encodeAttributes } from './object-attributes.js'
import { abortMultipart, completeMultipart, type OpenMultipart } from './object-upload.js'
import type { Recent } from './recent.js'

/**
 * A commit that keeps losing its conditional write to other processes gives up after this long
 * (`503`, try again). It waits only a few milliseconds between tries: another process with more
 * writes of the path queued starts the next one as soon as one lands, so a longer wait would let
 * it win every time.
 */
const COMMIT_GIVE_UP_MS = 10_000

/** A version written and not visible yet. */
export type PendingBytes =
  /** All of it in memory: one PutObject. */
  | { kind: 'bytes'; bytes: Buffer }
  /** Its parts up in a multipart upload of the file's key; `withSha256`: its metadata has the sha256 already (no digest). */
  | { kind: 'multipart'; upload: OpenMultipart; withSha256: boolean }
  /** An object of the store's own (a staged part, never changed) that is the whole file: copied, its metadata replaced. */
  | { kind: 'copy'; sourceKey: string }

/** The version to make visible. */
export interface VersionToBe {
  path: string
  key: string
  contentType: string
  metadata: Record<string, unknown>
  revision: string
  sha256: string
  size: number
  /** When the path was first created (kept from the version it replaces); `modified`: when this one was written. */
  created: string
  modified: string
}

export interface CommitOptions {
  /** What the path held when the write began, if it looked (the first attempt uses it). */
  current?: ObjectHead | null
  /** Runs with the result before each attempt to make the version visible (the upload engine's journal). */
  beforeVisible?: (result: PutResult) => Promise<void>
  /** Who asked, and the upload a completion ends: for the events (change-marks.ts). */
  announce?: { origin?: ChangeOrigin | undefined; uploadId?: string }
}

export class Versions {
  constructor(
    private readonly bucket: Bucket,
    private readonly digests: Digests,
    private readonly describer: Describer,
    private readonly capabilities: Capabilities,
    private readonly locks: KeyedLock,
    private readonly recent: Recent,
    private readonly marks: ChangeMarks,
  ) {}

  /** Throws what the client's `conditions` say against the version at the path now (`head`, null for none). */
  async checkConditions(path: string, head: ObjectHead | null, conditions: WritePreconditions): Promise<void> {
    if (head && conditions.mustNotExist) throw preconditionFailed(`"${path}" already exists`)
    // Only If-Match needs the current version's sha256 (which may mean hashing another tool's object).
    if (conditions.ifMatch) checkIfMatch(conditions.ifMatch, head && (await this.describer.describe(path, head)))
  }

  /** Makes `toBe` visible under `conditions`; deletes what `pending` holds when it cannot. */
  async commit(toBe: VersionToBe, pending: PendingBytes, conditions: WritePreconditions, options: CommitOptions = {}): Promise<PutResult> {
    try {
      if (pending.kind === 'multipart' && !pending.withSha256) {
        await this.digests.write({ revision: toBe.revision, sha256: toBe.sha256, size: toBe.size, paths: [toBe.path] })
      }
      return await this.locks.run(toBe.key, () => this.#commitHeld(toBe, pending, conditions, options))
    } catch (e) {
      await this.discard(toBe, pending)
      throw e
    }
  }

  /** Deletes what a version that will not be committed holds (an open multipart upload, its digest). */
  async discard(toBe: Pick<VersionToBe, 'key' | 'revision'>, pending: PendingBytes): Promise<void> {
    if (pending.kind !== 'multipart') return
    await abortMultipart(this.bucket, pending.upload).catch(() => {})
    if (!pending.withSha256) await this.digests.remove(toBe.revision).catch(() => {})
  }

  async #commitHeld(toBe: VersionToBe, pending: PendingBytes, conditions: WritePreconditions, options: CommitOptions): Promise<PutResult> {
    const conditional = await this.capabilities.conditionalWrites()
    let current = options.current
    const deadline = Date.now() + COMMIT_GIVE_UP_MS
    for (let attempt = 0; attempt === 0 || Date.now() < deadline; attempt++) {
      if (attempt > 0) await backoff(attempt, 1, 16)
      if (current === undefined || attempt > 0) current = await this.bucket.head(toBe.key)
      await this.checkConditions(toBe.path, current, conditions)
      // A body in memory or a copy gets its metadata now: the creation time of what it replaces now.
      const created = pending.kind === 'multipart' ? toBe.created : (current && decodeAttributes(current.meta).created) ?? toBe.created
      const result: PutResult = { file: fileOf({ ...toBe, created }), created: current === null }
      await options.beforeVisible?.(result)
      const s3conditions: S3Conditions = !conditional ? {} : current ? { ifMatch: current.s3etag } : { ifNoneMatch: '*' }
      const placed = { ...toBe, created }
      const found = await this.marks.before(toBe.path, current)
      const uploadId = options.announce?.uploadId
      const announced = await this.marks.intend(
        { kind: 'written', file: result.file, created: result.created, ...(uploadId !== undefined ? { uploadId } : {}) },
        { holds: { path: toBe.path, revision: toBe.revision } },
        { version: toBe.revision, path: toBe.path },
        { origin: options.announce?.origin, after: found.after },
      )
      let s3etag: string | null
      try {
        s3etag = await this.#place(placed, pending, s3conditions)
      } catch (e) {
        announced?.abandon() // it may have landed: settled from what the bucket shows
        throw e
      }
      if (s3etag === null) await announced?.cancel()
      else {
        await this.marks.took(found)
        await announced?.confirm()
        const { sha256: _digested, ...inDigest } = placed
        const meta = encodeAttributes(pending.kind === 'multipart' && !pending.withSha256 ? inDigest : placed)
        this.recent.saw(toBe.key, { key: toBe.key, s3etag, size: toBe.size, contentType: toBe.contentType, lastModified: new Date(), meta })
        this.recent.wrote(toBe.path)
        return result
      }
      if (!conditional) break
    }
    throw keepsChanging(`"${toBe.path}"`)
  }

  /** One attempt to make the version visible: its S3 ETag; null when S3 found the path changed. */
  async #place(toBe: VersionToBe, pending: PendingBytes, conditions: S3Conditions): Promise<string | null> {
    const cond = {
      ...(conditions.ifMatch !== undefined ? { IfMatch: conditions.ifMatch } : {}),
      ...(conditions.ifNoneMatch !== undefined ? { IfNoneMatch: conditions.ifNoneMatch } : {}),
    }
    try {
      switch (pending.kind) {
        case 'bytes':
          return await this.bucket.put(toBe.key, pending.bytes, conditions, {
            ContentType: toBe.contentType,
            Metadata: encodeAttributes(toBe),
            ChecksumSHA256: Buffer.from(toBe.sha256, 'hex').toString('base64'),
          })
        case 'multipart':
          return await completeMultipart(this.bucket, pending.upload, cond)
        case 'copy': {
          const r = await this.bucket.client.send(
            new CopyObjectCommand({
              Bucket: this.bucket.name,
              Key: toBe.key,
              CopySource: this.bucket.copySource(pending.sourceKey),
              MetadataDirective: 'REPLACE',
              ContentType: toBe.contentType,
              Metadata: encodeAttributes(toBe),
              ...cond,
            }),
          )
          return r.CopyObjectResult?.ETag ?? ''
        }
      }
    } catch (e) {
      // 412, or 404 NoSuchKey for an If-Match on a key deleted meanwhile: look again.
      if (isConditionFailed(e) || (conditions.ifMatch !== undefined && (e as { name?: string }).name === 'NoSuchKey')) return null
      throw e
    }
  }
}

/** The description a version will have once visible (what a HEAD of it then says). */
export function fileOf(toBe: VersionToBe): StoredFile {
  return {
    type: 'file',
    path: toBe.path,
    name: baseName(toBe.path),
    size: toBe.size,
    contentType: toBe.contentType,
    sha256: toBe.sha256,
    etag: etagOf(toBe.sha256),
    created: toBe.created,
    modified: toBe.modified,
    metadata: toBe.metadata,
    driver: 's3',
  }
}
