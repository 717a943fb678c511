/**
 * A large file sent through tus (tus-js-client), so that an interrupted `put` goes on where it
 * stopped when run again: the upload URL is kept in the state folder under a fingerprint of the
 * local file (path, device, inode, size, modification time) and its target (service, store, path),
 * found again by the next run, which asks the service (`HEAD`) how much it has and sends the rest.
 * A changed file or another target makes another fingerprint, hence a new upload.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import { type DetailedError, type PreviousUpload, Upload, type UrlStorage } from 'tus-js-client'
import { FileStorageError } from '../adapters/discovery/index.js'
import type { CliContext } from './context.js'
import type { FileProgress } from './progress.js'

export interface TusJob {
  source: string
  store: string
  path: string
}

export interface TusOptions {
  chunkSize: number
  /** Refuse to replace an existing file (`If-None-Match: *` on the creation). */
  createOnly: boolean
  contentType?: string
  urlStorage: UrlStorage
}

/** Sends the file; resolves with the offset it resumed from (0 for a new upload). */
export async function tusPut(ctx: CliContext, job: TusJob, options: TusOptions, progress: FileProgress): Promise<{ resumedFrom: number }> {
  const { client, identity, token } = ctx.connection
  const endpoint = `${await client.baseUrl()}/${encodeURIComponent(job.store)}/tus/`
  const file = await stat(job.source)
  const fingerprint = `put:${createHash('sha256')
    .update([identity, job.store, job.path, await realpath(job.source), file.dev, file.ino, file.size, file.mtimeMs].join('\n'))
    .digest('hex')}`
  const { signal } = ctx

  return new Promise((resolve, reject) => {
    let resumedFrom = 0
    const upload = new Upload(createReadStream(job.source), {
      endpoint,
      chunkSize: options.chunkSize,
      uploadSize: file.size,
      metadata: { path: job.path, ...(options.contentType ? { filetype: options.contentType } : {}) },
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      retryDelays: [0, 1000, 3000, 5000],
      urlStorage: options.urlStorage,
      fingerprint: () => Promise.resolve(fingerprint),
      storeFingerprintForResuming: true,
      // Removed below, awaited: tus-js-client would not wait for it before the process exits.
      removeFingerprintOnSuccess: false,
      onBeforeRequest(req) {
        if (options.createOnly && req.getMethod() === 'POST') req.setHeader('If-None-Match', '*')
      },
      onAfterResponse(req, res) {
        if (req.getMethod() === 'HEAD' && res.getStatus() === 200) resumedFrom = Number(res.getHeader('Upload-Offset') ?? 0)
      },
      onProgress: (sent) => progress.set(sent),
      onSuccess: () => {
        signal.removeEventListener('abort', onAbort)
        forget(options.urlStorage, fingerprint).then(() => resolve({ resumedFrom }), reject)
      },
      onError: (e) => {
        signal.removeEventListener('abort', onAbort)
        reject(signal.aborted ? signal.reason : errorOf(e as DetailedError))
      },
    })
    // Stops sending, keeps the upload (and its URL in the state): the next run goes on with it.
    const onAbort = () => {
      void upload.abort(false)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    upload.findPreviousUploads().then((previous) => {
      const latest = newest(previous)
      if (latest) upload.resumeFromPreviousUpload(latest)
      upload.start()
    }, reject)
  })
}

async function forget(storage: UrlStorage, fingerprint: string): Promise<void> {
  for (const entry of await storage.findUploadsByFingerprint(fingerprint)) await storage.removeUpload(entry.urlStorageKey)
}

function newest(uploads: PreviousUpload[]): PreviousUpload | undefined {
  return uploads.sort((a, b) => a.creationTime.localeCompare(b.creationTime)).at(-1)
}

/** The API's JSON error of the answer that failed, or `store_unavailable` when none came. */
function errorOf(error: DetailedError): FileStorageError {
  const response = error.originalResponse
  if (!response) {
    const reason = error.causingError?.message ?? error.message
    return new FileStorageError(503, 'store_unavailable', `no answer from the service: ${reason}`, undefined, { cause: error })
  }
  const status = response.getStatus()
  try {
    const body = JSON.parse(response.getBody()) as { error?: { code: string; message: string; details?: unknown } }
    if (body.error?.code) return new FileStorageError(status, body.error.code, body.error.message, body.error.details)
  } catch {
    // not the API's JSON: a proxy's page, say
  }
  return new FileStorageError(status, `http_${status}`, `the service answered ${status}`)
}
