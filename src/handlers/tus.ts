/**
 * tus: the tus 1.0 resumable-upload protocol at `/{store}/tus/` (SPEC 3.3), on every store: core
 * (HEAD, PATCH, OPTIONS) and the extensions creation, creation-with-upload, creation-defer-length,
 * termination, checksum (sha1, sha256) and expiration.
 *
 * A tus upload is a part upload of the storage core: each PATCH is appended at the offset the
 * client names (`appendPart`), the upload's size and `Upload-Metadata` are kept with it, and when
 * the offset reaches `Upload-Length` the parts are assembled (`completeUpload`) into the file, with
 * its sha256, exactly as a PUT would store it. So the state lives in the store, survives restarts,
 * and on a shared store any instance can take any request. A PATCH cut off part-way keeps what
 * arrived, and the client resumes from there.
 *
 * Errors are JSON (SPEC 3.5) with tus's statuses: 412 without `Tus-Resumable`, 415 for data not sent
 * as `application/offset+octet-stream`, 409 at a wrong offset, 413 past `Upload-Length` or
 * `MAX_UPLOAD_BYTES`, 460 for a checksum mismatch, 404 for an unknown, finished or expired upload.
 */
import type { Context } from 'hono'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { onError, toStorageError } from './http-errors.js'
import { notAllowed, type TusDeps, tusCreate, tusHead, tusOptions, tusPatch, tusTerminate } from './tus/operations.js'
import { CHECKSUM_MISMATCH_STATUS, TUS_VERSION, UnsupportedVersion } from './tus/protocol.js'
import { tusRoutes } from './tus/routes.js'
import { UploadWrites } from './tus/writes.js'

export { tusRoutes }

const COLLECTION = ['/:store/tus', '/:store/tus/']
const UPLOAD = '/:store/tus/:uploadId'

export function createTusHandler(handlerDeps: HandlerDeps) {
  const deps: TusDeps = { ...handlerDeps, writes: new UploadWrites() }
  const app = createHandlerApp(handlerDeps, [...COLLECTION, UPLOAD])
  app.onError(tusError)
  for (const route of tusRoutes) app.openAPIRegistry.registerPath(route)

  app.on('OPTIONS', [...COLLECTION, UPLOAD], (c) => tusOptions(deps, c))
  app.on('POST', COLLECTION, (c) => tusCreate(deps, c))
  // Hono answers HEAD with the GET route (body dropped); GET itself is not part of tus.
  app.get(UPLOAD, (c) =>
    c.req.method === 'HEAD'
      ? tusHead(deps, c)
      : notAllowed(c, 'an upload URL takes HEAD, PATCH and DELETE; download the finished file from /{store}/download/{path}'),
  )
  app.patch(UPLOAD, (c) => tusPatch(deps, c))
  app.delete(UPLOAD, (c) => tusTerminate(deps, c))
  // X-HTTP-Method-Override (tus-js-client's overridePatchMethod): a POST standing for PATCH or DELETE.
  app.post(UPLOAD, (c) => {
    const method = c.req.header('x-http-method-override')?.trim().toUpperCase()
    if (method === 'PATCH') return tusPatch(deps, c)
    if (method === 'DELETE') return tusTerminate(deps, c)
    return notAllowed(c, 'POST on an upload URL needs X-HTTP-Method-Override: PATCH or DELETE')
  })
  return app
}

/** Errors as every handler answers them (SPEC 3.5), with tus's headers, and 460 for a checksum mismatch. */
function tusError(e: Error, c: Context): Response {
  const response = onError(e, c)
  response.headers.set('Tus-Resumable', TUS_VERSION)
  if (e instanceof UnsupportedVersion) response.headers.set('Tus-Version', TUS_VERSION)
  if (toStorageError(e)?.code !== 'checksum_mismatch') return response
  return new Response(response.body, { status: CHECKSUM_MISMATCH_STATUS, headers: response.headers })
}
