/**
 * What the storage core offers: a `Store` per named store, the file operations of a driver with the
 * upload engine on top (driver.ts, store.ts), and the types they take and give. Bytes move as web
 * streams (`ReadableStream<Uint8Array>`) in both directions, the same type a web-standard Request
 * body and Response body use.
 *
 * Every path a store receives has been through `parsePath` (see paths.ts).
 */
import type { QuotaUsage } from './quotas/ledger.js'
import type { EventRecorder } from './events/recorder.js'
import type { ChangeOrigin } from './events/types.js'

/** Which driver holds a file's bytes; informative only. */
export type DriverKind = 'disk' | 'mongo-inline' | 'gridfs' | 's3'

/** A stored file as the drivers describe it; `FileInfo` adds the store name. */
export interface StoredFile {
  type: 'file'
  path: string
  name: string
  size: number
  contentType: string
  sha256: string
  /** Strong ETag (quoted), derived from the sha256, so it is the same on every instance and driver. */
  etag: string
  created: string
  modified: string
  metadata: Record<string, unknown>
  driver: DriverKind
}

export interface StoredDirectory {
  type: 'directory'
  path: string
  name: string
}

export type StoredEntry = StoredFile | StoredDirectory

export type FileInfo = StoredFile & { store: string }
export type DirectoryInfo = StoredDirectory & { store: string }
export type EntryInfo = FileInfo | DirectoryInfo

/** Inclusive byte range, as in HTTP. */
export interface ByteRange {
  start: number
  end: number
}

/** Conditions checked atomically with the change they guard. */
export interface WritePreconditions {
  /** Refuse when anything exists at the target (`If-None-Match: *`). */
  mustNotExist?: boolean
  /** Refuse unless the current file's ETag is one of these (`If-Match`); `*` matches any file. */
  ifMatch?: string[]
}

export interface PutOptions extends WritePreconditions {
  contentType?: string
  metadata?: Record<string, unknown>
  /** Hex sha256 the content must have; checked before the file becomes visible. */
  expectedSha256?: string
  /** Size announced by the client (Content-Length), when known. A hint: the stream is authoritative. */
  expectedSize?: number
  /** Refuse bodies larger than this many bytes. */
  maxBytes?: number
  /** A token stored with the version: `lookupRevision(path, revision)` finds it (made by the store when absent). */
  revision?: string
  /** Who asked, for the events announcing the change. */
  origin?: ChangeOrigin
}

export interface PutResult {
  file: StoredFile
  /** True when nothing existed at the path before. */
  created: boolean
}

export interface ReadResult {
  file: StoredFile
  body: ReadableStream<Uint8Array>
  /**
   * All that `body` would stream, when the driver holds it in memory already (a small file read in
   * one go, bytes inline in a record). A caller may answer with these and leave `body` alone: it is
   * then never made (a few percent of the CPU of a 4 KiB download). Read-only: they (and the
   * chunks of `body`) may be shared with other reads of the same file (the disk store's cache of
   * small files).
   */
  bytes?: Uint8Array
}

export interface ListOptions {
  /** List every file under the folder (files only, ordered by path) instead of one level. */
  recursive?: boolean
  limit?: number
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string
}

export interface ListPage {
  entries: StoredEntry[]
  nextCursor: string | null
}

export interface MoveOptions {
  overwrite?: boolean
  /** `If-Match` on the source. */
  ifMatch?: string[]
  /** A file moved: a token stored with it at its new place, as `PutOptions.revision`. */
  revision?: string
  origin?: ChangeOrigin
}

export interface DeleteOptions {
  recursive?: boolean
  ifMatch?: string[]
  origin?: ChangeOrigin
}

export interface CreateUploadOptions extends WritePreconditions {
  contentType?: string
  metadata?: Record<string, unknown>
  maxBytes?: number
  /**
   * The size the assembled file will have, when known at creation (tus `Upload-Length`). The parts
   * may never add up to more, and completion needs exactly this many bytes. Unset: declared later
   * with `declareUploadSize`, or never.
   */
  totalSize?: number
  /**
   * Opaque strings a protocol layer keeps with the upload and reads back from `uploadStatus` (tus
   * keeps the `Upload-Metadata` header as the client sent it). At most 16 KiB of keys and values.
   */
  attributes?: Record<string, string>
  /**
   * Who created the upload (an access-control principal's id), kept with it so that the HTTP layer
   * can answer another principal `404`. The core stores it and never looks at it.
   */
  owner?: string
  origin?: ChangeOrigin
}

export interface UploadSession {
  uploadId: string
  path: string
  partSizeLimit: number
  createdAt: string
  expiresAt: string
  /** Present once the size of the whole is known (at creation or by `declareUploadSize`). */
  totalSize?: number
}

export interface PartInfo {
  part: number
  size: number
  sha256: string
}

export interface UploadStatus extends UploadSession {
  contentType?: string
  metadata: Record<string, unknown>
  /** As given at creation; `{}` when none were. */
  attributes: Record<string, string>
  /** As given at creation (`CreateUploadOptions.owner`); absent when none was. */
  owner?: string
  parts: PartInfo[]
  /** Bytes received so far: the sum of the parts' sizes. */
  received: number
}

export interface UploadStatusOptions {
  /**
   * Also answer an upload whose completion committed (until it expires; its `parts` may be gone):
   * a retried `completeUpload` is checked against its owner and path like the first one.
   */
  finished?: boolean
}

export interface CompleteUploadOptions {
  /** Parts to assemble, each once, in any order (they are assembled by number); all received parts when omitted. */
  parts?: number[]
  expectedSha256?: string
  origin?: ChangeOrigin
}

export interface AbortUploadOptions {
  origin?: ChangeOrigin
}

export interface PutPartOptions {
  expectedSha256?: string
  expectedSize?: number
}

export type ChecksumAlgorithm = 'sha1' | 'sha256'

export interface AppendPartOptions {
  /** Where the client believes the upload stands: the append is refused (`offset_mismatch`) unless it is `received`. */
  offset: number
  /** Size announced by the client (Content-Length): refused at once when it cannot fit. A hint otherwise. */
  expectedSize?: number
  /** Digest the appended bytes must have; on mismatch nothing of this append is kept (`checksum_mismatch`). */
  expectedChecksum?: { algorithm: ChecksumAlgorithm; hex: string }
  /**
   * When the body fails part-way (the connection was cut), keep the bytes that arrived as a shorter
   * part instead of discarding them, so a client can resume right after them. Ignored with an
   * `expectedChecksum` (a cut body cannot be verified, so it is discarded).
   */
  keepPartial?: boolean
}

export interface AppendResult {
  /**
   * The part that holds the bytes now, or null when no byte was kept: a new one, numbered one past
   * the highest so far, or the last part extended by them (its new size and sha256), on a driver that
   * extends the part the previous append left (disk).
   */
  part: PartInfo | null
  /** Bytes received after this append: the upload's new `received`. */
  offset: number
  /** True when the body broke off and only what arrived was kept (`keepPartial`). */
  partial: boolean
}

/** The headers the backing service must answer a redirected download with (`FileOperations.redirectUrl`). */
export interface RedirectResponse {
  contentType: string
  contentDisposition?: string
}

export interface HealthReport {
  /** The store answers (reads work). */
  ok: boolean
  /**
   * The store can take writes now (room left, not read-only, writes accepted). A store that answers
   * but cannot write is degraded: `ok` true, `writable` false. Absent: not checked, taken as true.
   */
  writable?: boolean
  latencyMs: number
  message?: string
}

/** The file operations: what every driver implements (driver.ts), and what a `Store` passes on. */
export interface FileOperations {
  readonly kind: string

  /** Streams `body` into `path`, atomically: readers see the old file or the new one, never a part. */
  put(path: string, body: ReadableStream<Uint8Array>, options?: PutOptions): Promise<PutResult>
  /** Opens a file for reading, optionally a byte range of it (already validated against its size). */
  read(path: string, range?: ByteRange): Promise<ReadResult>
  /** Describes a file. Throws `not_found` for a folder or nothing. */
  stat(path: string): Promise<StoredFile>
  /** Describes whatever is at `path`, or returns null. */
  lookup(path: string): Promise<StoredEntry | null>
  /**
   * A name on the local file system, relative to the store's folder, that holds exactly the
   * version `file` describes (a `file` this store returned) long enough for it to be opened, even if that version is replaced or deleted meanwhile: for a web server in front to open and
   * send (X-Accel-Redirect). Undefined where there is none (a store not on a local disk, a file the
   * store has not recorded yet, a version already gone).
   */
  localVersion?(file: StoredFile): Promise<string | undefined>
  /**
   * A short-lived URL at which the backing service itself sends the bytes of `file` (a file this
   * store returned), answered with the headers of `response`: for a download handler to redirect an
   * authorized GET to (the s3 store's presigned URLs, S3_REDIRECT_DOWNLOADS). Undefined where there
   * is none.
   */
  redirectUrl?(file: StoredFile, response: RedirectResponse): Promise<string | undefined>
  list(dir: string, options?: ListOptions): Promise<ListPage>
  /** Moves a file or a folder (with everything under it). Returns what is now at `to`. */
  move(from: string, to: string, options?: MoveOptions): Promise<StoredEntry>
  /** Deletes a file, or a folder (`recursive` for a non-empty one). */
  delete(path: string, options?: DeleteOptions): Promise<void>

  health(): Promise<HealthReport>
  close(): Promise<void>
  /**
   * Refuses (`quota_exceeded`) files of these sizes at these paths if they would not fit the store's
   * quotas now: a folder copied in from another store is checked as a whole before its first byte
   * (each file's write is checked again). Absent: the store has no quotas.
   */
  checkRoom?(files: AsyncIterable<{ path: string; size: number }>): Promise<void>
  /** The events of this store's changes (storage/events), where its driver records them. */
  readonly events?: EventRecorder
}

/** Uploads in parts and tus uploads, as the upload engine (uploads/engine.ts) runs them on every driver. */
export interface UploadOperations {
  createUpload(path: string, options?: CreateUploadOptions): Promise<UploadSession>
  putPart(
    uploadId: string,
    part: number,
    body: ReadableStream<Uint8Array>,
    options?: PutPartOptions,
  ): Promise<PartInfo>
  /**
   * Appends `body` to an upload (resumable protocols such as tus): it is stored as part number
   * (highest so far + 1), or added to the part the previous append left (see `AppendResult.part`),
   * only if the upload still has `offset` bytes when it is committed, atomically with that check
   * (across instances, for a shared store), else `offset_mismatch` and nothing is kept. Bounded by
   * `totalSize` and `maxBytes` of the upload (`payload_too_large`, nothing kept), not by
   * `partSizeLimit`. An empty append stores nothing.
   */
  appendPart(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult>
  /**
   * Sets the size of the whole once it is known (tus `creation-defer-length`). Declaring the size it
   * already has is a no-op; another size, or one below what was received, is `invalid_request`; over
   * the upload's `maxBytes`, `payload_too_large`.
   */
  declareUploadSize(uploadId: string, totalSize: number): Promise<UploadStatus>
  uploadStatus(uploadId: string, options?: UploadStatusOptions): Promise<UploadStatus>
  /** Assembles the parts into the file. With a `totalSize`, the parts must add up to exactly that (`upload_incomplete`). */
  completeUpload(uploadId: string, options?: CompleteUploadOptions): Promise<PutResult>
  abortUpload(uploadId: string, options?: AbortUploadOptions): Promise<void>
  /** Reclaims the space of expired uploads and of anything a crash left behind. */
  sweep(now?: Date): Promise<{ removed: number }>
}

/**
 * A store as handlers and adapters use it: one instance serves one named store. Made from a driver
 * by `withUploads` (store.ts); the `StoreRegistry` holds them. Errors are `StorageError`s (errors.ts).
 */
export interface Store extends FileOperations, UploadOperations {
  /** The quotas that hold for a write at `path`, with their usage (quotas/); absent: the store has none. */
  quotaUsage?(path: string): Promise<QuotaUsage[]>
}
