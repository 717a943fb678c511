/**
 * The tus operations: OPTIONS, POST (creation, creation-with-upload), HEAD, PATCH (with
 * creation-defer-length's `Upload-Length`) and DELETE (termination). Each takes the request's
 * context; `TusDeps` carries the stores and the one-write-per-upload coordinator.
 */
import type { Context } from 'hono'
import { checkTotal, type CreateUploadOptions, newUploadId, offsetMismatch, type Store, StorageError } from '../../storage/index.js'
import { authorize, type Grant, grantedContentType, ownerOf, signedTarget, signerOf, uploadLimit } from '../access.js'
import type { HandlerDeps } from '../handler-app.js'
import { ownedUpload } from '../upload-owner.js'
import { errorBody } from '../http-errors.js'
import { beforeUpload } from '../hooks.js'
import { originOf } from '../request-id.js'
import { requestBody, writePreconditions } from '../request-options.js'
import { uploadLocation } from './location.js'
import {
  CHECKSUM_ALGORITHMS,
  checkTusResumable,
  parseByteCount,
  parseUploadMetadata,
  requireOffsetStream,
  TUS_EXTENSIONS,
  TUS_VERSION,
} from './protocol.js'
import {
  appendAndFinish,
  appendOptions,
  checkedLength,
  finishIfComplete,
  hasBody,
  METADATA_ATTRIBUTE,
  type Progress,
  uploadLength,
} from './steps.js'
import { uploadTarget } from './target.js'
import type { UploadWrites } from './writes.js'

export interface TusDeps extends HandlerDeps {
  writes: UploadWrites
}

const storeOf = (c: Context): string => c.req.param('store')!
const driverOf = (deps: TusDeps, c: Context): Store => deps.stores.get(storeOf(c))
const uploadIdOf = (c: Context): string => c.req.param('uploadId')!

/** The upload named by the URL, once its owner is this request's principal (else `404`, before anything else). */
const ownUpload = (deps: TusDeps, c: Context) => ownedUpload(c, driverOf(deps, c), storeOf(c), uploadIdOf(c), 'tusUpload')

/** OPTIONS: what this server supports. */
export function tusOptions(deps: TusDeps, c: Context): Response {
  driverOf(deps, c)
  return c.body(null, 204, {
    'Tus-Resumable': TUS_VERSION,
    'Tus-Version': TUS_VERSION,
    'Tus-Extension': TUS_EXTENSIONS.join(','),
    'Tus-Checksum-Algorithm': CHECKSUM_ALGORITHMS.join(','),
    ...(deps.maxUploadBytes !== undefined ? { 'Tus-Max-Size': String(deps.maxUploadBytes) } : {}),
  })
}

/** POST: creates an upload, with its first bytes when a body comes along (creation-with-upload). */
export async function tusCreate(deps: TusDeps, c: Context): Promise<Response> {
  checkTusResumable(c.req.header('tus-resumable'))
  if (c.req.header('upload-concat') !== undefined) {
    throw new StorageError('invalid_request', 'the concatenation extension is not supported')
  }
  const rawMetadata = c.req.header('upload-metadata') ?? ''
  const target = uploadTarget(parseUploadMetadata(rawMetadata), newUploadId(), signedTarget(c))
  const grant = await authorize(c, { operation: 'tusCreate', action: 'write', store: storeOf(c), path: target.path })
  const contentType = grantedContentType(target.contentType, grant, 'filetype')
  const maxBytes = uploadLimit(deps.maxUploadBytes, grant)
  const totalSize = uploadLength(c, maxBytes)
  const withData = hasBody(c)
  if (withData) requireOffsetStream(c.req.header('content-type'))
  // Read with or without data: a malformed Upload-Checksum is refused either way.
  const sent = appendOptions(c, 0)
  const append = withData ? sent : undefined
  const driver = driverOf(deps, c)
  // Bytes sent along that cannot fit are refused before an upload exists for them.
  if (append?.expectedSize !== undefined) checkTotal({ totalSize, maxBytes }, append.expectedSize)
  const metadata = await beforeUpload(c, deps.hooks, {
    operation: 'tusCreate',
    store: storeOf(c),
    path: target.path,
    ...(totalSize !== undefined ? { size: totalSize } : {}),
    ...(contentType ? { contentType } : {}),
    metadata: target.metadata,
  })
  const options: CreateUploadOptions = {
    ...writePreconditions(c),
    owner: ownerOf(c),
    metadata: metadata ?? target.metadata,
    origin: originOf(c),
    ...(contentType ? { contentType } : {}),
    ...(totalSize !== undefined ? { totalSize } : {}),
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    ...(rawMetadata ? { attributes: { [METADATA_ATTRIBUTE]: rawMetadata } } : {}),
  }
  const session = await driver.createUpload(target.path, options)
  const progress: Progress = { ...session, received: 0, attributes: options.attributes ?? {} }
  const headers = append
    ? await deps.writes.run(session.uploadId, requestBody(c), (body) => appendAndFinish(driver, progress, body, append, originOf(c)))
    : await finishIfComplete(driver, progress, originOf(c))
  return c.body(null, 201, { ...headers, Location: location(deps, c, grant, session), 'Content-Length': '0' })
}

/**
 * The new upload's URL. Created through a signed URL, it is signed too, for this one upload until
 * it expires: the holder of the creation URL goes on with HEAD and PATCH without any other credential.
 */
function location(deps: TusDeps, c: Context, grant: Grant, session: { uploadId: string; path: string; expiresAt: string }): string {
  const url = uploadLocation(c, session.uploadId, deps.urls)
  if (!grant.signed) return url
  const query = signerOf(c)!.sign({
    operation: 'tusUpload',
    store: storeOf(c),
    path: session.path,
    uploadId: session.uploadId,
    expires: Math.floor(Date.parse(session.expiresAt) / 1000),
  })
  return `${url}?${query}`
}

/**
 * HEAD: where the upload stands, once any write in flight on it has settled. An upload with every
 * byte but no file (its completion failed, or the answer to it was lost) is completed again first,
 * so a client never takes it for done while the file is missing: the failure is the answer instead.
 */
export async function tusHead(deps: TusDeps, c: Context): Promise<Response> {
  checkTusResumable(c.req.header('tus-resumable'))
  await ownUpload(deps, c)
  const uploadId = uploadIdOf(c)
  const driver = driverOf(deps, c)
  return deps.writes.exclusive(uploadId, async () => {
    const headers = await finishIfComplete(driver, await driver.uploadStatus(uploadId), originOf(c))
    return c.body(null, 200, { ...headers, 'Cache-Control': 'no-store' })
  })
}

/** PATCH: appends the body at `Upload-Offset`; completes the upload when it reaches its length. */
export async function tusPatch(deps: TusDeps, c: Context): Promise<Response> {
  checkTusResumable(c.req.header('tus-resumable'))
  requireOffsetStream(c.req.header('content-type'))
  const offsetHeader = c.req.header('upload-offset')
  if (offsetHeader === undefined) throw new StorageError('invalid_request', 'Upload-Offset is required')
  const offset = parseByteCount('Upload-Offset', offsetHeader)
  const lengthHeader = c.req.header('upload-length')
  const declared = lengthHeader === undefined ? undefined : checkedLength(lengthHeader, deps.maxUploadBytes)
  const append = appendOptions(c, offset)
  await ownUpload(deps, c) // before it can stop a write of the owner's in flight
  const driver = driverOf(deps, c)
  const uploadId = uploadIdOf(c)
  return deps.writes.run(uploadId, requestBody(c), async (body) => {
    let status = await driver.uploadStatus(uploadId)
    if (status.received !== offset) throw offsetMismatch(offset, status.received) // before reading a byte
    if (declared !== undefined) status = await driver.declareUploadSize(uploadId, declared)
    return c.body(null, 204, await appendAndFinish(driver, status, body, append, originOf(c)))
  })
}

/** DELETE: terminates the upload, discarding its bytes. */
export async function tusTerminate(deps: TusDeps, c: Context): Promise<Response> {
  checkTusResumable(c.req.header('tus-resumable'))
  await ownUpload(deps, c)
  const uploadId = uploadIdOf(c)
  const driver = driverOf(deps, c)
  await deps.writes.exclusive(uploadId, () => driver.abortUpload(uploadId, { origin: originOf(c) }))
  return c.body(null, 204, { 'Tus-Resumable': TUS_VERSION })
}

/** `405` for a method tus does not define on an upload URL. */
export function notAllowed(c: Context, message: string): Response {
  return c.json(errorBody('invalid_request', message), 405, { Allow: 'HEAD, PATCH, DELETE, OPTIONS', 'Tus-Resumable': TUS_VERSION })
}
