/**
 * Uploads with Uppy's tus plugin: resumable (an interrupted upload of the same file to the same
 * place continues where it stopped, even after a reload), several files at once, a progress bar
 * per file. Each file's target path travels in the tus `Upload-Metadata` as `path`.
 */
import Uppy, { type UppyFile } from '@uppy/core'
import Tus, { type TusDetailedError } from '@uppy/tus'
import { API_BASE, type ApiError, authHeaders, parseError } from './api.js'
import { h } from './dom.js'
import { explain } from './explain.js'

type Meta = { path: string; relativePath: string; name: string; type: string }

/** Files uploaded at once. */
const PARALLEL = 3
/** tus PATCH size: a cut connection loses at most this much. */
const CHUNK_BYTES = 8 * 1024 * 1024

export interface Uploader {
  /** Queues files for `store`, each at its path (a folder and the file's name, or a dropped tree's relative path). */
  add(store: string, files: { file: File; path: string }[]): void
}

export function createUploader(panel: HTMLElement, onUploaded: () => void, onError: (e: ApiError) => void): Uploader {
  const uppy = new Uppy<Meta, Record<string, never>>({ id: 'filestorage-ui', autoProceed: false, allowMultipleUploadBatches: true })
  uppy.use(Tus, {
    limit: PARALLEL,
    chunkSize: CHUNK_BYTES,
    removeFingerprintOnSuccess: true,
    allowedMetaFields: ['path', 'type'],
    headers: () => authHeaders(), // read at each request: a token changed meanwhile is used
    // A 4xx will not get better by trying again (tus-js-client still resumes after network errors and 5xx).
    onShouldRetry: (err, _attempt, _options, next) => {
      const status = err.originalResponse?.getStatus() ?? 0
      return status >= 400 && status < 500 && status !== 409 && status !== 423 ? false : next(err)
    },
  })
  const rows = new Map<string, { bar: HTMLProgressElement; text: HTMLElement; row: HTMLElement }>()

  // Removed once the tus plugin has let go of the upload (right after this event): removing it
  // within the event would make the plugin terminate the finished upload. Removed, the same file
  // can be sent to the same place again.
  const forget = (file: UppyFile<Meta, Record<string, never>> | undefined) => {
    if (file) setTimeout(() => uppy.removeFile(file.id), 0)
  }
  const rowOf = (file: UppyFile<Meta, Record<string, never>> | undefined) => (file ? rows.get(file.id) : undefined)
  uppy.on('upload-progress', (file, progress) => {
    const row = rowOf(file)
    if (!row || !progress.bytesTotal) return
    row.bar.max = progress.bytesTotal
    row.bar.value = progress.bytesUploaded
    row.text.textContent = `${Math.floor((100 * progress.bytesUploaded) / progress.bytesTotal)} %`
  })
  uppy.on('upload-success', (file) => {
    const row = rowOf(file)
    if (row) {
      row.bar.value = row.bar.max
      row.text.textContent = 'done'
      row.row.dataset.state = 'done'
    }
    forget(file)
    onUploaded()
  })
  uppy.on('upload-error', (file, error) => {
    const row = rowOf(file)
    const response = (error as unknown as TusDetailedError).originalResponse
    const apiError = parseError(response?.getStatus() ?? 0, response?.getBody() ?? error.message, `upload ${file?.meta.relativePath ?? ''}`)
    if (row) {
      row.text.textContent = explain(apiError).title
      row.row.dataset.state = 'failed'
    }
    forget(file)
    onError(apiError)
  })

  return {
    add(store, files) {
      for (const { file, path } of files) {
        const where = `${store}:${path}`
        try {
          const id = uppy.addFile({
            name: file.name,
            type: file.type || 'application/octet-stream',
            data: file,
            source: 'filestorage-ui',
            // relativePath makes the file's Uppy id (and so its tus fingerprint) depend on where it goes.
            meta: { path, relativePath: where, name: file.name, type: file.type || 'application/octet-stream' },
          })
          uppy.setFileState(id, { tus: { endpoint: tusEndpoint(store) } })
          const bar = h('progress', { max: file.size || 1, value: 0 })
          const text = h('span', { class: 'upload-state' }, 'waiting')
          const row = h('li', { 'data-state': 'uploading', 'data-path': path }, h('span', { class: 'upload-name' }, where), bar, text)
          rows.set(id, { bar, text, row })
          panel.append(row)
        } catch (e) {
          // Uppy refuses the same file for the same place while it is still queued.
          panel.append(h('li', { 'data-state': 'failed' }, h('span', { class: 'upload-name' }, where), h('span', { class: 'upload-state' }, (e as Error).message)))
        }
      }
      void uppy.upload()
    },
  }
}

export const tusEndpoint = (store: string): string => new URL(`${encodeURIComponent(store)}/tus/`, API_BASE).href
