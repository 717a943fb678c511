/**
 * Witnesses every driver settles the same way (types.ts `Witness`): those of the upload engine's
 * own events, read from the uploads' records.
 */
import type { UploadRecords } from '../driver.js'

/**
 * An upload created (its record exists) or ended by an abort or its expiry (its record says so, or
 * is gone). The engine writes each under the upload's lock where the driver has one, and by
 * compare-and-set otherwise.
 */
export async function uploadWitnessed(records: UploadRecords, witness: { id: string; ended: boolean }): Promise<boolean> {
  const found = await records.read(witness.id)
  if (!witness.ended) return found !== null
  return found === null || (found.state.finished !== undefined && 'aborted' in found.state.finished)
}
