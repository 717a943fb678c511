/**
 * The tus client of both sides: tus-js-client from npm, uploading a file from disk in PATCH
 * requests of a fixed size.
 */
import { createReadStream } from 'node:fs'
import * as tus from 'tus-js-client'

export interface TusUploadOptions {
  endpoint: string
  file: string
  chunkBytes: number
  metadata: Record<string, string>
  timeoutMs?: number
  /** Sent as `Authorization: Bearer` with every request. */
  token?: string
}

/** Uploads the file; resolves with the seconds it took and the upload's URL. */
export function tusUpload(options: TusUploadOptions): Promise<{ seconds: number; url: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const upload = new tus.Upload(createReadStream(options.file), {
      endpoint: options.endpoint,
      chunkSize: options.chunkBytes,
      retryDelays: null,
      storeFingerprintForResuming: false,
      metadata: options.metadata,
      ...(options.token ? { headers: { Authorization: `Bearer ${options.token}` } } : {}),
      onError: (e) => {
        clearTimeout(timer)
        reject(e)
      },
      onSuccess: () => {
        clearTimeout(timer)
        resolve({ seconds: (performance.now() - started) / 1000, url: upload.url ?? '' })
      },
    })
    const timer = setTimeout(() => {
      void upload.abort(true)
      reject(new Error(`tus upload to ${options.endpoint} took over ${(options.timeoutMs ?? 300_000) / 1000} s`))
    }, options.timeoutMs ?? 300_000)
    upload.start()
  })
}

/** True when `endpoint` answers OPTIONS with a Tus-Version header (a tus server is there). */
export async function speaksTus(endpoint: string): Promise<{ ok: boolean; status: number }> {
  const res = await fetch(endpoint, { method: 'OPTIONS', signal: AbortSignal.timeout(5000) })
  await res.body?.cancel()
  return { ok: res.headers.has('tus-version'), status: res.status }
}
