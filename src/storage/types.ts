/**
 * The storage core's one driver interface. Bytes move as web streams (`ReadableStream<Uint8Array>`)
 * in both directions, the same type a web-standard Request body and Response body use.
 *
 * Every path a driver receives has been through `parsePath` (see paths.ts).
 */

/** Which driver holds a file's bytes; informative only. */
export type DriverKind = 'disk' | 'mongo-inline' | 'gridfs'

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
}

export interface PutResult {
  file: StoredFile
  /** True when nothing existed at the path before. */
  created: boolean
}

export interface ReadResult {
  file: StoredFile
  body: ReadableStream<Uint8Array>
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
}

export interface DeleteOptions {
  recursive?: boolean
  ifMatch?: string[]
}

export interface CreateUploadOptions extends WritePreconditions {
  contentType?: string
  metadata?: Record<string, unknown>
  maxBytes?: number
}

export interface UploadSession {
  uploadId: string
  path: string
  partSizeLimit: number
  createdAt: string
  expiresAt: string
}

export interface PartInfo {
  part: number
  size: number
  sha256: string
}

export interface UploadStatus extends UploadSession {
  contentType?: string
  metadata: Record<string, unknown>
  parts: PartInfo[]
}

export interface CompleteUploadOptions {
  /** Parts to assemble, in ascending order; all received parts when omitted. */
  parts?: number[]
  expectedSha256?: string
}

export interface PutPartOptions {
  expectedSha256?: string
  expectedSize?: number
}

export interface HealthReport {
  ok: boolean
  latencyMs: number
  message?: string
}

/**
 * A storage driver. One instance serves one store. Implementations: disk, mongo-inline, gridfs, and
 * the combined mongo store. Errors are `StorageError`s (errors.ts).
 */
export interface StorageDriver {
  readonly kind: string

  /** Streams `body` into `path`, atomically: readers see the old file or the new one, never a part. */
  put(path: string, body: ReadableStream<Uint8Array>, options?: PutOptions): Promise<PutResult>
  /** Opens a file for reading, optionally a byte range of it (already validated against its size). */
  read(path: string, range?: ByteRange): Promise<ReadResult>
  /** Describes a file. Throws `not_found` for a folder or nothing. */
  stat(path: string): Promise<StoredFile>
  /** Describes whatever is at `path`, or returns null. */
  lookup(path: string): Promise<StoredEntry | null>
  list(dir: string, options?: ListOptions): Promise<ListPage>
  /** Moves a file or a folder (with everything under it). Returns what is now at `to`. */
  move(from: string, to: string, options?: MoveOptions): Promise<StoredEntry>
  /** Deletes a file, or a folder (`recursive` for a non-empty one). */
  delete(path: string, options?: DeleteOptions): Promise<void>

  createUpload(path: string, options?: CreateUploadOptions): Promise<UploadSession>
  putPart(
    uploadId: string,
    part: number,
    body: ReadableStream<Uint8Array>,
    options?: PutPartOptions,
  ): Promise<PartInfo>
  uploadStatus(uploadId: string): Promise<UploadStatus>
  completeUpload(uploadId: string, options?: CompleteUploadOptions): Promise<PutResult>
  abortUpload(uploadId: string): Promise<void>
  /** Reclaims the space of expired uploads and of anything a crash left behind. */
  sweep(now?: Date): Promise<{ removed: number }>

  health(): Promise<HealthReport>
  close(): Promise<void>
}
