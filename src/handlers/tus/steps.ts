/**
 * The steps the tus operations share: reading what a request says about the upload's size and its
 * data, appending the data, completing the upload, and the headers that tell the client where it stands.
 */
import type { Context } from 'hono'
import { type AppendPartOptions, type ChangeOrigin, payloadTooLarge, type Store, StorageError, type UploadStatus } from '../../storage/index.js'
import { contentLength } from '../request-options.js'
import { httpDate, parseByteCount, parseUploadChecksum, TUS_VERSION } from './protocol.js'

/** The attribute under which an upload keeps its `Upload-Metadata`, for HEAD to give it back as sent. */
export const METADATA_ATTRIBUTE = 'tus:upload-metadata'

/** What the answers need to know of an upload. */
export type Progress = Pick<UploadStatus, 'uploadId' | 'received' | 'totalSize' | 'attributes' | 'expiresAt'>

/** `Upload-Length`, or `Upload-Defer-Length: 1` (creation-defer-length): exactly one of them. */
export function uploadLength(c: Context, maxBytes: number | undefined): number | undefined {
  const length = c.req.header('upload-length')
  const defer = c.req.header('upload-defer-length')
  if (length !== undefined && defer !== undefined) {
    throw new StorageError('invalid_request', 'send either Upload-Length or Upload-Defer-Length, not both')
  }
  if (defer !== undefined) {
    if (defer.trim() !== '1') throw new StorageError('invalid_request', 'Upload-Defer-Length must be 1')
    return undefined
  }
  if (length === undefined) throw new StorageError('invalid_request', 'Upload-Length (or Upload-Defer-Length: 1) is required')
  return checkedLength(length, maxBytes)
}

/** An `Upload-Length` value, refused (`413`) over the service's limit. */
export function checkedLength(header: string, maxBytes: number | undefined): number {
  const size = parseByteCount('Upload-Length', header)
  if (maxBytes !== undefined && size > maxBytes) throw payloadTooLarge(maxBytes)
  return size
}

export function hasBody(c: Context): boolean {
  const length = c.req.header('content-length')
  return length !== undefined ? length.trim() !== '0' : c.req.header('transfer-encoding') !== undefined
}

/** What an append of this request's body needs: its offset, announced size and checksum. */
export function appendOptions(c: Context, offset: number): AppendPartOptions {
  const size = contentLength(c, undefined)
  const checksum = c.req.header('upload-checksum')
  return {
    offset,
    ...(size !== undefined ? { expectedSize: size } : {}),
    // A cut body cannot be verified against a checksum, so it is kept only without one.
    ...(checksum !== undefined ? { expectedChecksum: parseUploadChecksum(checksum) } : { keepPartial: true }),
  }
}

/** Appends a body; completes the upload when that made it whole. Answers the headers for the client. */
export async function appendAndFinish(
  driver: Store,
  progress: Progress,
  body: ReadableStream<Uint8Array>,
  options: AppendPartOptions,
  origin?: ChangeOrigin,
): Promise<Record<string, string>> {
  const watched = remembersFailure(body)
  const result = await driver.appendPart(progress.uploadId, watched.body, options)
  const headers = await finishIfComplete(driver, { ...progress, received: result.offset }, origin)
  // What arrived is kept; the answer (when the client is still there) says why the rest did not: a
  // stalled body is a 408, a newer request taking over a 400.
  if (result.partial) throw watched.failure() ?? new StorageError('invalid_request', 'the request body ended before it was complete')
  return headers
}

/** `body`, remembering the StorageError it fails with: a driver reports a cut append only as partial. */
function remembersFailure(body: ReadableStream<Uint8Array>): { body: ReadableStream<Uint8Array>; failure(): StorageError | undefined } {
  let failure: StorageError | undefined
  const reader = body.getReader()
  const watched = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read()
          if (done) controller.close()
          else controller.enqueue(value)
        } catch (e) {
          if (e instanceof StorageError) failure = e
          controller.error(e)
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  )
  return { body: watched, failure: () => failure }
}

/** Assembles the file once every byte has arrived; answers the headers for the client either way. `origin`: who asked, for its events. */
export async function finishIfComplete(driver: Store, progress: Progress, origin?: ChangeOrigin): Promise<Record<string, string>> {
  if (progress.received !== progress.totalSize) return progressHeaders(progress)
  const { file } = await driver.completeUpload(progress.uploadId, origin ? { origin } : {})
  return {
    'Tus-Resumable': TUS_VERSION,
    'Upload-Offset': String(progress.received),
    'Upload-Length': String(progress.received),
    'X-File-Path': file.path.split('/').map(encodeURIComponent).join('/'),
    'X-Content-SHA256': file.sha256,
  }
}

/** What HEAD and every unfinished step tell the client: offset, length, metadata, expiry. */
export function progressHeaders(progress: Progress): Record<string, string> {
  const metadata = progress.attributes[METADATA_ATTRIBUTE]
  return {
    'Tus-Resumable': TUS_VERSION,
    'Upload-Offset': String(progress.received),
    ...(progress.totalSize !== undefined ? { 'Upload-Length': String(progress.totalSize) } : { 'Upload-Defer-Length': '1' }),
    ...(metadata ? { 'Upload-Metadata': metadata } : {}),
    'Upload-Expires': httpDate(progress.expiresAt),
  }
}
