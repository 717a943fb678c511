/**
 * The engine's view of the uploads' records (driver.ts `UploadRecords`): reading an upload that is
 * still live, and changing a record by compare-and-set, read again and retried when another
 * request changed it first.
 */
import { backoff } from '../backoff.js'
import type { CompletionJournal, UploadRecords, UploadStaging, UploadState } from '../driver.js'
import { keepsChanging } from '../errors.js'
import type { PartInfo } from '../types.js'
import { checkUploadId, isExpired, uploadNotFound } from './rules.js'

/** Compare-and-set attempts of one change before it gives up (`store_unavailable`). */
const CHANGE_ATTEMPTS = 20

export class UploadBook {
  readonly records: UploadRecords

  constructor(
    private readonly staging: UploadStaging,
    /** Whether the file of a journaled completion is visible (see completion.ts). */
    private readonly committed: (uploadId: string, journal: CompletionJournal) => Promise<boolean>,
  ) {
    this.records = staging.records
  }

  /**
   * The record of an upload that takes parts: `not_found` for an unknown, expired, aborted or
   * completed one (a completion whose file is visible, even if it died before saying so), unless
   * `finished` allows a completed one.
   */
  async live(uploadId: string, finished = false): Promise<UploadState> {
    checkUploadId(uploadId)
    const found = await this.records.read(uploadId)
    if (!found || isExpired(found.state.expiresAt)) throw uploadNotFound(uploadId)
    const { state } = found
    const completed = state.finished !== undefined ? 'revision' in state.finished : state.journal !== undefined && (await this.committed(uploadId, state.journal))
    if (state.finished !== undefined && !completed) throw uploadNotFound(uploadId) // aborted
    if (completed && !finished) throw uploadNotFound(uploadId)
    return state
  }

  /** `live`, with the parts received. */
  async liveWithParts(uploadId: string): Promise<{ state: UploadState; parts: PartInfo[] }> {
    const state = await this.live(uploadId)
    return { state, parts: await this.staging.listParts(uploadId) }
  }

  /**
   * Changes a record: `next` gets the record as it is and returns what it becomes, or null to leave
   * it (it may throw to refuse). `not_found` when there is no record.
   */
  async change(uploadId: string, next: (state: UploadState) => UploadState | null): Promise<UploadState> {
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      if (attempt > 0) await backoff(attempt)
      const found = await this.records.read(uploadId)
      if (!found) throw uploadNotFound(uploadId)
      const changed = next(found.state)
      if (!changed) return found.state
      if (await this.records.update(uploadId, found.version, changed)) return changed
    }
    throw keepsChanging(`the upload ${uploadId}`)
  }
}

/** `state` without the fields named (optional ones of an upload's record). */
export function without(state: UploadState, ...fields: ('completing' | 'journal' | 'totalSize')[]): UploadState {
  const copy = { ...state }
  for (const field of fields) delete copy[field]
  return copy
}
