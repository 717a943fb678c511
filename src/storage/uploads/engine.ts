/**
 * The upload engine: uploads in parts (SPEC 3.3) and appends (tus), written once, on the staging
 * primitive of any driver (driver.ts). It owns the whole state machine: offsets and sizes, exactly
 * one winner of two appends at one offset, keeping a cut body (`keepPartial`), checksums, a size
 * declared later, completion with its journal (completion.ts), abort, expiry and the sweep.
 *
 * Parts and appends never take a lock of the engine's. Each is checked before its body is read,
 * written, checked again and committed (`PartWriter.commit`): the driver places it only if its
 * number is still free (an append), and the engine then looks at the upload again and has the part
 * taken back if the upload ended or a size declared meanwhile no longer fits. Whatever ends an
 * upload or declares its size writes its record first and looks at the parts after, so of two
 * racing sides one always sees the other. On a driver with a lock of its own (`exclusive`), those
 * run under it, as the driver's commits of parts do, and the look after a commit is left out.
 */
import type { Hash } from 'node:crypto'
import { checkAnnouncedSize, verifySha256 } from '../digest.js'
import type { CommitChecks, PartWriter, StorageDriver, UploadStaging } from '../driver.js'
import { offsetMismatch, payloadTooLarge } from '../errors.js'
import { invalidPathIfRoot } from '../paths.js'
import type { EventRecorder, Intent } from '../events/recorder.js'
import type { ChangeOrigin } from '../events/types.js'
import type {
  AbortUploadOptions,
  AppendPartOptions,
  AppendResult,
  CompleteUploadOptions,
  CreateUploadOptions,
  PartInfo,
  PutPartOptions,
  PutResult,
  UploadSession,
  UploadStatus,
  UploadStatusOptions,
} from '../types.js'
import { Completion } from './completion.js'
import { CompletionLease } from './lease.js'
import { acceptReceived, appendRoom, type ReceivedBody, receiveBody } from './receive-body.js'
import { UploadBook, without } from './records.js'
import {
  checkAppend,
  checkCreateOptions,
  checkDeclaredSize,
  checkPartNumber,
  checkTotal,
  checkUploadId,
  newUploadRecord,
  publicSession,
  receivedBytes,
  type UploadPolicy,
  uploadStatusOf,
} from './rules.js'

/** Expired uploads removed per batch of a sweep, and batches at most. */
const SWEEP_BATCH = 100
const SWEEP_BATCHES = 100

export class UploadEngine {
  readonly #staging: UploadStaging
  readonly #book: UploadBook
  readonly #completion: Completion

  constructor(
    private readonly driver: StorageDriver,
    private readonly policy: UploadPolicy,
  ) {
    this.#staging = driver.staging
    this.#book = new UploadBook(this.#staging, (id, journal) => this.#completion.committed(id, journal))
    this.#completion = new Completion(driver, this.#book, new CompletionLease(this.#book, policy.completionLeaseMs))
  }

  async create(path: string, options: CreateUploadOptions = {}): Promise<UploadSession> {
    invalidPathIfRoot(path)
    checkCreateOptions(options)
    await this.driver.checkWrite(path, options)
    const record = newUploadRecord(path, this.policy, options)
    const events = this.driver.events
    const intent =
      (await events?.intend(
        {
          kind: 'upload',
          type: 'upload.created',
          uploadId: record.uploadId,
          path,
          metadata: record.metadata,
          expiresAt: record.expiresAt,
          ...(record.totalSize !== undefined ? { totalSize: record.totalSize } : {}),
          ...(record.contentType !== undefined ? { contentType: record.contentType } : {}),
        },
        { upload: { id: record.uploadId, ended: false } },
        { origin: options.origin },
      )) ?? null
    await withIntent(events, intent, () => this.#staging.records.create(record))
    return publicSession(record)
  }

  async putPart(uploadId: string, part: number, body: ReadableStream<Uint8Array>, options: PutPartOptions = {}): Promise<PartInfo> {
    checkPartNumber(part)
    const { partSizeLimit } = await this.#book.live(uploadId)
    checkAnnouncedSize(options.expectedSize, partSizeLimit)
    const writer = await this.#staging.openPart(uploadId, part)
    const received = await receiveInto(writer, body, { maxBytes: partSizeLimit, tooLarge: () => payloadTooLarge(partSizeLimit) })
    const info: PartInfo = { part, size: received.size, sha256: received.sha256 }
    let total = 0
    await commitOrDiscard(writer, info, received.hash, async () => {
      if (received.broken) throw received.broken
      verifySha256(options.expectedSha256, info.sha256)
      return this.#checks(
        async () => {
          const { state, parts } = await this.#book.liveWithParts(uploadId) // completed or aborted meanwhile?
          total = receivedBytes(parts.filter((p) => p.part !== part)) + info.size
          checkTotal(state, total)
        },
        async () => checkTotal(await this.#book.live(uploadId), total),
      )
    })
    return info
  }

  async append(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    checkUploadId(uploadId)
    await this.#staging.recover?.(uploadId)
    // Refuse a stale offset before reading a byte; checked again when the part is committed.
    const { state, parts } = await this.#book.liveWithParts(uploadId)
    checkAppend(state, options.offset, receivedBytes(parts), 0)
    const maxBytes = appendRoom(state, options.offset, options.expectedSize)
    const keepOnCrash = options.keepPartial === true && options.expectedChecksum === undefined
    const writer = await this.#staging.openAppend(uploadId, parts.at(-1), { offset: options.offset, keepOnCrash })
    const received = await receiveInto(writer, body, {
      maxBytes,
      ...(writer.hash ? { hash: writer.hash } : {}),
      ...(options.expectedChecksum ? { checksum: options.expectedChecksum.algorithm } : {}),
    })
    let partial = false
    if (received.size === 0) {
      await writer.discard()
      acceptReceived(received, options)
      const { state: now, parts: kept } = await this.#book.liveWithParts(uploadId)
      checkAppend(now, options.offset, receivedBytes(kept), 0)
      return { part: null, offset: options.offset, partial: received.broken !== undefined }
    }
    const info: PartInfo = { part: writer.part, size: writer.base + received.size, sha256: received.sha256 }
    const end = options.offset + received.size
    const placed = await commitOrDiscard(writer, info, received.hash, async () => {
      partial = acceptReceived(received, options).partial
      return this.#checks(
        async () => {
          const { state: now, parts: kept } = await this.#book.liveWithParts(uploadId)
          checkAppend(now, options.offset, receivedBytes(kept), received.size)
        },
        async () => checkTotal(await this.#book.live(uploadId), end),
      )
    })
    if (!placed) {
      // Another append at this offset came first.
      const { parts: now } = await this.#book.liveWithParts(uploadId)
      throw offsetMismatch(options.offset, receivedBytes(now))
    }
    return { part: info, offset: end, partial }
  }

  async declareSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    checkUploadId(uploadId)
    await this.#serial(uploadId, async () => {
      const { state, parts } = await this.#book.liveWithParts(uploadId)
      checkDeclaredSize(state, receivedBytes(parts), totalSize)
      if (state.totalSize !== undefined) return
      await this.#book.change(uploadId, (s) => (s.totalSize === undefined && !s.finished ? { ...s, totalSize } : null))
      // Looks again after writing: another size declared at the same time, or an append that went
      // past this size meanwhile, makes this declaration fail (and undoes it when it was written).
      const { state: after, parts: now } = await this.#book.liveWithParts(uploadId)
      try {
        checkDeclaredSize(after, receivedBytes(now), totalSize)
      } catch (e) {
        if (after.totalSize === totalSize) {
          await this.#book.change(uploadId, (s) => (s.totalSize === totalSize ? without(s, 'totalSize') : null))
        }
        throw e
      }
    })
    return this.status(uploadId)
  }

  async status(uploadId: string, options: UploadStatusOptions = {}): Promise<UploadStatus> {
    checkUploadId(uploadId)
    await this.#staging.recover?.(uploadId)
    const state = await this.#book.live(uploadId, options.finished)
    return uploadStatusOf(state, await this.#staging.listParts(uploadId))
  }

  complete(uploadId: string, options: CompleteUploadOptions = {}): Promise<PutResult> {
    checkUploadId(uploadId)
    return this.#completion.complete(uploadId, options)
  }

  async abort(uploadId: string, options: AbortUploadOptions = {}): Promise<void> {
    checkUploadId(uploadId)
    await this.#serial(uploadId, async () => {
      await this.#book.live(uploadId)
      await this.#end(uploadId, { type: 'upload.aborted', origin: options.origin })
    })
  }

  /** Removes expired uploads (finished ones included), then what the driver's own operations left. */
  async sweep(now: Date): Promise<number> {
    let removed = 0
    for (let batch = 0; batch < SWEEP_BATCHES; batch++) {
      const expired = await this.#staging.records.expired(now, SWEEP_BATCH)
      for (const uploadId of expired) await this.#serial(uploadId, () => this.#end(uploadId, { type: 'upload.expired' }))
      removed += expired.length
      if (expired.length < SWEEP_BATCH) break
    }
    return removed + ((await this.driver.sweep?.(now)) ?? 0)
  }

  /**
   * Ends an upload: marks it finished (so that appends under way take their parts back), removes its
   * parts, then its record. Ending one that had not finished is announced (`ending`); one that was
   * completed or aborted before (the sweep removing it once expired) is not.
   */
  async #end(uploadId: string, ending: { type: 'upload.aborted' | 'upload.expired'; origin?: ChangeOrigin | undefined }): Promise<void> {
    const events = this.driver.events
    const found = events?.enabled ? await this.#staging.records.read(uploadId) : null
    const intent =
      found && !found.state.finished
        ? await events!.intend(
            { kind: 'upload', type: ending.type, uploadId, path: found.state.path },
            { upload: { id: uploadId, ended: true } },
            { origin: ending.origin },
          )
        : null
    let ended = false
    await this.#book
      .change(uploadId, (s) => {
        ended = !s.finished
        return ended ? { ...s, finished: { aborted: true } } : null
      })
      .catch(() => {})
    if (intent) await (ended ? intent.confirm() : intent.cancel())
    await this.#staging.discardParts(uploadId)
    await this.#staging.records.remove(uploadId)
  }

  /** Runs `fn` under the driver's lock of the upload, where it has one. */
  #serial(uploadId: string, fn: () => Promise<void>): Promise<void> {
    return this.#staging.exclusive ? this.#staging.exclusive(uploadId, fn) : fn()
  }

  /** The checks of a part's commit: `after` only where the driver has no lock of its own (see `exclusive`). */
  #checks(before: () => Promise<void>, after: () => Promise<void>): CommitChecks {
    return { before, after: this.#staging.exclusive ? async () => {} : after }
  }
}

/** Streams `body` into `writer`, closing it; deletes what it wrote when the body cannot be received. */
async function receiveInto(
  writer: PartWriter,
  body: ReadableStream<Uint8Array>,
  options: Parameters<typeof receiveBody>[2],
): Promise<ReceivedBody> {
  try {
    const received = await receiveBody(body, (chunk) => writer.write(chunk), options)
    await writer.close()
    return received
  } catch (e) {
    await writer.discard().catch(() => {})
    throw e
  }
}

/**
 * Commits `writer` as part `info` (`hash`: its running sha256) once `accept` says the bytes may be
 * kept (it throws otherwise, and gives the checks of the commit); deletes them when they may not.
 */
async function commitOrDiscard(writer: PartWriter, info: PartInfo, hash: Hash, accept: () => Promise<CommitChecks>): Promise<boolean> {
  let checks: CommitChecks
  try {
    checks = await accept()
  } catch (e) {
    await writer.discard().catch(() => {})
    throw e
  }
  return writer.commit(info, hash, checks)
}

/** Runs `change` with the intent that announces it (recorder.ts `around`), when there is one. */
function withIntent<T>(events: EventRecorder | undefined, intent: Intent | null, change: () => Promise<T>): Promise<T> {
  return events ? events.around(intent, change) : change()
}
