/**
 * The s3 store (SPEC 7): a file is one object at its path under the store's key prefix, readable
 * as it is by any S3 tool (aws cli, rclone, boto3), with its attributes in the object's own
 * metadata (object-attributes.ts). Folders are implied by keys; the store's bookkeeping lives under
 * `<prefix>.filestorage/` (keys.ts).
 *
 * How each guarantee is kept:
 * - a write is atomic for readers, with its attributes: the version is written whole, then made
 *   visible by one S3 request carrying bytes and metadata together (versions.ts); a body that is
 *   cut, too large or of the wrong sha256 never becomes visible, and its multipart upload is
 *   aborted (or, if the process died, the sweep aborts it);
 * - a reader never pairs bytes with another version's attributes: a GET returns both in one
 *   response; a sha256 that is not in the metadata is found by the version's revision (digests.ts),
 *   which names that version only;
 * - `If-None-Match: *` has exactly one winner and `If-Match` holds at the commit: S3 conditional
 *   writes on the commit request (on a server without them, such requests are refused with
 *   `501 not_supported`, capabilities.ts);
 * - sha256 end to end: computed while streaming; S3 checks it itself on a file sent in one request;
 *   a file in parts keeps it in its digest; another tool's object is hashed once (descriptions.ts);
 * - streaming with bounded memory: at most (concurrency + 1) parts of `partSize` per upload
 *   (object-upload.ts), and a download streams S3's response as it comes;
 * - outages: every S3 request has the store's timeout; failures are `503 store_unavailable` (client.ts).
 *
 * Why the sha256 of a file sent in parts is kept in a digest rather than in its metadata: S3 sets an
 * object's metadata when its multipart upload starts, before any byte. The other way, staging the
 * object and then copying it onto itself with the sha256 in its metadata (`MetadataDirective:
 * REPLACE`), copies every byte once more: on AWS in time proportional to the size, and on SeaweedFS
 * a copy of 1 GiB to another key took about a third of its upload's time again (docs/benchmarks.md,
 * section 6), against one small object written before the completion.
 *
 * Moves are server-side copies (or SeaweedFS's RenameObject), journaled (moves.ts); uploads in
 * parts and tus are staged as objects and composed server-side (staging.ts, compose.ts).
 */
import { GetObjectCommand, HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { randomBytes } from 'node:crypto'
import { checkAnnouncedSize, Digest, verifySha256 } from '../digest.js'
import type { FileAttributesToBe, StorageDriver } from '../driver.js'
import { alreadyExists, fileInTheWay, isStorageError, keepsChanging, notFound, notSupported, StorageError } from '../errors.js'
import type { Change } from '../events/changes.js'
import type { EventRecorder, Intent } from '../events/recorder.js'
import type { ChangeOrigin, LogEntry } from '../events/types.js'
import { uploadWitnessed } from '../events/witnesses.js'
import { failpoint } from '../failpoints.js'
import type { SharedRecords } from '../shared-records.js'
import { checkEntryIfMatch, checkMoveTarget, contentTypeFor } from '../file-attributes.js'
import { InFlight } from '../in-flight.js'
import { KeyedLock } from '../keyed-lock.js'
import { listLimit } from '../ordering.js'
import { ancestorsOf, baseName, checkMovePaths, invalidPathIfRoot, ROOT } from '../paths.js'
import { bodyChunks, streamOfBytes } from '../streams.js'
import type {
  ByteRange,
  DeleteOptions,
  HealthReport,
  ListOptions,
  ListPage,
  MoveOptions,
  PutOptions,
  PutResult,
  ReadResult,
  RedirectResponse,
  StoredEntry,
  StoredFile,
  WritePreconditions,
} from '../types.js'
import { Bucket, type ObjectHead, RangeBeyondEnd } from './bucket.js'
import { Capabilities, type Capability } from './capabilities.js'
import { createS3Client, type S3Connection, toStorageError } from './client.js'
import { MAX_SINGLE_COPY } from './copies.js'
import { Describer } from './descriptions.js'
import { Digests } from './digests.js'
import { INTERNAL, normalizePrefix, S3Keys } from './keys.js'
import { Listing } from './listing.js'
import { JOURNAL_STALE_MS, Moves } from './moves.js'
import { checkMetadataFits, decodeAttributes, encodeAttributes, newRevision } from './object-attributes.js'
import { ObjectUpload, type UploadShape } from './object-upload.js'
import { Recent } from './recent.js'
import { responseBody } from './response-body.js'
import { S3SharedRecords } from './shared-records.js'
import { S3Staging } from './staging.js'
import { S3Sweeper } from './sweeper.js'
import { ChangeMarks, type Announced } from './change-marks.js'
import { S3EventLog, S3EventRecorder } from './event-log.js'
import { Versions } from './versions.js'

export interface S3DriverOptions {
  bucket: string
  /** Keys of the store's files start with this (`S3_PREFIX`); none by default. */
  prefix?: string
  /** An S3-compatible server (`S3_ENDPOINT`); unset: AWS. */
  endpoint?: string
  region?: string
  /** Bucket in the path rather than the host name; default: true with an endpoint. */
  forcePathStyle?: boolean
  /** Default: the SDK's credential chain. */
  credentials?: S3Connection['credentials']
  /** How long an S3 request may take to be answered (`S3_TIMEOUT_SECONDS`); default 15 s. */
  timeoutMs?: number
  /** Downloads may be redirected to presigned URLs of the objects (`redirectUrl`, S3_REDIRECT_DOWNLOADS). */
  redirectDownloads?: boolean
  /** Where clients reach the bucket, for presigned URLs (`S3_PUBLIC_ENDPOINT`); default: `endpoint`. */
  publicEndpoint?: string
  /** Conditional writes: probe the server (default), or as the operator says. */
  conditionalWrites?: Capability
  /** SeaweedFS's RenameObject: probe the server (default), or as the operator says. */
  rename?: Capability
  /** A body up to this size goes up in one request; larger ones in parts of this size (default 8 MiB). */
  partSize?: number
  /** Parts of one upload sent at once (default 4). */
  concurrency?: number
  /** Multipart uploads left open longer than this are aborted by the sweep (the upload expiry; default 24 h). */
  orphanAgeMs?: number
  /** The largest object one CopyObject copies (S3's 5 GiB; tests make it small). */
  singleCopyMax?: number
  /** A process silent this long counts as dead, for events (its intents settled, its relay lease taken over) and quotas (its reservations settled); default 2 min. */
  livenessWindowMs?: number
  log?: (line: string) => void
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024
const DEFAULT_CONCURRENCY = 4
const DEFAULT_TIMEOUT_MS = 15_000
/** A presigned download URL lives this long: enough to follow the redirect, short enough not to be shared. */
const REDIRECT_EXPIRY_SECONDS = 60
const HEALTH_TIMEOUT_MS = 1_500
const CLOSE_WAIT_MS = 5_000
/** As long as a folder move's journal: a process that stopped rewriting it is dead. */
const DEFAULT_LIVENESS_WINDOW_MS = JOURNAL_STALE_MS
/** Attempts of a read, a stat or a delete whose object keeps changing under it. */
const ATTEMPTS = 5

export class S3Driver implements StorageDriver {
  readonly kind = 's3'
  readonly staging: S3Staging
  readonly bucket: Bucket
  readonly keys: S3Keys
  readonly capabilities: Capabilities
  readonly #client: S3Client
  readonly #signer: S3Client | undefined
  readonly #shape: UploadShape
  readonly #describer: Describer
  readonly #versions: Versions
  readonly #listing: Listing
  readonly #moves: Moves
  readonly #sweeper: S3Sweeper
  readonly #running = new InFlight()
  readonly #recent: Recent
  readonly #instance = randomBytes(6).toString('hex')
  readonly events: EventRecorder
  readonly #eventLog: S3EventLog
  readonly #marks: ChangeMarks
  readonly redirectUrl?: (file: StoredFile, response: RedirectResponse) => Promise<string | undefined>
  /**
   * Records every instance sharing the store changes atomically (shared-records.ts), under
   * `<prefix>.filestorage/records/<namespace>/`: the quota ledger's. Absent when the operator says the
   * server has no conditional writes, without which they cannot be kept.
   */
  readonly sharedRecords?: (namespace: string) => SharedRecords

  private constructor(options: S3DriverOptions) {
    const connection: S3Connection = {
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      region: options.region ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    }
    this.#client = createS3Client(connection)
    this.keys = new S3Keys(normalizePrefix(options.prefix))
    this.bucket = new Bucket(this.#client, options.bucket, this.keys.internal)
    this.#recent = new Recent(this.keys.prefix)
    this.#shape = { partSize: options.partSize ?? DEFAULT_PART_SIZE, concurrency: options.concurrency ?? DEFAULT_CONCURRENCY }
    const log = options.log ?? (() => {})
    const singleCopyMax = options.singleCopyMax ?? MAX_SINGLE_COPY
    this.capabilities = new Capabilities(this.bucket, this.keys, options.conditionalWrites ?? 'auto', options.rename ?? 'auto')
    const digests = new Digests(this.bucket, this.keys)
    this.#describer = new Describer(this.bucket, digests, log)
    this.#eventLog = new S3EventLog(
      this.bucket,
      this.keys,
      { livenessWindowMs: options.livenessWindowMs ?? DEFAULT_LIVENESS_WINDOW_MS, conditionalWrites: () => this.capabilities.conditionalWrites() },
      (entry) => this.#run(() => this.#settle(entry)),
    )
    this.events = new S3EventRecorder(this.#eventLog, () => this.capabilities.conditionalWrites())
    this.#marks = new ChangeMarks(this.bucket, this.keys, this.events, this.#eventLog)
    this.#versions = new Versions(this.bucket, digests, this.#describer, this.capabilities, new KeyedLock(), this.#recent, this.#marks)
    this.#listing = new Listing(this.bucket, this.keys, this.#describer)
    this.#moves = new Moves(this.bucket, this.keys, this.#describer, digests, this.capabilities, singleCopyMax)
    this.staging = new S3Staging({ bucket: this.bucket, keys: this.keys, versions: this.#versions, capabilities: this.capabilities, shape: this.#shape, singleCopyMax })
    this.#sweeper = new S3Sweeper(this.bucket, this.keys, this.staging, digests, this.#moves, options.orphanAgeMs ?? 24 * 60 * 60 * 1000, this.#eventLog)
    if (options.conditionalWrites !== false) {
      this.sharedRecords = (namespace) => new S3SharedRecords(this.bucket, this.keys, this.capabilities, this.#eventLog, namespace, (step) => this.#run(step))
    }
    if (options.redirectDownloads) {
      this.#signer = options.publicEndpoint !== undefined ? createS3Client(connection, options.publicEndpoint) : undefined
      this.redirectUrl = (file, response) => this.#presign(file, response)
    }
  }

  /** Opens the store without calling S3: it answers `store_unavailable` while S3 is down, and recovers with it. */
  static open(options: S3DriverOptions): S3Driver {
    if (!options.bucket) throw new Error('the s3 store needs a bucket')
    return new S3Driver(options)
  }

  async put(path: string, body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    invalidPathIfRoot(path)
    const key = this.keys.file(path)
    checkAnnouncedSize(options.expectedSize, options.maxBytes)
    checkMetadataFits(options.metadata)
    this.events.checkRoom()
    return this.#run(async () => {
      await this.#requireConditionalWrites(options)
      const current = await this.#precheck(path, key, options)
      const now = new Date().toISOString()
      const toBe = {
        path,
        key,
        contentType: contentTypeFor(baseName(path), options.contentType),
        metadata: options.metadata ?? {},
        revision: newRevision(),
        created: current ? (decodeAttributes(current.meta).created ?? current.lastModified.toISOString()) : now,
        modified: now,
      }
      const upload = new ObjectUpload(this.bucket, { key, contentType: toBe.contentType, meta: encodeAttributes(toBe) }, this.#shape)
      const digest = new Digest(options.maxBytes)
      let finished
      try {
        for await (const chunk of bodyChunks(body)) {
          digest.update(chunk)
          await upload.write(chunk)
        }
        finished = await upload.finish()
      } catch (e) {
        await upload.abort()
        throw e
      }
      const version = { ...toBe, sha256: digest.digest(), size: digest.size }
      const pending = 'bytes' in finished ? ({ kind: 'bytes', bytes: finished.bytes } as const) : ({ kind: 'multipart', upload: finished.multipart, withSha256: false } as const)
      try {
        verifySha256(options.expectedSha256, version.sha256)
      } catch (e) {
        await this.#versions.discard(version, pending)
        throw e
      }
      return this.#versions.commit(version, pending, options, { current, ...(options.origin ? { announce: { origin: options.origin } } : {}) })
    })
  }

  async read(path: string, range?: ByteRange): Promise<ReadResult> {
    invalidPathIfRoot(path)
    const key = this.keys.file(path)
    return this.#run(async () => {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        let opened
        try {
          opened = await this.bucket.get(key, range ? { range } : {})
        } catch (e) {
          if (!(e instanceof RangeBeyondEnd)) throw e
          // Shorter now than the version the range was worked out for: nothing of it is left to send.
          const file = await this.stat(path)
          return { file, body: streamOfBytes(new Uint8Array(0)) }
        }
        if (!opened) throw notFound(`a file at "${path}"`)
        const file = await this.#describer.describe(path, opened.head).catch((e: unknown) => {
          opened.body.destroy()
          throw e
        })
        if (file) return { file, body: responseBody(opened.body) }
        opened.body.destroy() // replaced while another tool's version was being hashed: read the new one
      }
      throw keepsChanging(`"${path}"`)
    })
  }

  async stat(path: string): Promise<StoredFile> {
    const file = path === ROOT ? null : await this.#run(() => this.#file(path, this.keys.file(path)))
    if (!file) throw notFound(`a file at "${path}"`)
    return file
  }

  async lookup(path: string): Promise<StoredEntry | null> {
    if (path === ROOT) return { type: 'directory', path: ROOT, name: '' }
    const key = this.keys.file(path)
    return this.#run(async () => {
      const file = await this.#file(path, key)
      if (file) return file
      return (await this.bucket.any(this.keys.folder(path))) ? { type: 'directory', path, name: baseName(path) } : null
    })
  }

  list(dir: string, options: ListOptions = {}): Promise<ListPage> {
    if (dir !== ROOT) this.keys.file(dir)
    return this.#run(() =>
      this.#listing.list(dir, { recursive: options.recursive ?? false, limit: listLimit(options.limit), ...(options.cursor !== undefined ? { cursor: options.cursor } : {}) }),
    )
  }

  async move(from: string, to: string, options: MoveOptions = {}): Promise<StoredEntry> {
    checkMovePaths(from, to)
    const fromKey = this.keys.file(from)
    const toKey = this.keys.file(to)
    return this.#run(async () => {
      const sourceHead = await this.bucket.head(fromKey)
      const source = sourceHead ? await this.#described(from, sourceHead) : await this.lookup(from)
      if (!source) throw notFound(`"${from}"`)
      checkEntryIfMatch(options.ifMatch, source)
      if (from === to) return source
      const targetHead = await this.bucket.head(toKey)
      // A file there is not described (its kind is all that matters here; describing may mean hashing it).
      const target = targetHead ? ({ type: 'file', path: to, name: baseName(to) } as StoredEntry) : await this.lookup(to)
      checkMoveTarget(source, target, to, options.overwrite)
      await this.#checkNoFileAbove(to)
      if (sourceHead) {
        try {
          const announce = this.#marks.enabled ? (file: StoredFile, source: ObjectHead, existing: ObjectHead | null) => this.#intendMove(file, to, source, existing, options.origin) : undefined
          return await this.#moves.moveFile(from, to, sourceHead, { head: targetHead, overwrite: options.overwrite === true }, options.ifMatch, announce)
        } finally {
          this.#recent.saw(fromKey, null)
          this.#recent.saw(toKey, null)
          this.#recent.wrote(to)
        }
      }
      if (target) await this.#folderChange({ kind: 'deleted', entry: target }, { op: 'delete', path: to }, options.origin, () => this.#deleteTree(this.keys.folder(to)))
      try {
        await this.#folderChange({ kind: 'moved', from, to: { type: 'directory', path: to, name: baseName(to) } }, { op: 'move', path: from, to }, options.origin, () =>
          this.#moves.moveFolder(from, to),
        )
      } finally {
        this.#recent.forgetUnder(this.keys.folder(from))
        this.#recent.movedFolder(to)
      }
      return (await this.lookup(to)) ?? { type: 'directory', path: to, name: baseName(to) }
    })
  }

  async delete(path: string, options: DeleteOptions = {}): Promise<void> {
    invalidPathIfRoot(path)
    const key = this.keys.file(path)
    await this.#run(async () => {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const head = await this.bucket.head(key)
        if (head) {
          if (options.ifMatch) {
            await this.#requireConditionalWrites(options)
            await this.#versions.checkConditions(path, head, { ifMatch: options.ifMatch })
          }
          const announced = this.#marks.enabled ? await this.#intendDelete(path, head, options.origin) : null
          // With If-Match (or an event naming this version), only that version goes (S3's own If-Match on delete).
          let deleted: boolean
          try {
            deleted = await this.bucket.delete(key, options.ifMatch || announced ? head.s3etag : undefined)
          } catch (e) {
            announced?.abandon() // it may have landed: settled from what the bucket shows
            throw e
          }
          this.#recent.saw(key, null)
          if (deleted) {
            await announced?.confirm()
            return
          }
          await announced?.cancel()
          continue // replaced meanwhile: check If-Match again
        }
        await this.#deleteFolder(path, options)
        return
      }
      throw keepsChanging(`"${path}"`)
    })
  }

  async checkWrite(path: string, conditions: WritePreconditions & FileAttributesToBe): Promise<void> {
    invalidPathIfRoot(path)
    const key = this.keys.file(path)
    checkMetadataFits(conditions.metadata)
    await this.#run(async () => {
      await this.#requireConditionalWrites(conditions)
      await this.#precheck(path, key, conditions)
    })
  }

  lookupRevision(path: string, revision: string): Promise<StoredFile | null> {
    const key = this.keys.file(path)
    return this.#run(async () => {
      const head = await this.bucket.head(key)
      return head && decodeAttributes(head.meta).revision === revision ? this.#described(path, head) : null
    })
  }

  run<T>(_subject: string, operation: () => Promise<T>): Promise<T> {
    return this.#run(operation)
  }

  sweep(now = new Date()): Promise<number> {
    return this.#run(() => this.#sweeper.sweep(now))
  }

  async health(): Promise<HealthReport> {
    const started = performance.now()
    const latencyMs = () => performance.now() - started
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket.name }), { abortSignal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })
    } catch (e) {
      return { ok: false, latencyMs: latencyMs(), message: toStorageError(e).message }
    }
    try {
      // A server can answer and still not take writes (SeaweedFS with a volume server of a replica set down).
      const probe = this.keys.reserved(`${INTERNAL.probes}health-${this.#instance}`)
      await this.#client.send(new PutObjectCommand({ Bucket: this.bucket.name, Key: probe, Body: 'ok' }), { abortSignal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })
      return { ok: true, writable: true, latencyMs: latencyMs() }
    } catch (e) {
      return { ok: true, writable: false, latencyMs: latencyMs(), message: `writes fail: ${toStorageError(e).message}` }
    }
  }

  async close(): Promise<void> {
    await this.#running.settled(CLOSE_WAIT_MS)
    this.events.disable()
    if (this.#eventLog.registered) {
      await this.events.settleOwn().catch(() => {}) // else settled by another process, once this one's heartbeat is stale
      await this.#eventLog.close().catch(() => {})
    }
    this.#client.destroy()
    this.#signer?.destroy()
  }

  /** Runs an operation, counted until it settles (a close lets it end), its S3 failures as `StorageError`s. */
  #run<T>(operation: () => Promise<T>): Promise<T> {
    return this.#running.track(
      operation().catch((e: unknown) => {
        throw toStorageError(e)
      }),
    )
  }

  /** `501 not_supported` for a client's conditional write on a server without conditional writes (rather than racing). */
  async #requireConditionalWrites(conditions: WritePreconditions): Promise<void> {
    if (!conditions.mustNotExist && !conditions.ifMatch) return
    if (await this.capabilities.conditionalWrites()) return
    throw notSupported('this S3 server has no conditional writes: If-Match and If-None-Match cannot be honoured without a race')
  }

  /**
   * The checks a write makes before it reads its body (made again when it commits, versions.ts): no
   * file above the path, no folder at it, and its conditions. What is at the path now.
   */
  async #precheck(path: string, key: string, conditions: WritePreconditions): Promise<ObjectHead | null> {
    // A client's conditions are checked against what S3 says now; a plain write may go by what this
    // process saw last (its commit is conditional on that, recent.ts).
    const conditional = conditions.mustNotExist || conditions.ifMatch !== undefined
    const known = conditional ? undefined : this.#recent.version(key)
    const [current] = await Promise.all([known ?? this.#head(key), this.#checkNoFolderAt(path), this.#checkNoFileAbove(path)])
    await this.#versions.checkConditions(path, current, conditions)
    return current
  }

  async #checkNoFolderAt(path: string): Promise<void> {
    const prefix = this.keys.folder(path)
    if (this.#recent.isAbsent(`folder:${prefix}`)) return
    if (await this.bucket.any(prefix)) throw alreadyExists(`a folder at "${path}"`)
    this.#recent.absent(`folder:${prefix}`)
  }

  async #checkNoFileAbove(path: string): Promise<void> {
    const ancestors = ancestorsOf(path).filter((a) => !this.#recent.isAbsent(`file:${this.keys.prefix}${a}`))
    const heads = await Promise.all(ancestors.map((a) => this.bucket.head(this.keys.prefix + a)))
    const above = ancestors.find((_, i) => heads[i] !== null)
    if (above !== undefined) throw fileInTheWay(above)
    for (const a of ancestors) this.#recent.absent(`file:${this.keys.prefix}${a}`)
  }

  /** A HEAD of `key`, remembered (recent.ts). */
  async #head(key: string): Promise<ObjectHead | null> {
    const head = await this.bucket.head(key)
    this.#recent.saw(key, head)
    return head
  }

  /** The file at `path` now (a HEAD), described; null when there is none. */
  async #file(path: string, key: string): Promise<StoredFile | null> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const head = await this.#head(key)
      if (!head) return null
      const file = await this.#describer.describe(path, head)
      if (file) return file
    }
    throw keepsChanging(`"${path}"`)
  }

  /** The file `head` is of, described; if that version went meanwhile, the one there now. */
  async #described(path: string, head: ObjectHead): Promise<StoredFile> {
    const file = (await this.#describer.describe(path, head)) ?? (await this.#file(path, head.key))
    if (!file) throw notFound(`"${path}"`)
    return file
  }

  /** Deletes the folder at `path` (with `recursive`, everything under it; else only markers other tools made). */
  async #deleteFolder(path: string, options: DeleteOptions): Promise<void> {
    const prefix = this.keys.folder(path)
    if (!(await this.bucket.any(prefix))) throw notFound(`"${path}"`)
    checkEntryIfMatch(options.ifMatch, { type: 'directory', path, name: baseName(path) })
    if (!options.recursive) {
      for await (const objects of this.bucket.keys(prefix)) {
        if (objects.some((o) => !o.key.endsWith('/'))) {
          throw new StorageError('directory_not_empty', `the folder "${path}" is not empty; delete it with recursive`)
        }
      }
    }
    await this.#folderChange({ kind: 'deleted', entry: { type: 'directory', path, name: baseName(path) } }, { op: 'delete', path }, options.origin, () => this.#deleteTree(prefix))
  }

  /** Deletes every object under `prefix` (last modified `until`, when given), a thousand a request. */
  async #deleteTree(prefix: string, until?: Date): Promise<void> {
    this.#recent.forgetUnder(prefix)
    for await (const objects of this.bucket.keys(prefix)) {
      await this.bucket.deleteMany(objects.filter((o) => !until || o.lastModified <= until).map((o) => o.key))
    }
  }

  /** The intent of a delete of the version `head` (change-marks.ts): settled by whether `path` still holds it. */
  async #intendDelete(path: string, head: ObjectHead, origin: ChangeOrigin | undefined): Promise<Announced | null> {
    const found = await this.#marks.before(path, head)
    const file = await this.#described(path, head)
    const version = ChangeMarks.versionOf(head)
    const announced = await this.#marks.intend({ kind: 'deleted', entry: file }, { lacks: { path, revision: version } }, { version, path }, { origin, after: found.after, deleting: true })
    return announced && { ...announced, confirm: async () => (await this.#marks.took(found), await announced.confirm()) }
  }

  /** The intent of a move of the version `source` (described as `file`) to `to`, over `existing` if any: settled by whether `to` holds it. */
  async #intendMove(file: StoredFile, to: string, source: ObjectHead, existing: ObjectHead | null, origin: ChangeOrigin | undefined): Promise<Announced | null> {
    const found = await this.#marks.before(file.path, source)
    const replaced = await this.#marks.before(to, existing)
    const after = [found.after, replaced.after].filter((k) => k !== undefined).sort().at(-1)
    const version = ChangeMarks.versionOf(source)
    const announced = await this.#marks.intend(
      { kind: 'moved', from: file.path, to: { ...file, path: to, name: baseName(to) } },
      { holds: { path: to, revision: version } },
      { version, path: to },
      { origin, after },
    )
    return announced && { ...announced, confirm: async () => (await this.#marks.took(found), await this.#marks.took(replaced), await announced.confirm()) }
  }

  /**
   * A folder's move or delete, announced as one change: its intent is settled by finishing it
   * (`#settle`), should this process die or fail part way. Confirmed once done, and also when some
   * files could not move (the rest did); cancelled when refused before anything moved.
   */
  async #folderChange(change: Change, finish: { op: 'move' | 'delete'; path: string; to?: string }, origin: ChangeOrigin | undefined, run: () => Promise<void>): Promise<void> {
    let intent: Intent | null = null
    if (this.events.enabled) {
      const files = await this.#countFiles(this.keys.folder(finish.path))
      const counted: Change = change.kind === 'upload' || change.kind === 'written' ? change : { ...change, files }
      intent = await this.events.intend(counted, { finish: { ...finish, at: Date.now() } }, { origin })
    }
    try {
      await run()
    } catch (e) {
      if (isStorageError(e, 'already_exists')) await intent?.confirm()
      else if (isStorageError(e, 'invalid_path')) await intent?.cancel() // refused before anything moved (a new key too long)
      else intent?.abandon()
      throw e
    }
    if (intent) failpoint('events.change.visible')
    await intent?.confirm()
  }

  async #countFiles(prefix: string): Promise<number> {
    let n = 0
    for await (const objects of this.bucket.keys(prefix)) n += objects.filter((o) => !o.key.endsWith('/')).length
    return n
  }

  /** Whether the change of an orphan intent is visible (change-marks.ts); a folder's change cut part way is finished first. */
  async #settle(entry: LogEntry): Promise<boolean> {
    const { witness } = entry
    const versionAt = async (path: string) => {
      const head = await this.bucket.head(this.keys.file(path))
      return head && ChangeMarks.versionOf(head)
    }
    if ('holds' in witness) return (await versionAt(witness.holds.path)) === witness.holds.revision
    if ('lacks' in witness) return (await versionAt(witness.lacks.path)) !== witness.lacks.revision
    if ('upload' in witness) return uploadWitnessed(this.staging.records, witness.upload)
    if ('finish' in witness) {
      const { op, path, to, at } = witness.finish as { op: 'move' | 'delete'; path: string; to?: string; at: number }
      // What was written into the folder after the change began is not part of it (its own events follow).
      if (op === 'move' && to !== undefined) await this.#moves.resumeFolder(this.keys.folder(path), this.keys.folder(to), new Date(at))
      else await this.#deleteTree(this.keys.folder(path), new Date(Math.ceil(at / 1000) * 1000))
      return true
    }
    return false
  }

  async #presign(file: StoredFile, response: RedirectResponse): Promise<string | undefined> {
    const command = new GetObjectCommand({
      Bucket: this.bucket.name,
      Key: this.keys.file(file.path),
      ResponseContentType: response.contentType,
      ...(response.contentDisposition !== undefined ? { ResponseContentDisposition: response.contentDisposition } : {}),
    })
    return getSignedUrl(this.#signer ?? this.#client, command, { expiresIn: REDIRECT_EXPIRY_SECONDS })
  }
}
