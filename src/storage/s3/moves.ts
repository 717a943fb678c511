/**
 * Moves within the s3 store. S3 has no rename: a file is copied server-side to its new key (one
 * CopyObject; UploadPartCopy ranges over 5 GiB), conditional on the source being unchanged
 * (`x-amz-copy-source-if-match`) and the target absent (`If-None-Match: *`, or `If-Match` on the file
 * it overwrites), then the source is deleted conditionally (`If-Match`: a version written there
 * meanwhile stays). Where the server has SeaweedFS's RenameObject (probed, capabilities.ts) a file
 * moves in one atomic request instead, under the same conditions.
 *
 * A copy + delete is not atomic: meanwhile a reader can find the file at both paths (never at
 * neither). So it is journaled: `<prefix>.filestorage/moves/<id>` names the move before the copy and
 * goes after the delete; a move cut short by a crash is finished by the sweep (the source goes once
 * the target holds its version; a copy that never happened leaves nothing to undo). A folder moves
 * file by file (eight at a time), journaled as a whole and rewritten every 30 s while it runs, so
 * the sweep takes over only the journal of a move whose process stopped; until it has finished, a
 * reader sees some files at the old place and some at the new.
 *
 * The copy keeps the metadata (`MetadataDirective: COPY`), so the file keeps its attributes and
 * revision (another tool's object, its own metadata). A version whose sha256 is in a digest
 * (digests.ts) is copied with its sha256 added to its metadata instead; one renamed keeps its
 * metadata, so its digest is told the new path first. Another tool's object whose sha256 the move
 * knew has it recorded for its new key.
 */
import { randomBytes } from 'node:crypto'
import { RenameObjectCommand } from '@aws-sdk/client-s3'
import { alreadyExists, keepsChanging, notFound, StorageError } from '../errors.js'
import { backoff } from '../backoff.js'
import { checkEntryIfMatch } from '../file-attributes.js'
import { failpoint } from '../failpoints.js'
import { forEachLimited } from '../for-each-limited.js'
import { baseName } from '../paths.js'
import type { StoredFile } from '../types.js'
import type { Bucket, ListedObject, ObjectHead } from './bucket.js'
import type { Capabilities } from './capabilities.js'
import type { Announced } from './change-marks.js'
import { isConditionFailed, isMissing } from './client.js'
import { copyInParts, copyObject } from './copies.js'
import type { Describer } from './descriptions.js'
import type { Digests } from './digests.js'
import { INTERNAL, type S3Keys } from './keys.js'
import { decodeAttributes, withSha256 } from './object-attributes.js'
import { abortMultipart, completeMultipart } from './object-upload.js'

/** Files of a folder moved at once. */
const TREE_CONCURRENCY = 8
/** A running folder move rewrites its journal this often; the sweep finishes one left this long. */
export const JOURNAL_HEARTBEAT_MS = 30_000
export const JOURNAL_STALE_MS = 4 * JOURNAL_HEARTBEAT_MS
const MOVE_ATTEMPTS = 10

/** What a move's journal says. Keys, not paths: the sweep works on keys. */
export type MoveJournal =
  | { kind: 'file'; from: string; to: string; fromEtag: string; revision?: string }
  | { kind: 'folder'; from: string; to: string }

/**
 * Announces a move of the version `source` (described as `file`) over `existing`, just before the
 * request that moves it (change-marks.ts); null when events are off.
 */
export type MoveAnnouncer = (file: StoredFile, source: ObjectHead, existing: ObjectHead | null) => Promise<Announced | null>

export interface MoveTarget {
  /** The file there now, to overwrite; null for none. */
  head: ObjectHead | null
  overwrite: boolean
}

export class Moves {
  constructor(
    private readonly bucket: Bucket,
    private readonly keys: S3Keys,
    private readonly describer: Describer,
    private readonly digests: Digests,
    private readonly capabilities: Capabilities,
    /** CopyObject copies at most this (S3's 5 GiB); larger ones are copied in parts. */
    private readonly singleCopyMax: number,
  ) {}

  /**
   * Moves the file at `from` to `to`, whose target checks the caller made (`source` and `target` as
   * it found them); `ifMatch` is checked again on every attempt. The file as it is now at `to`.
   */
  async moveFile(from: string, to: string, source: ObjectHead, target: MoveTarget, ifMatch?: string[], announce?: MoveAnnouncer): Promise<StoredFile> {
    const fromKey = this.keys.file(from)
    const toKey = this.keys.file(to)
    let head: ObjectHead | null = source
    let existing = target.head
    for (let attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
      if (attempt > 0) {
        await backoff(attempt)
        ;[head, existing] = await Promise.all([this.bucket.head(fromKey), this.bucket.head(toKey)])
      }
      if (!head) throw notFound(`"${from}"`)
      if (existing && !target.overwrite) throw alreadyExists(`"${to}"`)
      const file = await this.describer.describe(from, head)
      if (!file) continue
      checkEntryIfMatch(ifMatch, file)
      const announced = await announce?.(file, head, existing)
      let moved: 'moved' | 'changed'
      try {
        moved = await this.#moveObject(head, toKey, file.sha256, existing ? { ifMatch: existing.s3etag } : { ifNoneMatch: '*' })
      } catch (e) {
        announced?.abandon() // it may have happened: settled from what the bucket shows
        throw e
      }
      if (moved === 'moved') {
        await announced?.confirm()
        return { ...file, path: to, name: baseName(to) }
      }
      await announced?.cancel()
    }
    throw keepsChanging(`"${from}" or "${to}"`)
  }

  /** Moves everything under the folder `from` to `to` (where nothing is now). */
  async moveFolder(from: string, to: string): Promise<void> {
    const fromPrefix = this.keys.folder(from)
    const toPrefix = this.keys.folder(to)
    await this.#checkTargets(fromPrefix, to)
    const conflicts = await this.#journaled({ kind: 'folder', from: fromPrefix, to: toPrefix }, () => this.#moveTree(fromPrefix, toPrefix))
    if (conflicts.length > 0) {
      throw new StorageError('already_exists', 'some files could not be moved: something took their place, or they changed meanwhile', {
        details: { paths: conflicts.slice(0, 100).map((k) => k.slice(this.keys.prefix.length)) },
      })
    }
  }

  /**
   * Moves what is still under `fromPrefix` to `toPrefix`, written `until` (S3's times are whole
   * seconds: that second included): a folder move whose process died, whose event is settled by
   * finishing it. What was written into the folder after the move began stays (its own events follow).
   */
  async resumeFolder(fromPrefix: string, toPrefix: string, until: Date): Promise<void> {
    await this.#moveTree(fromPrefix, toPrefix, new Date(Math.ceil(until.getTime() / 1000) * 1000))
  }

  /** Finishes a move whose process stopped (the sweep): the journal at `key`. */
  async finish(key: string): Promise<void> {
    const found = await this.bucket.read(key)
    if (found) {
      const journal = JSON.parse(found.text) as MoveJournal
      if (journal.kind === 'folder') {
        await this.#moveTree(journal.from, journal.to)
      } else {
        const target = await this.bucket.head(journal.to)
        if (target && this.#sameVersion(target, journal.fromEtag, journal.revision)) await this.bucket.delete(journal.from, journal.fromEtag)
      }
    }
    await this.bucket.delete(key)
  }

  /** `invalid_path` before anything moves, when a file's new key would not fit (or is a name SeaweedFS hides). */
  async #checkTargets(fromPrefix: string, to: string): Promise<void> {
    this.keys.file(`${to}/x`) // the folder's own name
    const grows = Buffer.byteLength(to) > Buffer.byteLength(fromPrefix) - this.keys.prefix.length - 1
    if (!grows) return
    for await (const objects of this.bucket.keys(fromPrefix)) {
      for (const o of objects) if (!o.key.endsWith('/')) this.keys.file(`${to}/${o.key.slice(fromPrefix.length)}`)
    }
  }

  /** Moves every object under `fromPrefix` to the same place under `toPrefix`; the keys that could not be moved. */
  async #moveTree(fromPrefix: string, toPrefix: string, until?: Date): Promise<string[]> {
    const conflicts: string[] = []
    for await (const listed of this.bucket.keys(fromPrefix)) {
      const objects = until ? listed.filter((o) => o.lastModified <= until) : listed
      await forEachLimited(objects, TREE_CONCURRENCY, async (object) => {
        const toKey = toPrefix + object.key.slice(fromPrefix.length)
        if ((await this.#moveListed(object, toKey)) === 'conflict') conflicts.push(object.key)
        failpoint('s3.tree.moved')
      })
    }
    return conflicts
  }

  /** Moves one listed object of a folder; a target that already holds its version (a move finished again) only loses the source. */
  async #moveListed(object: ListedObject, toKey: string): Promise<'moved' | 'conflict'> {
    // Only versions written in parts may have their sha256 in a digest, and only large ones need a copy in parts.
    const needsHead = object.s3etag.includes('-') || object.size > this.singleCopyMax
    const head = needsHead ? await this.bucket.head(object.key) : null
    if (needsHead && !head) return 'moved' // gone meanwhile
    const source: ObjectHead = head ?? { key: object.key, s3etag: object.s3etag, size: object.size, lastModified: object.lastModified, meta: {} }
    const sha256 = head && decodeAttributes(head.meta).sha256 === undefined ? await this.describer.sha256Of(head) : undefined
    const outcome = await this.#moveObject(source, toKey, sha256 ?? undefined, { ifNoneMatch: '*' }, head === null)
    if (outcome === 'moved') return outcome
    const target = await this.bucket.head(toKey)
    if (target && this.#sameVersion(target, object.s3etag, head ? decodeAttributes(head.meta).revision : undefined)) {
      await this.bucket.delete(object.key, object.s3etag)
      return 'moved'
    }
    return 'conflict'
  }

  /**
   * One object to `toKey` under `conditions` on the target: renamed, or copied and its source
   * deleted (journaled). `sha256`: its sha256, when its metadata may lack it; `metadataUnknown`: a
   * listed object not looked at (its metadata is copied as it is). 'changed' when a condition failed.
   * The copy keeps the metadata; a version whose sha256 is in a digest gets it added.
   */
  async #moveObject(
    source: ObjectHead,
    toKey: string,
    sha256: string | undefined,
    conditions: { ifMatch?: string; ifNoneMatch?: '*' },
    metadataUnknown = false,
  ): Promise<'moved' | 'changed'> {
    const attributes = decodeAttributes(source.meta)
    // A version written in parts, its sha256 in a digest (only those: another tool's object keeps its metadata as it is).
    const inDigest = !metadataUnknown && attributes.sha256 === undefined && attributes.revision !== undefined
    const otherTool = !metadataUnknown && attributes.revision === undefined
    // A server without conditional writes may refuse the target's conditions: it gets none (the race is documented).
    if (!(await this.capabilities.conditionalWrites())) conditions = {}
    try {
      if (await this.capabilities.rename()) {
        if (inDigest) await this.digests.addPath(attributes.revision!, toKey.slice(this.keys.prefix.length))
        await this.bucket.client.send(
          new RenameObjectCommand({
            Bucket: this.bucket.name,
            Key: toKey,
            RenameSource: this.bucket.copySource(source.key),
            SourceIfMatch: source.s3etag,
            ...(conditions.ifMatch !== undefined ? { DestinationIfMatch: conditions.ifMatch } : {}),
            ...(conditions.ifNoneMatch !== undefined ? { DestinationIfNoneMatch: conditions.ifNoneMatch } : {}),
          }),
        )
      } else {
        const meta = inDigest && sha256 !== undefined ? withSha256(source.meta, sha256) : undefined
        const journal: MoveJournal = { kind: 'file', from: source.key, to: toKey, fromEtag: source.s3etag, ...(attributes.revision !== undefined ? { revision: attributes.revision } : {}) }
        await this.#journaled(journal, async () => {
          await this.#copy(source, toKey, meta, conditions)
          await this.bucket.delete(source.key, source.s3etag) // false: written meanwhile, and that version stays
        })
      }
    } catch (e) {
      if (isConditionFailed(e) || isMissing(e)) return 'changed'
      throw e
    }
    if (otherTool && sha256 !== undefined && source.checksumSha256 === undefined) await this.#rememberHash(toKey, sha256)
    return 'moved'
  }

  /** Records the sha256 of another tool's object at its new key, so that it is not read again to be hashed. */
  async #rememberHash(key: string, sha256: string): Promise<void> {
    const head = await this.bucket.head(key).catch(() => null)
    if (!head) return
    await this.digests.writeHash({ key, s3etag: head.s3etag, lastModified: head.lastModified.toISOString(), size: head.size, sha256 }).catch(() => {})
  }

  async #copy(source: ObjectHead, toKey: string, meta: Record<string, string> | undefined, conditions: { ifMatch?: string; ifNoneMatch?: '*' }): Promise<void> {
    const cond = {
      ...(conditions.ifMatch !== undefined ? { IfMatch: conditions.ifMatch } : {}),
      ...(conditions.ifNoneMatch !== undefined ? { IfNoneMatch: conditions.ifNoneMatch } : {}),
    }
    if (source.size <= this.singleCopyMax) {
      await copyObject(this.bucket, source.key, source.s3etag, toKey, {
        ...cond,
        ...(meta ? { MetadataDirective: 'REPLACE', Metadata: meta, ...(source.contentType !== undefined ? { ContentType: source.contentType } : {}) } : {}),
      })
      return
    }
    const upload = await copyInParts(this.bucket, source.key, source.s3etag, source.size, {
      key: toKey,
      meta: meta ?? source.meta,
      ...(source.contentType !== undefined ? { contentType: source.contentType } : {}),
    })
    try {
      await completeMultipart(this.bucket, upload, cond)
    } catch (e) {
      await abortMultipart(this.bucket, upload).catch(() => {})
      throw e
    }
  }

  /** Whether `target` is the version a move copied: the same revision, or (another tool's object) the same S3 ETag. */
  #sameVersion(target: ObjectHead, fromEtag: string, revision?: string): boolean {
    const now = decodeAttributes(target.meta).revision
    return revision !== undefined ? now === revision : target.s3etag === fromEtag
  }

  /** Runs `fn` with `journal` written, rewritten while it runs, and removed once it succeeded (left for the sweep otherwise, unless nothing happened). */
  async #journaled<T>(journal: MoveJournal, fn: () => Promise<T>): Promise<T> {
    const key = this.keys.reserved(`${INTERNAL.moves}${randomBytes(12).toString('hex')}`)
    const text = JSON.stringify(journal)
    await this.bucket.put(key, text, {}, { ContentType: 'application/json' })
    const heartbeat = journal.kind === 'folder' ? setInterval(() => void this.bucket.put(key, text).catch(() => {}), JOURNAL_HEARTBEAT_MS) : undefined
    heartbeat?.unref()
    let result: T
    try {
      result = await fn()
    } catch (e) {
      clearInterval(heartbeat)
      // A copy refused by its conditions changed nothing: no journal is needed. Anything else may have.
      if (isConditionFailed(e) || isMissing(e)) await this.bucket.delete(key).catch(() => {})
      throw e
    }
    clearInterval(heartbeat)
    await this.bucket.delete(key).catch(() => {}) // else the sweep finds it finished
    return result
  }
}
