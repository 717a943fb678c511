/**
 * An upload in parts or a tus upload belongs to the principal that created it (SPEC 6): another
 * principal is told it does not exist (`404`, as for an unknown id), and the creator still needs the
 * write right on the file it becomes. Checked before any byte of the request is read.
 */
import type { Context } from 'hono'
import { ANONYMOUS, type Operation } from '../auth/index.js'
import { type Store, uploadNotFound, type UploadStatus, type UploadStatusOptions } from '../storage/index.js'
import { authorize, ownerOf } from './access.js'

export async function ownedUpload(
  c: Context,
  driver: Store,
  store: string,
  uploadId: string,
  operation: Operation,
  options: UploadStatusOptions = {},
): Promise<UploadStatus> {
  const status = await driver.uploadStatus(uploadId, options)
  // Uploads from before owners were kept belong to anonymous callers only.
  if ((status.owner ?? ANONYMOUS.id) !== ownerOf(c)) throw uploadNotFound(uploadId)
  await authorize(c, { operation, action: 'write', store, path: status.path, uploadId })
  return status
}
