/**
 * What a storage driver implements: the file operations, and a small staging primitive on which
 * the one upload engine (uploads/engine.ts) runs uploads in parts and tus appends. A new driver is
 * these two and nothing else; `withUploads(driver)` (store.ts) makes the `Store` that handlers use.
 *
 * The split, after tus-node-server's 7-method `DataStore` with a separate `Locker`, and why it is
 * shaped as it is:
 *
 * - Parts are written by a `PartWriter`, which the engine feeds chunk by chunk (counting, hashing,
 *   checking limits and checksums itself) and then commits. Committing an append places part
 *   highest+1 only if that number is still free (disk: under its lock; MongoDB: the insert of a
 *   unique `_id`; S3: `If-None-Match: *`), so of two appends at one offset exactly one wins on every
 *   driver without a lock of the engine's. The engine's checks run around the placement
 *   (`CommitChecks`): a driver without a lock of its own runs them just before and just after, and
 *   takes the part back when the second fails (the upload ended, or a size declared meanwhile no
 *   longer fits); one with a lock (`exclusive`) runs the first inside it, where the engine also ends
 *   uploads and declares sizes, so the second is left out.
 * - The engine keeps each upload's record (`UploadState`) in the driver's record store, changed
 *   only by compare-and-set (`UploadRecords.update`), so instances sharing a store agree.
 * - Completing is two-phase: `prepare` stages the whole file as the version it will be (its path,
 *   attributes and a revision the engine chose: an object store sets them when it starts the
 *   object), or, where it can, names the single part as it is; `commit` makes it visible atomically,
 *   under the write's conditions, and calls back just before, so that the engine writes its journal
 *   then, with the result the commit will answer (rather than between the two calls: a journal
 *   that holds the result answers a retry exactly, even once the file was replaced). After a crash
 *   the journal is settled from what the store shows: `lookupRevision` (the path holds that
 *   revision), or `committed` where a driver knows more. The revision is a general token the driver
 *   stores with the version, not a trick of one driver, so that other changes (durable events) can
 *   be settled the same way; `lookupRevision` is a file operation for that reason.
 * - The lock of a completion is the engine's lease on the record, unless the driver has a better
 *   one (`exclusive`: the disk store's locks know at once when their holder died).
 * - Optimisations stay the driver's, never branches of the engine on the driver's kind: the disk
 *   store extends the part the previous append left in place (`openAppend` may return a writer of
 *   that part), commits a single part without copying it (`prepare`), and keeps the bytes a killed
 *   append had written (`recover`).
 *
 * Errors are `StorageError`s (errors.ts). Every path has been through `parsePath` (paths.ts).
 */
import type { Hash } from 'node:crypto'
import type { SharedRecords } from './shared-records.js'
import type { EventRecorder } from './events/recorder.js'
import type { ChangeOrigin } from './events/types.js'
import type { UploadRecord } from './uploads/rules.js'
import type { FileOperations, PartInfo, PutResult, StoredFile, WritePreconditions } from './types.js'

export interface StorageDriver extends FileOperations {
  /**
   * The checks a write makes before it reads a byte, and again when it commits: `conditions` against
   * what is at `path` now, no file above it, no folder at it, the path allowed (confined to the store),
   * and the attributes the file will have, where given (a new upload's), within the driver's limits.
   */
  checkWrite(path: string, conditions: WritePreconditions & FileAttributesToBe): Promise<void>
  /** The file at `path` if it is the version committed with `revision` (`FileToBe.revision`); else null. */
  lookupRevision(path: string, revision: string): Promise<StoredFile | null>
  readonly staging: UploadStaging
  /**
   * Records the events of this driver's changes, on the driver's own `EventLog` (events/types.ts):
   * its changes write an intent under their lock just before they become visible, confirm it once
   * they are, and the log settles orphans from what the store shows. Absent: no events.
   */
  readonly events?: EventRecorder
  /**
   * Runs an operation made of several calls to this driver (one of the upload engine's), as the
   * driver runs its own: its errors as `StorageError`s, and counted as running until it settles, so
   * that `close` lets it end. `subject` names what it is about (an upload id), for messages.
   * Absent: the operation runs as it is.
   */
  run?<T>(subject: string, operation: () => Promise<T>): Promise<T>
  /**
   * Reclaims what the driver's own operations left behind (a crash part way through a write); the
   * engine sweeps expired uploads itself, first. Returns how many things it removed.
   */
  sweep?(now: Date): Promise<number>
  /**
   * Small records every process sharing the store changes atomically, kept by the driver beside the
   * files, one set per `namespace` (shared-records.ts): the quota ledger's (quotas/). Absent: the
   * store cannot keep quotas.
   */
  sharedRecords?(namespace: string): SharedRecords
}

/** Where large uploads are staged until they are composed into a file. */
export interface UploadStaging {
  readonly records: UploadRecords

  /** A writer of part `part` that replaces the part when committed (parts sent by number). */
  openPart(uploadId: string, part: number): Promise<PartWriter>
  /**
   * A writer of an append that follows `last`, the highest part as the caller just read it: part
   * `last + 1`, committed only while that number is free; or, where the driver can, `last` itself,
   * extended in place (`base` > 0), committed only while it is still as it was. `keepOnCrash`: the
   * bytes may be kept as the part should the process die before the commit (an append without a
   * checksum, that keeps a cut body), where the driver can find them again (`recover`).
   */
  openAppend(uploadId: string, last: PartInfo | undefined, options: { offset: number; keepOnCrash: boolean }): Promise<PartWriter>
  /** The parts received, by number. */
  listParts(uploadId: string): Promise<PartInfo[]>
  /** Removes every part of the upload and anything staged for it; its record stays. */
  discardParts(uploadId: string): Promise<void>

  /**
   * The file `file` describes, made of `parts` (received, in order) concatenated and hashed, at
   * most `file.maxBytes` (`payload_too_large`); not visible yet.
   */
  prepare(uploadId: string, parts: PartInfo[], file: FileToBe): Promise<PreparedFile>
  /**
   * Makes a prepared file visible at its path, atomically with `options`' conditions.
   * `options.beforeVisible` runs with the result the commit will answer, just before the file
   * becomes visible (again, should the commit retry); when it throws, nothing becomes visible. A
   * commit that fails deletes what `prepare` made.
   */
  commit(prepared: PreparedFile, options: CommitOptions): Promise<PutResult>
  /** Deletes what `prepare` made (never a part itself), for a file that will not be committed. */
  discardPrepared(prepared: PreparedFile): Promise<void>
  /**
   * Whether the completion `journal` describes made its file visible, after the process that ran
   * it may have died. Absent: whether the path holds its revision (`lookupRevision`); a driver that
   * can tell a commit even after the file was replaced since does better.
   */
  committed?(uploadId: string, journal: CompletionJournal): Promise<boolean>

  /**
   * Runs `fn` as the only holder of the upload's lock, across every process sharing the store. A
   * driver that has it also runs every `PartWriter.commit` (its checks included) inside it; the
   * engine then runs inside it whatever ends an upload (completion, abort, the sweep's removal) or
   * declares its size, so that nothing changes an upload between a part's checks and its placement,
   * and no look after the placement is needed. Absent: completions hold a lease on the upload's
   * record, renewed while they work (a holder that died blocks the upload until its lease runs
   * out), and parts are looked at again after their placement. The engine calls `discardParts` and
   * `UploadRecords.remove` while holding it.
   */
  exclusive?<T>(uploadId: string, fn: () => Promise<T>): Promise<T>
  /**
   * Settles what a dead writer of this upload left (a process killed during an append), and
   * resolves once no such recovery is under way anywhere, so that what follows counts its result.
   */
  recover?(uploadId: string): Promise<void>
}

/**
 * One part being written. The engine calls `write` for each chunk, waiting for each; `close` once
 * the body ended; then `commit`, or `discard` to give up (before or after `close`).
 */
export interface PartWriter {
  /** The part it writes. */
  readonly part: number
  /** Bytes the part holds before this writer's: 0 for a new part, the size of a part it extends. */
  readonly base: number
  /** The sha256 of those `base` bytes, still running: the writer's bytes continue it. Absent for a new part. */
  readonly hash?: Hash
  write(chunk: Uint8Array): Promise<void>
  /** Writes out every byte taken. */
  close(): Promise<void>
  /**
   * Makes the bytes written (after `base`) count as part `info`, whose sha256 is `hash` (still
   * running, for a driver that extends the part later). Runs `checks.before` just before the part is
   * placed (a failure there places nothing) and `checks.after` once it counts (a failure there takes
   * it back); a driver with `exclusive` runs both inside it. False
   * when the part was not free any more (another append took its number, or changed the part it
   * extends). Whatever the outcome, bytes that do not count are deleted.
   */
  commit(info: PartInfo, hash: Hash, checks: CommitChecks): Promise<boolean>
  /** Deletes what was written (a part it extends goes back to its size). */
  discard(): Promise<void>
}

/** What a write will give its file besides bytes, for a driver that limits them (the s3 store's 2 KB of metadata). */
export interface FileAttributesToBe {
  contentType?: string
  metadata?: Record<string, unknown>
}

export interface CommitChecks {
  before(): Promise<void>
  after(): Promise<void>
}

/** A file `prepare` staged: what `commit` and `discardPrepared` are given back. */
export interface PreparedFile {
  size: number
  sha256: string
  /** What the driver needs to recognise its commit after a crash (JSON), kept in the journal. */
  note: Record<string, unknown>
}

/** The file a completion makes. */
export interface FileToBe {
  path: string
  contentType?: string
  metadata: Record<string, unknown>
  /** A token the caller chose, stored with the version: `lookupRevision(path, revision)` finds it. */
  revision: string
  maxBytes?: number
}

export interface CommitOptions extends WritePreconditions {
  beforeVisible(result: PutResult): Promise<void>
  /** The completion's upload and who asked: its `upload.completed` event rides with the file's. */
  announce?: { uploadId: string; origin?: ChangeOrigin }
}

/**
 * An upload as the engine keeps it: what it was created with (`totalSize` once declared), and how
 * far its completion went.
 */
export interface UploadState extends UploadRecord {
  /** A completion holds the upload until `until` (ISO time): the engine's lease, where the driver has no `exclusive`. */
  completing?: { until: string; by: string }
  /** Written just before a completion's file becomes visible. */
  journal?: CompletionJournal
  /** Completed (what it stored, answered to a completion sent again) or aborted; kept until the upload expires. */
  finished?: { revision: string; result: PutResult } | { aborted: true }
}

export interface CompletionJournal {
  /** The revision the file is committed as. */
  revision: string
  /** What the commit answers once the file is visible. */
  result: PutResult
  /** The prepared file's `note`. */
  note: Record<string, unknown>
}

/** An upload's record with the version a compare-and-set compares. */
export interface VersionedState {
  state: UploadState
  version: string
}

/** The uploads' records, each changed only by compare-and-set. */
export interface UploadRecords {
  /** Stores a new upload's record (its id is new). */
  create(state: UploadState): Promise<void>
  read(uploadId: string): Promise<VersionedState | null>
  /** Replaces the record if it is still at `version`; false when it changed meanwhile or is gone. */
  update(uploadId: string, version: string, next: UploadState): Promise<boolean>
  /** Removes the record (with whatever of the upload is still staged). */
  remove(uploadId: string): Promise<void>
  /** Ids of uploads expired at `now`, at most `limit` (removed ones are not listed again). */
  expired(now: Date, limit: number): Promise<string[]>
}
