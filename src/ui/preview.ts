/**
 * Previews of images, text and PDF. The file is fetched with the token and shown from a blob: URL
 * whose type the page sets (so nothing is ever rendered as HTML): text in an iframe with `sandbox`
 * (an opaque origin, no scripts, no forms, no navigation of the page); images in an <img>, which
 * runs nothing (and needs none of the inline styles the browser's own image document would apply
 * against the page's CSP); PDF in an iframe without `sandbox`, because Chromium refuses to show a
 * PDF in a sandboxed frame: the blob is typed application/pdf, so only the browser's PDF viewer
 * renders it. Active content (HTML, SVG, scripts) is never previewed.
 */
import { type FileEntry, fetchFile } from './api.js'
import { h } from './dom.js'

/** Larger files are not previewed: the preview holds the file in the browser's memory. */
export const PREVIEW_MAX_BYTES = 20 * 1024 * 1024

const IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp'])
const TEXT_TYPES = new Set(['application/json', 'application/x-ndjson', 'application/yaml', 'application/toml', 'application/x-sh'])

export type PreviewKind = 'image' | 'text' | 'pdf'

export function previewKind(file: FileEntry): PreviewKind | undefined {
  const type = file.contentType.split(';')[0]!.trim().toLowerCase()
  if (file.size > PREVIEW_MAX_BYTES) return undefined
  if (IMAGES.has(type)) return 'image'
  if (type === 'application/pdf') return 'pdf'
  if ((type.startsWith('text/') && type !== 'text/html' && type !== 'text/xml') || TEXT_TYPES.has(type)) return 'text'
  return undefined
}

let current: string | undefined

/** Fills `container` with the preview of `file` (throws the API's error when it cannot be fetched). */
export async function showPreview(container: HTMLElement, store: string, file: FileEntry): Promise<void> {
  const kind = previewKind(file)
  if (!kind) throw new Error(`no preview for ${file.contentType}`)
  const blob = await fetchFile(store, file.path)
  // Text as text/plain whatever it is, images and PDF as what they are: nothing else renders.
  const type = kind === 'text' ? 'text/plain;charset=utf-8' : kind === 'pdf' ? 'application/pdf' : file.contentType
  closePreview(container)
  current = URL.createObjectURL(new Blob([blob], { type }))
  container.append(
    h('div', { class: 'preview-bar' }, h('strong', {}, file.path), h('button', { type: 'button', onclick: () => closePreview(container) }, 'Close')),
    kind === 'image'
      ? h('img', { src: current, alt: `preview of ${file.name}`, 'data-kind': kind })
      : h('iframe', { sandbox: kind === 'text' ? '' : undefined, src: current, title: `preview of ${file.name}`, referrerpolicy: 'no-referrer', 'data-kind': kind }),
  )
  container.hidden = false
}

export function closePreview(container: HTMLElement): void {
  if (current) URL.revokeObjectURL(current)
  current = undefined
  container.replaceChildren()
  container.hidden = true
}
