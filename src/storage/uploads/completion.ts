/**
 * Completing an upload, on any driver, once and for all:
 *
 *   1. the upload's lock (the driver's `exclusive`, else a lease on its record, lease.ts);
 *   2. the parts to assemble, the write's preconditions checked (before copying gigabytes);
 *   3. the driver prepares the whole file, not yet visible (or names the single part as it is);
 *   4. the driver commits it as a new revision; just before it becomes visible, the journal (the
 *      revision, the result it will answer, the driver's note) goes into the upload's record;
 *   5. the record says finished, with what was stored; the parts go (again by every completion
 *      sent later, should a crash have cut that short).
 *
 * After a crash at any point, a completion sent again settles the journal from what the store
 * shows: committed (the driver sees its revision, or its own sign of the commit), so it finishes
 * and answers the stored file; or not, so it drops the journal and completes afresh. A finished
 * upload answers the same file until it expires ("a completion sent again answers the file it
 * stored"): as it is now when the path still holds that revision, else as it was stored.
 */
import { verifySha256 } from '../digest.js'
import type { CompletionJournal, StorageDriver, UploadStaging, UploadState } from '../driver.js'
import { failpoint } from '../failpoints.js'
import { newRevision } from '../revision.js'
import type { CompleteUploadOptions, PutResult } from '../types.js'
import type { CompletionLease } from './lease.js'
import { type UploadBook, without } from './records.js'
import { isExpired, partsToAssemble, uploadConditions, uploadNotFound } from './rules.js'

export class Completion {
  readonly #staging: UploadStaging

  constructor(
    private readonly driver: StorageDriver,
    private readonly book: UploadBook,
    private readonly lease: CompletionLease,
  ) {
    this.#staging = driver.staging
  }

  async complete(uploadId: string, options: CompleteUploadOptions): Promise<PutResult> {
    await this.#staging.recover?.(uploadId)
    const exclusive = this.#staging.exclusive?.bind(this.#staging) ?? ((id, fn) => this.lease.hold(id, fn))
    return exclusive(uploadId, () => this.#completeHeld(uploadId, options))
  }

  /** Whether the completion `journal` describes made its file visible. */
  async committed(uploadId: string, journal: CompletionJournal): Promise<boolean> {
    if (this.#staging.committed) return this.#staging.committed(uploadId, journal)
    return (await this.driver.lookupRevision(journal.result.file.path, journal.revision)) !== null
  }

  async #completeHeld(uploadId: string, options: CompleteUploadOptions): Promise<PutResult> {
    const found = await this.book.records.read(uploadId)
    if (!found || isExpired(found.state.expiresAt)) throw uploadNotFound(uploadId)
    const { state } = found
    if (state.finished) {
      if (!('revision' in state.finished)) throw uploadNotFound(uploadId) // aborted
      const { revision, result } = state.finished
      verifySha256(options.expectedSha256, result.file.sha256)
      // Of a completion that died after saying finished, before its parts were all gone.
      await this.#staging.discardParts(uploadId).catch(() => {})
      const now = await this.driver.lookupRevision(state.path, revision)
      return { file: now ?? result.file, created: result.created }
    }
    if (state.journal) {
      const { journal } = state
      if (await this.committed(uploadId, journal)) {
        verifySha256(options.expectedSha256, journal.result.file.sha256)
        return this.#finish(uploadId, journal.revision, journal.result)
      }
      // It died before its file became visible: this completion starts over.
      await this.book.change(uploadId, (s) => (s.journal?.revision === journal.revision ? without(s, 'journal') : null))
    }
    return this.#assemble(uploadId, state, options)
  }

  async #assemble(uploadId: string, state: UploadState, options: CompleteUploadOptions): Promise<PutResult> {
    const parts = partsToAssemble(state, await this.#staging.listParts(uploadId), options.parts)
    const conditions = uploadConditions(state)
    await this.driver.checkWrite(state.path, conditions) // fail before copying gigabytes
    const revision = newRevision()
    const prepared = await this.#staging.prepare(uploadId, parts, {
      path: state.path,
      metadata: state.metadata,
      ...(state.contentType !== undefined ? { contentType: state.contentType } : {}),
      revision,
      ...(state.maxBytes !== undefined ? { maxBytes: state.maxBytes } : {}),
    })
    try {
      verifySha256(options.expectedSha256, prepared.sha256)
    } catch (e) {
      await this.#staging.discardPrepared(prepared)
      throw e
    }
    let result: PutResult
    try {
      result = await this.#staging.commit(prepared, {
        ...conditions,
        announce: { uploadId, ...(options.origin ? { origin: options.origin } : {}) },
        beforeVisible: async (will) => {
          await this.book.change(uploadId, (s) => {
            if (s.finished) throw uploadNotFound(uploadId) // aborted meanwhile (a driver without `exclusive`)
            return { ...s, journal: { revision, result: will, note: prepared.note } }
          })
          failpoint('upload.complete.journaled')
        },
      })
    } catch (e) {
      // Not visible: the upload stays open, to complete again once the client sent what is missing.
      await this.book.change(uploadId, (s) => (s.journal?.revision === revision ? without(s, 'journal') : null)).catch(() => {})
      throw e
    }
    failpoint('upload.complete.committed')
    // The file is stored; should the rest fail, the journal tells a completion sent again so.
    return this.#finish(uploadId, revision, result).catch(() => result)
  }

  /** Records the upload finished with what it stored, then removes its parts; answers `result`. */
  async #finish(uploadId: string, revision: string, result: PutResult): Promise<PutResult> {
    await this.book.change(uploadId, (s) => ({ ...without(s, 'journal', 'completing'), finished: { revision, result } }))
    failpoint('upload.complete.finished')
    await this.#staging.discardParts(uploadId).catch(() => {}) // else a completion sent again, the driver's sweep or the expiry removes them
    return result
  }
}
